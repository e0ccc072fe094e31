"""After a run: a contact sheet with pictures, the same summary in Prefect's UI, one finished reel; during
it, a budget that no job may cross."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import Artifact

from flows.render_plan import RenderFailed, render_plan
from reelflow import parse_plan
from reelflow.costs import Estimate
from reelflow.report import markdown_summary
from reelflow.results import PlanResult, SceneResult
from reelflow.sandbox import RunningSandbox
from tests.media import probe_video, video_frames

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]


def test_the_report_shows_every_scene_with_its_picture_in_a_browser(provider: RunningSandbox, tmp_path: Path) -> None:
    plan = parse_plan({"name": "sheet", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "dawn", "prompt": "a harbour at dawn"},
        {"id": "noon", "prompt": "a market at noon", "extensions": [{"prompt": "rain starts", "seconds": 4}]},
        {"id": "dusk", "prompt": "a pier at dusk"},
        {"id": "refused", "prompt": "[blocked] not allowed"},
    ]})
    with pytest.raises(RenderFailed):
        render_plan(plan, output=f"file://{tmp_path}")
    report = tmp_path / "sheet" / "report.html"
    assert shutil.which(CHROMIUM), "the report test needs Debian's chromium (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        rendered = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert rendered == 3  # one thumbnail per finished scene; the refused one has none
    for expected in ("3 of 4 scenes rendered on sandbox", "a market at noon", "moderation_blocked",
                     "1280x720 · 8 s · sound, -"):
        assert expected in text, text
    assert re.search(r"1280x720 · 8 s · sound, -\d+\.\d LUFS · \$0\.80", text), text
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_the_summary_is_attached_to_the_flow_run_as_artifacts(provider: RunningSandbox) -> None:
    plan = parse_plan({"name": "ui_summary", "scenes": [{"id": "one", "prompt": "a lighthouse"}]})
    render_plan(plan, output="memory://renders")
    table, summary = asyncio.run(latest_artifacts("ui-summary-scenes", "ui-summary-summary"))
    assert table.type == "table"
    for cell in ('"scene": "one"', '"status": "completed"', '"duration_s": 4', '"cost_usd": 0.4', '"job_ids": "video_',
                 '"audio": true', '"loudness_lufs": -'):
        assert cell in str(table.data), cell
    assert summary.type == "markdown" and "1 of 1 scenes rendered on **sandbox**" in str(summary.data)
    assert "![one](data:image/jpeg;base64," in str(summary.data)  # the UI shows the thumbnail


def test_the_summary_captions_every_picture_with_its_scene() -> None:
    scenes = [SceneResult(id=name, status="completed", size="1280x720", seconds=4) for name in ("dawn", "noon")]
    result = PlanResult(plan="captions", provider="sandbox", output="memory://out/captions", scenes=scenes)
    summary = markdown_summary(result, Estimate(provider="sandbox", scenes=[]), {
        "dawn": "data:image/jpeg;base64,AAAA", "noon": "data:image/jpeg;base64,BBBB"})
    assert "**dawn**\n\n![dawn](data:image/jpeg;base64,AAAA)\n\n**noon**\n\n![noon](data:image/jpeg;base64,BBBB)" \
        in summary


async def latest_artifacts(*keys: str) -> list[Artifact]:
    # The REST call itself: prefect 3.8.8's `read_artifacts` sends `"flow_runs": null`, which its server
    # refuses (422), and an empty run filter drops artifacts that no task run made.
    async with get_client() as client:
        answer = await client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": list(keys)}}, "sort": "CREATED_DESC", "limit": len(keys)})
    found = Artifact.model_validate_list(answer.json())
    return sorted(found, key=lambda artifact: keys.index(str(artifact.key)))


def test_assemble_joins_the_scenes_in_plan_order_without_re_encoding(provider: RunningSandbox,
                                                                    tmp_path: Path) -> None:
    plan = parse_plan({"name": "reel", "assemble": True, "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "second-in-name-order", "prompt": "first shot", "seconds": 8},
        {"id": "a-last", "prompt": "last shot", "seconds": 4, "extensions": [{"prompt": "more", "seconds": 4}]},
    ]})
    result = render_plan(plan, output=f"file://{tmp_path}")
    assert result.reel is not None and result.reel.url.endswith("/reel/reel.mp4")
    reel = (tmp_path / "reel" / "reel.mp4").read_bytes()
    info = probe_video(reel)
    assert (info.size, info.seconds) == ((1280, 720), 16.0)
    scenes = [(tmp_path / "reel" / s / "video.mp4").read_bytes() for s in ("second-in-name-order", "a-last")]
    assert info.frames == sum(probe_video(v).frames for v in scenes)
    # Stream copy: the reel's frames are the scenes' frames, bit for bit once decoded.
    first, last = video_frames(scenes[0]), video_frames(scenes[1])
    joined = video_frames(reel)
    assert joined[0].tobytes() == first[0].tobytes()
    assert joined[len(first)].tobytes() == last[0].tobytes()


def test_assemble_re_encodes_clips_of_different_sizes_into_the_first_size(provider: RunningSandbox) -> None:
    plan = parse_plan({"name": "mixed", "assemble": True, "defaults": {"seconds": 4}, "scenes": [
        {"id": "wide", "prompt": "landscape", "size": "1280x720"},
        {"id": "tall", "prompt": "portrait", "size": "720x1280"},
    ]})
    result = render_plan(plan, output="memory://renders")
    assert result.reel is not None
    from tests.pipeline.test_render_plan import read

    info = probe_video(read(result.reel.url))
    assert (info.size, info.seconds, info.codec) == ((1280, 720), 8.0, "h264")


def test_no_job_is_submitted_past_the_budget_during_a_run(provider: RunningSandbox, tmp_path: Path) -> None:
    # The estimate ($0.40) fits the budget; the first job fails as a server error would, and the job that
    # would replace it is refused, because it would take the run's spend to $0.80.
    plan = parse_plan({"name": "tight", "budget_usd": 0.5, "scenes": [
        {"id": "flaky", "prompt": "[fails-once] a windmill", "seconds": 4}]})
    creates_before = provider.stats()["jobs_by_kind"].get("create", 0)
    with pytest.raises(RenderFailed) as failed:
        render_plan(plan, output=f"file://{tmp_path}")
    assert provider.stats()["jobs_by_kind"]["create"] - creates_before == 1
    (scene,) = failed.value.result.scenes
    assert scene.error is not None and "past the budget $0.50; not submitted" in scene.error
    # With room for the retry, the same scene renders on the next run (the refusal is not final).
    roomy = plan.model_copy(update={"budget_usd": 1.0})
    result = render_plan(roomy, output=f"file://{tmp_path}")
    assert result.scenes[0].status == "completed"
    assert provider.stats()["jobs_by_kind"]["create"] - creates_before == 2

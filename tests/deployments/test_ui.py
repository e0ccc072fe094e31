"""What a person working from the Prefect UI sees, read back through Prefect's API from a run of the manual
deployment served by `reelflow serve`: the run's story in its logs, its progress and scene table updated in
place, and a review answered the way the UI answers it (the paused run's form, found in headless Chromium)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.flow_runs import wait_for_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings

from reelflow.sandbox import RunningSandbox
from reelflow.storage import Storage
from tests.pipeline.test_takes import frame_psnr, waiting_review
from tests.pipeline.test_what_users_see import CHROMIUM, CHROMIUM_FLAGS

ARTIFACTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", "test-artifacts"))


def artifacts(api: str, key: str) -> list[dict[str, Any]]:
    """Every version of the artifact `key`, newest first (the REST call the UI makes)."""
    answer = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"})
    answer.raise_for_status()
    return list(answer.json())


def run_logs(run: FlowRun) -> list[tuple[int, str]]:
    with get_client(sync_client=True) as client:
        found = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
    return [(log.level, log.message) for log in found]


def test_a_run_from_the_form_tells_its_story_and_shows_its_progress(served: str, sandbox: RunningSandbox,
                                                                   tmp_path: Path) -> None:
    plan = {"name": "ui-story", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": f"shot-{n}", "prompt": f"boats at the quay, take {n}"} for n in range(3)]}
    with temporary_settings({PREFECT_API_URL: served}):
        run: FlowRun = run_deployment("render-plan-form/manual",  # type: ignore[assignment]
                                      parameters={"plan": plan, "output": f"file://{tmp_path}"}, timeout=600)
        assert run.state is not None and run.state.is_completed(), run.state
        time.sleep(3)  # run logs reach the API in batches, every 2 s
        logs = run_logs(run)
    manifest = json.loads((tmp_path / "ui-story" / "manifest.json").read_text())
    info = [message for level, message in logs if level == 20]
    for scene in manifest["scenes"]:
        (job,) = scene["job_ids"]
        assert any(message.startswith(f"created {job}") for message in info), info
        assert f"{job}: running -> completed" in info
        assert any(message.startswith(f"scene {scene['id']!r}: rendered by {job} (video.mp4, thumbnail.webp, "
                                      "spritesheet.jpg: ") for message in info), info
    assert any(message.startswith("plan 'ui-story': 3 scenes on sandbox") for message in info), info
    assert info.count("Finished in state Completed()") == 1  # the flow run's; its jobs' task runs log none
    assert not any(sandbox.api_key in message for _, message in logs)
    (progress, *_) = artifacts(served, "ui-story-progress")
    assert (progress["type"], progress["data"]) == ("progress", 100.0)
    (table,) = artifacts(served, "ui-story-scenes")  # one card, updated in place as the run went, then final
    assert [row["status"] for row in json.loads(table["data"])] == ["completed"] * 3


def test_a_review_answered_the_way_the_ui_answers_it(served: str, sandbox: RunningSandbox, tmp_path: Path) -> None:
    plan = {"name": "ui-review", "defaults": {"size": "1280x720", "seconds": 4}, "assemble": True, "review": True,
            "scenes": [{"id": "dawn", "prompt": "a harbour at dawn", "takes": 2},
                       {"id": "gulls", "prompt": "gulls over the pier", "takes": 2}]}
    start = sandbox.stats()["jobs"]
    with temporary_settings({PREFECT_API_URL: served}):
        run: FlowRun = run_deployment("render-plan-form/manual",  # type: ignore[assignment]
                                      parameters={"plan": plan, "output": f"file://{tmp_path}"}, timeout=0)
        review = waiting_review("ui-review", lambda: True, seconds=180)
        assert review is not None and review.flow_run_id == run.id
        assert [(q.scene, q.options) for q in review.questions] == [
            ("dawn", ["take 1", "take 2", "redo", "drop"]), ("gulls", ["take 1", "take 2", "redo", "drop"])]
        shown = form_in_the_ui(served.removesuffix("/api"), run)
        paid = sandbox.stats()["jobs"]
        review.answer({"dawn": "take 2", "gulls": "redo"}, {"gulls": "gulls over a stormy pier"})
        finished: FlowRun = asyncio.run(wait_for_flow_run(run.id, timeout=300, poll_interval=1))
    assert finished.state is not None and finished.state.is_completed(), finished.state
    assert shown == [["take 1", "take 2", "redo", "drop"]] * 2
    assert paid - start == 4 and sandbox.stats()["jobs"] - paid == 1  # the takes, then the redo only
    folder = Storage(f"file://{tmp_path}").child("ui-review")
    manifest = json.loads(folder.read_bytes("manifest.json"))
    assert [(s["take"], s["choice"]["kind"], s["choice"]["by"]) for s in manifest["scenes"]] == [
        ("dawn.take2", "keep", "review"), ("gulls.redo", "redo", "review")]
    assert manifest["scenes"][1]["choice"]["prompt"] == "gulls over a stormy pier"
    for frame, chosen, other in ((30, "dawn.take2", "dawn"), (130, "gulls.redo", "gulls")):
        assert frame_psnr(folder, frame, (chosen, "video.mp4")) > 35 > frame_psnr(folder, frame, (other, "video.mp4"))


def form_in_the_ui(ui: str, run: FlowRun) -> list[list[str]]:
    """The paused run's page in the Prefect UI, its Resume form opened: each scene's choices, as its select
    lists them (a screenshot shows the first one open)."""
    assert shutil.which(CHROMIUM), "the UI test needs Debian's chromium (apt-get install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{ui}/runs/flow-run/{run.id}")
        page.get_by_role("button", name="Resume").first.click(timeout=60_000)
        page.get_by_text("Review of ui-review").wait_for(timeout=30_000)
        selects = page.locator("#p-modal-teleport-target .p-select-button__control")  # the form's, not the page's
        choices: list[list[str]] = []
        for number in reversed(range(selects.count())):  # the first is left open for the screenshot
            selects.nth(number).focus()
            selects.nth(number).press("ArrowDown")  # the list opens on a key (a click only focuses it)
            page.get_by_role("option", name="take 2").wait_for(timeout=10_000)
            choices.insert(0, page.get_by_role("option").all_inner_texts())
            if number:
                page.keyboard.press("Escape")
        page.screenshot(path=str(ARTIFACTS / "review-form.png"), full_page=True)
        browser.close()
    return choices

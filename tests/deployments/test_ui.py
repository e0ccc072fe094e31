"""What a person working from the Prefect UI sees, read back through Prefect's API and in headless Chromium at
1440 px from runs of the manual deployment served by `reelflow serve` (its run pages updated every
UI_UPDATE_SECONDS, as often as a long run's): the run's story in its logs, one card per artifact however often it
was updated, a refused scene's error in the scene table's first columns and no traceback in the run's logs, and
a review announced on the run's page and answered the way the UI answers it (the paused run's form)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from playwright.sync_api import Page, sync_playwright
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.flow_runs import wait_for_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings

from reelflow import load_profile
from reelflow.sandbox import RunningSandbox
from reelflow.storage import Storage
from tests.conftest import wait_until
from tests.pipeline.test_takes import frame_psnr, waiting_review
from tests.pipeline.test_what_users_see import CHROMIUM, CHROMIUM_FLAGS

ARTIFACTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", "test-artifacts"))


def artifacts(api: str, key: str) -> list[dict[str, Any]]:
    """Every version of the artifact `key`, newest first (the REST call the UI makes)."""
    answer = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"})
    answer.raise_for_status()
    return list(answer.json())


def run_artifacts(api: str, run: FlowRun) -> dict[str, list[dict[str, Any]]]:
    """The artifacts of `run` by key (the REST call behind its Artifacts tab)."""
    answer = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [str(run.id)]}}})
    answer.raise_for_status()
    found: dict[str, list[dict[str, Any]]] = {}
    for artifact in answer.json():
        if artifact["key"]:
            found.setdefault(artifact["key"], []).append(artifact)
    return found


def updates(api: str, artifact: dict[str, Any]) -> int:
    """How often the artifact was updated in place: Prefect's client emits an event each time."""
    answer = httpx.post(f"{api}/events/filter", json={"limit": 1, "filter": {
        "event": {"name": ["prefect.artifact.updated"]}, "resource": {"id": [f"prefect.artifact.{artifact['id']}"]}}})
    answer.raise_for_status()
    return int(answer.json()["total"])


def form_run(api: str, plan: dict[str, Any], output: Path) -> tuple[FlowRun, list[tuple[int, str]]]:
    """A run of the manual deployment, to its end, and its logs."""
    with temporary_settings({PREFECT_API_URL: api}):
        run: FlowRun = run_deployment("render-plan-form/manual",  # type: ignore[assignment]
                                      parameters={"plan": plan, "output": f"file://{output}"}, timeout=600)
        time.sleep(3)  # run logs reach the API in batches, every 2 s
        return run, run_logs(run)


def run_logs(run: FlowRun) -> list[tuple[int, str]]:
    with get_client(sync_client=True) as client:
        found = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
    return [(log.level, log.message) for log in found]


def test_a_run_from_the_form_tells_its_story_and_shows_its_progress(served: str, sandbox: RunningSandbox,
                                                                   tmp_path: Path) -> None:
    plan = {"name": "ui-story", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": f"shot-{n}", "prompt": f"boats at the quay, take {n}"} for n in range(3)]}
    run, logs = form_run(served, plan, tmp_path)
    assert run.state is not None and run.state.is_completed(), run.state
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


def test_a_refused_scene_shows_its_error_and_ends_the_log_without_a_traceback(served: str, tmp_path: Path) -> None:
    plan = {"name": "ui-refused", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        *({"id": f"shot-{n}", "prompt": f"boats at the quay, take {n}"} for n in range(11)),
        {"id": "refused", "prompt": "[blocked] the sandbox's provider refuses this one"}]}
    run, logs = form_run(served, plan, tmp_path)
    assert run.state is not None and run.state.is_failed(), run.state
    manifest = json.loads((tmp_path / "ui-refused" / "manifest.json").read_text())
    (error,) = [scene["error"] for scene in manifest["scenes"] if scene["status"] == "failed"]
    assert "moderation_blocked" in error
    assert not [message for _, message in logs if "Traceback" in message]
    assert logs[-2] == (40, f"scene 'refused' failed: {error}")  # then Prefect's own last line:
    assert logs[-1][1].startswith("Finished in state Failed(") and logs[-1][0] == 20
    found = run_artifacts(served, run)
    assert {key: len(versions) for key, versions in found.items()} == {
        "ui-refused-progress": 1, "ui-refused-scenes": 1, "ui-refused-summary": 1}
    (table,), (progress,) = found["ui-refused-scenes"], found["ui-refused-progress"]
    # updated in place as the run went (how often depends on how long the run took: the board publishes every
    # few seconds), yet one card each
    assert wait_until(lambda: updates(served, table) >= 2 and updates(served, progress) >= 2, seconds=30), (
        updates(served, table), updates(served, progress))
    cards, columns, seen = artifacts_in_the_ui(served.removesuffix("/api"), run, table["id"])
    assert sorted(cards) == sorted(found)
    assert columns[:3] == ["scene", "status", "error"]
    assert seen.startswith(error[:40])  # the error is on screen where its cell begins, not scrolled off


def artifacts_in_the_ui(ui: str, run: FlowRun, table: str) -> tuple[list[str], list[str], str]:
    """The run's Artifacts tab: its cards' keys; the scene table's page: its columns, and the text shown at the
    start of the refused scene's error cell (screenshots of both)."""
    with browser_page() as page:
        page.goto(f"{ui}/runs/flow-run/{run.id}")
        page.get_by_text("Artifacts", exact=True).first.click(timeout=60_000)
        page.get_by_text("ui-refused-summary", exact=True).wait_for(timeout=30_000)
        cards = page.locator(".artifact-card__title").all_inner_texts()
        page.screenshot(path=str(ARTIFACTS / "refused-artifacts.png"), full_page=True)
        page.goto(f"{ui}/artifacts/artifact/{table}")
        cell = page.get_by_text("moderation_blocked", exact=False).first
        cell.wait_for(timeout=30_000)
        columns = page.locator("th").all_inner_texts()
        box = cell.bounding_box()
        assert box is not None
        seen = page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.innerText ?? ''",
                             [box["x"] + 5, box["y"] + box["height"] / 2])
        page.screenshot(path=str(ARTIFACTS / "refused-scene-table.png"))
    return cards, columns, str(seen)


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
        paused_at = datetime.now()
        announced, shown, described = review_in_the_ui(served.removesuffix("/api"), run)
        paid = sandbox.stats()["jobs"]
        review.answer({"dawn": "take 2", "gulls": "redo"}, {"gulls": "gulls over a stormy pier"})
        finished: FlowRun = asyncio.run(wait_for_flow_run(run.id, timeout=300, poll_interval=1))
        time.sleep(3)  # run logs reach the API in batches, every 2 s
        logs = [message for _, message in run_logs(run)]
    assert finished.state is not None and finished.state.is_completed(), finished.state
    assert shown == [["take 1", "take 2", "redo", "drop"]] * 2
    decide = "for each of 2 scenes (4 takes), keep a take, redo it with a changed prompt, or drop it"
    unanswered = "if nobody answers by then, each scene keeps its first take and the run goes on"
    assert f"The run waits for a review: {decide}." in announced and unanswered.capitalize() in announced
    assert f"Review of ui-review: {decide} (see the takes' thumbnails)." in described and unanswered in described
    deadline = re.search(r"Answer by (\d{4}-\d\d-\d\d \d\d:\d\d)", described)
    assert deadline is not None and deadline.group(1) in announced
    by = datetime.strptime(deadline.group(1), "%Y-%m-%d %H:%M")  # the timeout (3600 s) as a time
    assert paused_at + timedelta(seconds=3600 - 120) <= by <= paused_at + timedelta(seconds=3600 + 60)
    assert any(message.startswith("plan 'ui-review': 2 scenes (4 takes) on sandbox") for message in logs), logs
    said = f"waiting for a review (Resume on this run's page, or `reelflow review`): {decide}, by {deadline.group(1)}"
    assert any(message.startswith(said) and message.endswith(unanswered) for message in logs), logs
    found = run_artifacts(served, run)
    assert {key: len(versions) for key, versions in found.items()} == {
        "ui-review-progress": 1, "ui-review-scenes": 1, "ui-review-review": 1, "ui-review-summary": 1}
    assert found["ui-review-review"][0]["data"].startswith(
        "# Review of ui-review\n\n**Answered**: dawn: take 2 kept (review); gulls: redone (review).")
    assert paid - start == 4 and sandbox.stats()["jobs"] - paid == 1  # the takes, then the redo only
    summary = found["ui-review-summary"][0]["data"]  # what was paid beside the estimate: every take, and the redo
    assert "estimated **$1.60**" in summary and "This run paid 5 jobs, $2.00 at list price." in summary, summary
    folder = Storage(f"file://{tmp_path}").child("ui-review")
    manifest = json.loads(folder.read_bytes("manifest.json"))
    assert (manifest["paid"]["jobs"], manifest["paid"]["list_usd"]) == (5, 2.0)
    assert [(s["take"], s["choice"]["kind"], s["choice"]["by"]) for s in manifest["scenes"]] == [
        ("dawn.take2", "keep", "review"), ("gulls.redo", "redo", "review")]
    assert manifest["scenes"][1]["choice"]["prompt"] == "gulls over a stormy pier"
    for frame, chosen, other in ((30, "dawn.take2", "dawn"), (130, "gulls.redo", "gulls")):
        assert frame_psnr(folder, frame, (chosen, "video.mp4")) > 35 > frame_psnr(folder, frame, (other, "video.mp4"))


def test_the_run_form_reads_like_the_plan_and_an_empty_size_is_the_providers(served: str, tmp_path: Path) -> None:
    with temporary_settings({PREFECT_API_URL: served}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("render-plan-form/manual")
        labels, notes, run_id = form_filled_in_the_ui(served.removesuffix("/api"), deployment.id, tmp_path)
        finished: FlowRun = asyncio.run(wait_for_flow_run(run_id, timeout=300, poll_interval=1))
    assert finished.state is not None and finished.state.is_completed(), finished.state
    scene = labels[labels.index("Scenes") + 1:]
    assert scene[:3] == ["Id", "Prompt", "Size (Optional)"]
    assert [label for label in labels if label.lower().startswith("output")] == ["output (Optional)"]
    assert notes == 2  # `Property is type "None"`: only under the two audio fields, whose None is the provider's
    (rendered,) = json.loads((tmp_path / "form-test" / "manifest.json").read_text())["scenes"]
    assert rendered["size"] == load_profile("sandbox").default_size


def form_filled_in_the_ui(ui: str, deployment: UUID, output: Path) -> tuple[list[str], int, UUID]:
    """The manual deployment's form (Run > Custom run) with a scene added: its field labels in order and the
    type notes it shows; then a plan named, a scene given only its id and prompt, and the output, submitted."""
    with browser_page() as page:
        page.goto(f"{ui}/deployments/deployment/{deployment}/run")
        page.get_by_role("button", name="Add item").first.click(timeout=60_000)  # the first list: scenes
        page.locator(".schema-form-property__label", has_text=re.compile("^Prompt$")).wait_for()  # the scene's
        labels = page.locator(".schema-form-property__label").all_inner_texts()
        notes = page.get_by_text('Property is type "None"').count()
        for label, value in (("Name", "form-test"), ("Id", "dawn"), ("Prompt", "a harbour at dawn"),
                             ("output (Optional)", f"file://{output}")):
            field = page.locator(".schema-form-property").filter(has=page.locator(
                ".schema-form-property__label", has_text=re.compile(f"^{re.escape(label)}$"))).last
            field.locator("textarea, input").first.fill(value)
        page.screenshot(path=str(ARTIFACTS / "run-form.png"), full_page=True)
        with page.expect_response(lambda answer: answer.url.endswith("/create_flow_run")) as created:
            page.get_by_role("button", name="Submit").click()
        run_id = UUID(created.value.json()["id"])
    return labels, notes, run_id


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    """A page of Debian's headless Chromium, 1440 px wide."""
    assert shutil.which(CHROMIUM), "the UI test needs Debian's chromium (apt-get install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 1000})
        finally:
            browser.close()


def review_in_the_ui(ui: str, run: FlowRun) -> tuple[str, list[list[str]], str]:
    """The paused run's page in the Prefect UI: the review's artifact (from its card in the Artifacts tab); then
    its Resume form opened at the top of the page: each scene's choices, as its select lists them, and the
    form's description (screenshots show the artifact, and the form with its first list open)."""
    with browser_page() as page:
        page.goto(f"{ui}/runs/flow-run/{run.id}")
        page.get_by_text("Artifacts", exact=True).first.click(timeout=60_000)
        page.get_by_text("ui-review-review", exact=True).click(timeout=30_000)
        page.get_by_text("The run waits for a review").wait_for(timeout=30_000)
        announced = page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "review-announced.png"), full_page=True)
        page.goto(f"{ui}/runs/flow-run/{run.id}")
        page.get_by_role("button", name="Resume").first.click(timeout=60_000)
        page.get_by_text("Review of ui-review").wait_for(timeout=30_000)
        form = page.locator("#p-modal-teleport-target")  # the form's, not the page's
        described = form.inner_text()
        selects = form.locator(".p-select-button__control")
        choices: list[list[str]] = []
        for number in reversed(range(selects.count())):  # the first is left open for the screenshot
            selects.nth(number).focus()
            selects.nth(number).press("ArrowDown")  # the list opens on a key (a click only focuses it)
            page.get_by_role("option", name="take 2").wait_for(timeout=10_000)
            choices.insert(0, page.get_by_role("option").all_inner_texts())
            if number:
                page.keyboard.press("Escape")
        page.screenshot(path=str(ARTIFACTS / "review-form.png"), full_page=True)
    return announced, choices, described

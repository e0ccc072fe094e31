"""Takes and review: a scene rendered N times, a person's choice through Prefect's API (as the UI sends it),
the reel assembled from the chosen takes, and the first take kept when nobody answers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from flows.render_plan import render_plan
from flows.review import PausedReview, paused_review
from reelflow import Settings, parse_plan, validate_plan
from reelflow.cli import app
from reelflow.costs import estimate
from reelflow.plans import counted
from reelflow.providers import active_profile
from reelflow.results import PlanResult
from reelflow.sandbox import RunningSandbox
from reelflow.storage import Storage
from tests.media import psnr, video_frames
from tests.pipeline.test_what_users_see import latest_artifacts

OUT = "memory://takes"


def takes_plan(name: str, **changes: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {"name": name, "defaults": {"size": "1280x720", "seconds": 4}, "assemble": True,
                            "scenes": [{"id": "dawn", "prompt": "a harbour at dawn", "takes": 2},
                                       {"id": "gulls", "prompt": "gulls over the pier", "takes": 2}]}
    plan.update(changes)
    return plan


def jobs(sandbox: RunningSandbox) -> int:
    return int(sandbox.stats()["jobs"])


def test_the_estimate_counts_every_take() -> None:
    plan = parse_plan(takes_plan("counted"))
    profile = active_profile(Settings())
    scenes = validate_plan(plan, profile)
    assert [s.id for s in scenes] == ["dawn", "dawn.take2", "gulls", "gulls.take2"]
    assert sum(cost.jobs for cost in estimate(plan, scenes, profile, Settings()).scenes) == 4


def test_a_plan_with_takes_is_counted_in_scenes_then_takes() -> None:
    profile = active_profile(Settings())
    assert counted(validate_plan(parse_plan(takes_plan("counted")), profile)) == "2 scenes (4 takes)"
    plain = takes_plan("plain", scenes=[{"id": "dawn", "prompt": "a harbour at dawn"}, {"id": "gulls", "prompt": "x"}])
    assert counted(validate_plan(parse_plan(plain), profile)) == "2 scenes"


def test_without_a_review_every_take_is_paid_and_the_best_by_the_checks_is_kept(provider: RunningSandbox) -> None:
    before = jobs(provider)
    result = render_plan(parse_plan(takes_plan("unreviewed")), output=OUT)
    assert jobs(provider) - before == 4
    assert [(s.id, s.takes, s.choice and s.choice.by) for s in result.scenes] == [
        ("dawn", ["dawn", "dawn.take2"], "checks"), ("gulls", ["gulls", "gulls.take2"], "checks")]
    assert [s.take for s in result.scenes] == [None, None]  # every take passes: the first of equals is kept
    assert result.reel is not None


def reviewed(plan: dict[str, Any], answer: Any) -> PlanResult:
    """Render `plan` in a thread; `answer` is called with the paused review (read from the API) and answers it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = render_plan(parse_plan(plan), output=OUT)
        except Exception as e:  # re-raised below, in the test's thread
            outcome["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    review = waiting_review(plan["name"], worker.is_alive)
    if review is not None:
        answer(review)
    worker.join(timeout=300)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]


def waiting_review(plan: str, running: Callable[[], bool], seconds: float = 120) -> PausedReview | None:
    """The run of `plan` paused for its review, read from the API; None when `running` says it ended first."""
    deadline = time.monotonic() + seconds
    while running() and time.monotonic() < deadline:
        review = paused_review(plan)
        if review is not None:
            return review
        time.sleep(0.5)
    return None


def frame_psnr(storage: Storage, reel_frame: int, video: tuple[str, str]) -> float:
    reel = video_frames(storage.read_bytes("reel.mp4"))
    return psnr(reel[reel_frame], video_frames(storage.read_bytes(*video))[reel_frame % 96])


def test_a_review_keeps_a_chosen_take_and_redoes_a_scene_with_its_new_prompt(provider: RunningSandbox) -> None:
    paid = {"start": jobs(provider)}

    def answer(review: PausedReview) -> None:
        assert [(q.scene, q.options) for q in review.questions] == [
            ("dawn", ["take 1", "take 2", "redo", "drop"]), ("gulls", ["take 1", "take 2", "redo", "drop"])]
        paid["before"] = jobs(provider)
        review.answer({"dawn": "take 2", "gulls": "redo"}, {"gulls": "gulls over a stormy pier"})

    result = reviewed(takes_plan("reviewed", review=True), answer)
    assert paid["before"] - paid["start"] == 4 and jobs(provider) - paid["before"] == 1  # the redo, nothing else
    dawn, gulls = result.scenes
    assert (dawn.take, dawn.choice and dawn.choice.describe()) == ("dawn.take2", "take 2 kept (review)")
    assert (gulls.take, gulls.choice and gulls.choice.prompt) == ("gulls.redo", "gulls over a stormy pier")
    storage = Storage(OUT).child("reviewed")
    manifest = json.loads(storage.read_bytes("manifest.json"))
    assert [s["choice"]["kind"] for s in manifest["scenes"]] == ["keep", "redo"]
    assert manifest["scenes"][0]["files"]["video.mp4"]["url"].endswith("dawn.take2/video.mp4")
    # the reel: the chosen take of dawn (frames 0-95), then the redo of gulls (96-191)
    assert frame_psnr(storage, 30, ("dawn.take2", "video.mp4")) > 35 > frame_psnr(storage, 30, ("dawn", "video.mp4"))
    assert frame_psnr(storage, 130, ("gulls.redo", "video.mp4")) > 35 > frame_psnr(storage, 130, ("gulls", "video.mp4"))
    # a re-run takes the choices as they were made: nothing asked, nothing paid
    before = jobs(provider)
    again = render_plan(parse_plan(takes_plan("reviewed", review=True)), output=OUT)
    assert jobs(provider) == before
    assert [s.choice and s.choice.by for s in again.scenes] == ["earlier review", "earlier review"]


def test_a_review_nobody_answers_keeps_the_first_takes(provider: RunningSandbox) -> None:
    plan = takes_plan("unanswered", review=True, review_timeout_seconds=3, assemble=False)
    result = reviewed(plan, lambda review: None)
    assert [(s.take, s.choice and s.choice.describe()) for s in result.scenes] == [
        (None, "take 1 kept (timeout)"), (None, "take 1 kept (timeout)")]
    (page,) = asyncio.run(latest_artifacts("unanswered-review"))  # the announcement, updated in place
    assert str(page.data).startswith("# Review of unanswered\n\n**Nobody answered** by ")
    assert "each scene kept its first take" in str(page.data) and "![take 2](data:image/jpeg" in str(page.data)


def test_reelflow_review_answers_a_paused_run_on_a_terminal(provider: RunningSandbox, tmp_path: Path) -> None:
    plan = takes_plan("on-a-terminal", review=True, assemble=False)
    plan["scenes"][1]["takes"] = 1
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    said: dict[str, Result] = {}

    def answer(review: PausedReview) -> None:
        said["review"] = CliRunner().invoke(app, ["review", str(path)], input="take 2\nredo\ngulls at night\n")

    result = reviewed(plan, answer)
    assert said["review"].exit_code == 0, said["review"].output
    assert "scene 'dawn': a harbour at dawn" in said["review"].output
    assert [(s.take, s.choice and s.choice.describe()) for s in result.scenes] == [
        ("dawn.take2", "take 2 kept (review)"), ("gulls.redo", "redone (review)")]
    assert result.scenes[1].choice and result.scenes[1].choice.prompt == "gulls at night"


def test_reelflow_review_says_when_no_run_waits(provider: RunningSandbox, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(takes_plan("nobody-waits")))
    said = CliRunner().invoke(app, ["review", str(path)])
    assert (said.exit_code, said.output.strip()) == (1, "error: no run of plan 'nobody-waits' is paused for a review")

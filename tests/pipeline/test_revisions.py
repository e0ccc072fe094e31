"""Revisions: a finished video edited, then remixed, by the provider; every result kept, the last one the
scene's video, all of it resumable from the ledger like any other paid job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flows.render_plan import render_plan
from reelflow import Settings, estimate, load_profile, parse_plan, validate_plan
from reelflow.sandbox import RunningSandbox
from tests.media import probe_video, psnr, video_frames


def test_edits_and_remixes_apply_in_order_and_every_result_is_kept(provider: RunningSandbox,
                                                                  tmp_path: Path) -> None:
    plan = parse_plan({"name": "revised", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "harbour", "prompt": "a harbour at dawn", "extensions": [{"prompt": "a boat leaves", "seconds": 4}],
         "revisions": [{"edit": "make it dusk"}, {"remix": "the same harbour in winter"}]}]})
    before = provider.stats()["jobs_by_kind"]
    result = render_plan(plan, output=f"file://{tmp_path}")
    (scene,) = result.scenes
    assert scene.status == "completed" and len(scene.job_ids) == 4
    made = {kind: count - before.get(kind, 0) for kind, count in provider.stats()["jobs_by_kind"].items()}
    assert made == {"create": 1, "extension": 1, "edit": 1, "remix": 1}

    folder = tmp_path / "revised" / "harbour"
    videos = {name: (folder / name).read_bytes() for name in ("video.rev0.mp4", "video.rev1.mp4", "video.rev2.mp4",
                                                                "video.mp4")}
    assert {(probe_video(v).size, probe_video(v).seconds) for v in videos.values()} == {((1280, 720), 8.0)}
    assert hashlib.sha256(videos["video.mp4"]).digest() == hashlib.sha256(videos["video.rev2.mp4"]).digest()
    original, edited, remixed = (video_frames(videos[f"video.rev{n}.mp4"])[20] for n in range(3))
    assert psnr(original, edited) < 30 and psnr(edited, remixed) < 30  # each revision changed the picture
    ledger = json.loads((tmp_path / "revised" / "ledger" / "harbour.json").read_text())
    assert [(job["step"], job["status"]) for job in ledger["jobs"]] == [(step, "completed") for step in range(4)]
    assert set(ledger["files"]) >= set(videos)

    requests = provider.stats()["requests"]
    render_plan(plan, output=f"file://{tmp_path}")  # resumes: nothing to do, nothing asked
    assert provider.stats()["requests"] == requests


def test_a_revision_is_priced_as_the_whole_video_again() -> None:
    plan = parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x", "model": "sora-2", "size": "1280x720",
                                                "seconds": 8, "revisions": [{"remix": "y"}, {"edit": "z"}]}]})
    profile = load_profile("sora")
    (cost,) = estimate(plan, validate_plan(plan, profile), profile, Settings()).scenes
    assert (cost.seconds, cost.billed_seconds, cost.jobs, cost.usd) == (8, 24, 3, 2.40)  # 3 x 8 s x $0.10

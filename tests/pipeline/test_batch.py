"""`mode: batch`: a plan's first jobs go to the provider as one Batch API batch (reference images inlined
as data URLs), then each scene continues and downloads as usual; a killed run picks up the same batch."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import yaml
from PIL import Image

from flows.render_plan import render_plan
from reelflow import Settings, estimate, load_profile, parse_plan, validate_plan
from reelflow._dry_run import describe
from reelflow.ledger import BatchRecord, Ledger
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tasks.batch import BatchProgress, run_batch
from tasks.videos import WaitPolicy
from tests.conftest import gateway_to
from tests.images import encoded, photo
from tests.media import probe_video, psnr, video_frames
from tests.pipeline.test_crash import start_run

SCENES = 10


def plan_text(image: Path) -> str:
    lines = ["name: batched", "mode: batch", "defaults: {size: 1280x720, seconds: 4}", "scenes:"]
    lines += [f"  - {{id: shot-{i}, prompt: shot {i} of the batch}}" for i in range(2, SCENES)]
    lines += [f"  - {{id: shot-0, prompt: from a photo, image: {image}}}",
              "  - {id: shot-1, prompt: a road, extensions: [{prompt: a town, seconds: 4}]}"]
    return "\n".join(lines) + "\n"


def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(encoded(photo((1500, 900)), "PNG"))
    return path


def test_a_batch_mode_plan_renders_through_one_batch(provider: RunningSandbox, tmp_path: Path) -> None:
    before = provider.stats()
    plan = parse_plan(yaml.safe_load(plan_text(photo_file(tmp_path))))
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [s.status for s in result.scenes] == ["completed"] * SCENES
    stats = provider.stats()
    assert stats["batches"] - before["batches"] == 1
    assert stats["requests"].get("POST /v1/videos", 0) == before["requests"].get("POST /v1/videos", 0)
    assert stats["jobs_by_kind"]["create"] - before["jobs_by_kind"].get("create", 0) == SCENES
    out = tmp_path / "out" / "batched"
    assert probe_video((out / "shot-1" / "video.mp4").read_bytes()).seconds == 8.0  # extended as usual
    # The reference went inline, prepared to the exact size: it is the first frame.
    first = video_frames((out / "shot-0" / "video.mp4").read_bytes())[0]
    with Image.open(out / "shot-0" / "reference.jpg") as sent:
        assert sent.size == (1280, 720) and psnr(first, sent) > 35


def test_a_killed_batch_run_resumes_the_same_batch(tmp_path: Path, local_prefect_server: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text(photo_file(tmp_path)))
    with run_sandbox(job_seconds=20) as sandbox:
        victim = start_run(plan, tmp_path / "out", sandbox.base_url, sandbox.api_key)
        deadline = time.monotonic() + 400
        while sandbox.stats()["batches"] < 1:
            assert victim.poll() is None, victim.communicate()
            assert time.monotonic() < deadline, "the run never created its batch"
            time.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.communicate()

        resumed = start_run(plan, tmp_path / "out", sandbox.base_url, sandbox.api_key)
        _, stderr = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, stderr
        stats = sandbox.stats()
    assert stats["batches"] == 1
    assert stats["jobs_by_kind"] == {"create": SCENES, "extension": 1}
    assert "POST /v1/videos" not in stats["requests"]
    for index in range(SCENES):
        info = probe_video((tmp_path / "out" / "batched" / f"shot-{index}" / "video.mp4").read_bytes())
        assert info.size == (1280, 720)


def test_a_batch_whose_create_answer_was_lost_is_found_not_sent_again(sandbox: RunningSandbox) -> None:
    """The create went out (recorded as sent), its answer never came back: the task finds the batch by
    its input file instead of paying for the same requests twice."""
    gateway = gateway_to(sandbox)
    line = b'{"custom_id": "a", "method": "POST", "url": "/v1/videos", "body": {"prompt": "lost answer"}}\n'

    async def scenario() -> dict[str, object]:
        file_id = await gateway.batches().upload_batch(line)
        already = await gateway.batches().create_batch(file_id)  # the create whose answer was "lost"
        progress = BatchProgress(Ledger(Storage("memory://batch")), BatchRecord(
            scenes=["a"], input_file_id=file_id, create_sent=True))
        results = await run_batch.fn(gateway, progress, line, WaitPolicy(0.05, 0.5, 60))
        assert progress.record.batch_id == already.id
        await gateway.close()
        return dict(results)

    batches = sandbox.stats()["batches"]
    results = asyncio.run(scenario())
    assert sandbox.stats()["batches"] == batches + 1  # only the one already there
    assert list(results) == ["a"]


def test_a_dry_run_of_a_batch_plan_says_how_its_creates_go(tmp_path: Path) -> None:
    plan = parse_plan(yaml.safe_load(plan_text(photo_file(tmp_path))))
    profile, settings = load_profile("sandbox"), Settings()
    scenes = validate_plan(plan, profile)
    text = describe(plan, scenes, profile, settings, estimate(plan, scenes, profile, settings), Storage("memory://dry"))
    assert "mode: batch: each scene's request 1 goes as a line of one batch" in text
    assert text.count("  1. POST /v1/videos\n") == SCENES

"""Defective media on purpose (#37), through the real openai SDK: a prompt's defect marker makes its first job's
video defective (reported completed, as a provider does) and later jobs of the same prompt clean; `defect_rate`
makes jobs defective at random. What is wrong is measured on the decoded video, not taken from the sandbox."""

from __future__ import annotations

import numpy as np
import openai
from typer.testing import CliRunner

from reelflow.cli import app
from reelflow.sandbox import FPS, RunningSandbox, run_sandbox
from tests.conftest import sdk
from tests.media import probe_video, sound_of, video_frames


def made(client: openai.OpenAI, prompt: str, seconds: str = "4") -> bytes:
    video = client.videos.create(prompt=prompt, size="1280x720", seconds=seconds)  # type: ignore[arg-type]
    video = client.videos.poll(video.id, poll_interval_ms=50)
    assert video.status == "completed", video.error  # a defective take is a success, as far as the provider says
    return client.videos.download_content(video.id).read()


def luma(data: bytes) -> list[float]:
    return [float(np.asarray(frame.convert("L")).mean()) for frame in video_frames(data)]


def sound_peak(data: bytes) -> float:
    sound = sound_of(data)
    assert sound is not None  # a silent take still has its sound track: silence
    return float(np.abs(sound.samples).max())


def test_a_marker_spoils_the_first_job_of_its_prompt_and_only_that_one(client: openai.OpenAI) -> None:
    black, again = made(client, "a pier at night [black]"), made(client, "a pier at night [black]")
    assert max(luma(black)[:FPS * 3 // 2]) < 20 < min(luma(again)[:FPS * 3 // 2])  # the first 1.5 s black, once
    silent, loud = made(client, "gulls [silent]"), made(client, "gulls [silent]")
    assert sound_peak(silent) == 0.0 < sound_peak(loud)
    short = probe_video(made(client, "a boat [short]"))
    assert short.frames == 4 * FPS - FPS * 3 // 2 and probe_video(made(client, "a boat [short]")).frames == 4 * FPS
    flash = luma(made(client, "waves [flash]"))
    assert sum(level > 250 for level in flash) == 2  # two full-white frames


def test_a_frozen_take_holds_one_picture_for_two_seconds(client: openai.OpenAI) -> None:
    frames = [np.asarray(frame) for frame in video_frames(made(client, "a crane [frozen]"))]
    held = [index for index in range(1, len(frames)) if np.abs(frames[index].astype(int) - frames[index - 1]).max() < 8]
    assert len(held) >= 2 * FPS - 2 and min(held) >= FPS  # from 1 s on


def test_a_defect_rate_spoils_that_share_of_jobs_and_counts_them() -> None:
    with run_sandbox(job_seconds=0.1, defect_rate=1.0, seed=3) as always:
        client = sdk(always, max_retries=0)
        for number in range(3):
            made(client, f"a field {number}")
        assert sum(always.stats()["defects"].values()) == 3
    with run_sandbox(job_seconds=0.1) as never:
        made(sdk(never, max_retries=0), "a field")
        assert never.stats()["defects"] == {}


def test_the_cli_takes_a_defect_rate_between_0_and_1() -> None:
    outcome = CliRunner().invoke(app, ["sandbox", "--defect-rate", "1.5"])
    assert outcome.exit_code != 0 and "defect_rate" in outcome.output


def test_a_running_sandbox_reports_its_defects(sandbox: RunningSandbox) -> None:
    before = sandbox.stats()["defects"].get("off-reference", 0)
    made(sdk(sandbox, max_retries=0), "a meadow [off-reference]")
    assert sandbox.stats()["defects"]["off-reference"] == before + 1

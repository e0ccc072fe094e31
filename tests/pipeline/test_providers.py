"""The same plan on a narrow provider: a sandbox posing as Runway through LiteLLM (no /extensions, 5 or 10 s
clips, only the video to download). Extensions continue from each clip's last frame and are stitched here,
lengths it lacks are cut into clips, the pictures are made here; what it cannot do is refused up front."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from flows.render_plan import render_plan
from reelflow import PlanError, parse_plan
from reelflow.sandbox import (
    FPS,  # the sandbox's frame rate
    RunningSandbox,
    run_sandbox,
)
from tests.media import clip_bytes, probe_video, psnr, video_frames
from tests.pipeline.conftest import point_at


@pytest.fixture(scope="module")
def runway_sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="litellm-runway", job_seconds=0.2) as running:
        yield running


@pytest.fixture
def runway(monkeypatch: pytest.MonkeyPatch, runway_sandbox: RunningSandbox, prefect_harness: None) -> RunningSandbox:
    point_at(monkeypatch, runway_sandbox.base_url, runway_sandbox.api_key, provider="litellm-runway")
    return runway_sandbox


def test_a_20_second_extension_chain_renders_without_extensions(runway: RunningSandbox, tmp_path: Path) -> None:
    plan = parse_plan({"name": "narrow", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "chain", "prompt": "a harbour at dawn", "seconds": 10,
         "extensions": [{"prompt": "the first boat leaves", "seconds": 10}]},
        {"id": "long", "prompt": "a lighthouse", "seconds": 20},
        {"id": "short", "prompt": "a gull", "seconds": 5}]})
    before = runway.stats()
    result = render_plan(plan, output=f"file://{tmp_path}")
    assert [s.status for s in result.scenes] == ["completed"] * 3
    stats = runway.stats()
    assert stats["jobs"] - before["jobs"] == 5  # 10+10, 10+10 and 5: every segment its own create
    assert set(stats["jobs_by_kind"]) == {"create"}
    assert stats["responses"].get("400", 0) == before["responses"].get("400", 0)  # no variant it lacks was asked for

    scene = tmp_path / "narrow" / "chain"
    first, second = (video_frames((scene / "segments" / f"{i}.mp4").read_bytes()) for i in (0, 1))
    assert len(first) == len(second) == 10 * FPS
    # The second clip starts on the first clip's last frame, because that frame was its reference.
    sent = picture(scene / "segments" / "1.first-frame.jpg")
    assert sent.size == (1280, 720) and psnr(sent, first[-1]) > 40
    # Stitched: the first clip, then the second without its first frame (the join shows no frame twice).
    stitched = (scene / "video.mp4").read_bytes()
    info = probe_video(stitched)
    assert (info.size, info.frames) == ((1280, 720), 2 * 10 * FPS - 1)
    assert abs(info.seconds - (20 - 1 / FPS)) < 0.005  # one frame fewer, nothing more
    joined = video_frames(stitched)
    assert psnr(joined[len(first) - 1], first[-1]) > 45 and psnr(joined[len(first)], second[1]) > 45
    assert psnr(joined[len(first) - 1], joined[len(first)]) < psnr(second[0], first[-1]) - 3
    # The pictures a provider serves, made here from the stitched video.
    assert picture(scene / "thumbnail.webp").size == (1280, 720)
    assert psnr(picture(scene / "thumbnail.webp"), joined[0]) > 35
    assert picture(scene / "spritesheet.jpg").size[0] == 1024
    assert picture(tmp_path / "narrow" / "short" / "spritesheet.jpg").format == "JPEG"
    # The ledger records each segment's job.
    ledger = json.loads((tmp_path / "narrow" / "ledger" / "chain.json").read_text())
    assert [(job["step"], job["status"]) for job in ledger["jobs"]] == [(0, "completed"), (1, "completed")]
    assert {"segments/0.mp4", "segments/1.mp4", "video.mp4"} <= set(ledger["files"])
    assert probe_video((tmp_path / "narrow" / "long" / "video.mp4").read_bytes()).frames == 2 * 10 * FPS - 1

    again = runway.stats()["requests"]
    render_plan(plan, output=f"file://{tmp_path}")  # resumes: everything verified, nothing asked
    assert runway.stats()["requests"] == again


def picture(path: Path) -> Image.Image:
    return Image.open(io.BytesIO(path.read_bytes()))


def clip(tmp_path: Path) -> str:
    path = tmp_path / "mira.mp4"
    path.write_bytes(clip_bytes(3))
    return str(path)


REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "characters": ({"characters": [{"name": "Mira", "clip": "CLIP"}],
                    "scenes": [{"id": "pier", "prompt": "Mira on the pier", "characters": ["Mira"]}]},
                   "characters: provider 'litellm-runway' has no characters"),
    "edits": ({"scenes": [{"id": "pier", "prompt": "a pier", "revisions": [{"edit": "at night"}]}]},
              "scene 'pier': revisions[0].edit: provider 'litellm-runway' has no edits"),
    "remix": ({"scenes": [{"id": "pier", "prompt": "a pier", "revisions": [{"remix": "in winter"}]}]},
              "scene 'pier': revisions[0].remix: provider 'litellm-runway' has no remix"),
    "batch": ({"mode": "batch", "scenes": [{"id": "pier", "prompt": "a pier"}]},
              "mode: batch: provider 'litellm-runway' has no batch API for videos"),
    "a model it lacks": ({"scenes": [{"id": "pier", "prompt": "a pier", "model": "sora-2-pro"}]},
                         "scene 'pier': model: 'sora-2-pro' is not offered by provider 'litellm-runway'"),
    "a size it lacks": ({"scenes": [{"id": "pier", "prompt": "a pier", "size": "1920x1080"}]},
                        "scene 'pier': size: 1920x1080 is not available for gen4_turbo on litellm-runway"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_the_provider_cannot_do_is_refused_before_any_call(case: str, runway: RunningSandbox,
                                                                tmp_path: Path) -> None:
    fragment, expected = REFUSALS[case]
    data = json.loads(json.dumps({"name": "refused", **fragment}).replace('"CLIP"', json.dumps(clip(tmp_path))))
    requests = sum(runway.stats()["requests"].values())
    with pytest.raises(PlanError) as refused:
        render_plan(parse_plan(data), output=f"file://{tmp_path}")
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
    assert sum(runway.stats()["requests"].values()) == requests

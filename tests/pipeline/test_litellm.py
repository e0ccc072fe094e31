"""A plan rendered through a real LiteLLM proxy: reelflow -> LiteLLM (`litellm[proxy]` from PyPI, in its own
venv: `make` installs it) -> the sandbox, with the `litellm` profile.

What LiteLLM 1.108.7 (as 1.106.2 before it) forwards to an `openai/...` model with its own `api_base`: create
(with a reference image), retrieve and content. What it does not: the job list (400 "LLM Provider NOT
provided"), extensions and edits (sent to api.openai.com whatever the api_base: 500), delete (405); every
`variant` is answered with the video. Its job ids encode the model, and the ids it answers a retrieve or a
remix with leave the model out and no longer route (500, api.openai.com): reelflow keeps the id the create
returned, and the `litellm` profile has no remix, whose result could not be followed. This test holds reelflow
to that."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image

from flows.render_plan import render_plan
from reelflow import parse_plan
from reelflow.sandbox import FPS, RunningSandbox, run_sandbox
from tests.conftest import free_port
from tests.images import encoded, photo
from tests.media import probe_video, psnr, video_frames
from tests.pipeline.conftest import point_at

REPO = Path(__file__).resolve().parents[2]
LITELLM = Path(os.environ.get("REELFLOW_TEST_LITELLM", REPO / ".venv-litellm" / "bin" / "litellm"))
MASTER_KEY = "sk-litellm-test"


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningSandbox]:
    with run_sandbox(job_seconds=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def litellm_proxy(upstream: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`litellm --config` on loopback, forwarding model `sora-2` to the sandbox; yields its /v1 URL."""
    assert LITELLM.exists(), f"{LITELLM} is missing: `make` installs LiteLLM's proxy into .venv-litellm"
    folder = tmp_path_factory.mktemp("litellm")
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "sora-2", "litellm_params": {
            "model": "openai/sora-2", "api_base": upstream.base_url, "api_key": upstream.api_key}}],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False}}))
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_DOCS": "True"}
    with (folder / "proxy.log").open("w") as log:
        proxy = subprocess.Popen([str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True)
    try:
        wait_until_live(f"http://127.0.0.1:{port}/health/liveliness", proxy, folder / "proxy.log")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


def wait_until_live(url: str, proxy: subprocess.Popen[bytes], log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert proxy.poll() is None, f"litellm exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"litellm did not start:\n{log.read_text()}"
            time.sleep(0.5)


def test_a_plan_renders_through_a_litellm_proxy(litellm_proxy: str, upstream: RunningSandbox,
                                                monkeypatch: pytest.MonkeyPatch, prefect_harness: None,
                                                tmp_path: Path) -> None:
    point_at(monkeypatch, litellm_proxy, MASTER_KEY, provider="litellm")
    (tmp_path / "wide.png").write_bytes(encoded(photo((1600, 700)), "PNG"))
    plan = parse_plan({"name": "gateway", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "pictured", "prompt": "a harbour at dawn", "image": str(tmp_path / "wide.png"), "seconds": 4},
        {"id": "chained", "prompt": "a lighthouse", "seconds": 12,
         "extensions": [{"prompt": "the lamp turns on", "seconds": 8}]},
        {"id": "portrait", "prompt": "a gull", "size": "720x1280", "seconds": 8},
    ]})
    before = upstream.stats()["jobs_by_kind"]
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [s.status for s in result.scenes] == ["completed"] * 3, result.summary()

    created = upstream.stats()["jobs_by_kind"].get("create", 0) - before.get("create", 0)
    assert created == 4  # one each, and the extension as a clip of its own (LiteLLM cannot extend)
    assert upstream.stats()["jobs_by_kind"].get("extension", 0) == before.get("extension", 0)
    out = tmp_path / "out" / "gateway"
    for scene, size, frames in (("pictured", (1280, 720), 4 * FPS), ("chained", (1280, 720), 20 * FPS - 1),
                                ("portrait", (720, 1280), 8 * FPS)):
        info = probe_video((out / scene / "video.mp4").read_bytes())
        assert (info.size, info.frames) == (size, frames), scene
        with Image.open(out / scene / "thumbnail.webp") as thumbnail:
            assert thumbnail.size == size  # made here: LiteLLM answers every variant with the video
    # The reference went through the proxy, prepared to the exact size: it is the first frame.
    with Image.open(out / "pictured" / "reference.jpg") as sent:
        assert sent.size == (1280, 720)
        assert psnr(video_frames((out / "pictured" / "video.mp4").read_bytes())[0], sent) > 35

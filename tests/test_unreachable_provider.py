"""A provider that cannot be reached (its base URL a closed loopback port) is said within 15 s of the run saying
where it renders (Python's and Prefect's start before it are every command's, and grow on a loaded machine), in one
line, and the run stops: for every dialect, through the real `reelflow run`, with nothing from any library's logger
on the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelflow.sandbox import run_sandbox
from tests.conftest import free_port
from tests.images import awkward_references

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("local_prefect_server")


def closed(path: str = "") -> str:
    """A loopback base URL no one serves."""
    return f"http://127.0.0.1:{free_port()}{path}"


# Each dialect with only its own credentials set, its base URL closed.
UNREACHABLE = {
    "openrouter": {"OPENROUTER_API_KEY": "sk-or-v1-x", "OPENROUTER_BASE_URL": closed("/api/v1")},
    "fal": {"FAL_KEY": "fal-id:secret", "FAL_QUEUE_URL": closed()},  # its reference image is uploaded first
    # google-genai logs a WARNING of its own when both keys are set: it must not reach the terminal (both keys pick
    # a provider each, Veo and Gemini Omni: the user names one)
    "google-vertex": {"GOOGLE_API_KEY": "AQ.express", "GEMINI_API_KEY": "AIza-x", "REELFLOW_PROVIDER": "google-vertex",
                      "GOOGLE_VERTEX_BASE_URL": closed()},
    "gemini-omni": {"GEMINI_API_KEY": "AIza-x", "GOOGLE_GEMINI_BASE_URL": closed()},
    "openai-gateway": {"OPENAI_API_KEY": "sk-gw", "OPENAI_BASE_URL": closed("/v1")},
}


@pytest.mark.parametrize("provider", list(UNREACHABLE))
def test_an_unreachable_provider_is_one_line_within_15_s(provider: str, tmp_path: Path) -> None:
    (tmp_path / "wide.jpg").write_bytes(awkward_references()["panorama.jpg"])
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: offline\ndefaults: {size: 1280x720}\nscenes:\n"
                    + "".join(f"  - {{id: s{n}, prompt: shot {n}, image: wide.jpg}}\n" for n in range(3)))
    environment = UNREACHABLE[provider]
    with subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                           f"file://{tmp_path}/out"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          cwd=REPO, env={**os.environ, **environment}) as process:
        assert process.stderr is not None
        announced = process.stderr.readline()
        began = time.monotonic()  # the run has chosen its provider: from here on it is the provider's time
        stderr = announced + process.stderr.read()
        took = time.monotonic() - began
        assert process.wait(timeout=60) == 1, stderr
    assert took < 15, f"{took:.1f} s"
    base_url = next(value for name, value in environment.items() if name.endswith("_URL"))
    announced, *rest = stderr.splitlines()
    assert announced.startswith(f"Rendering on '{provider}' at {base_url}")
    errors = [line for line in rest if line.startswith("error:")]
    assert len(errors) == 1 and f"could not connect to {base_url}" in errors[0], stderr
    assert "nothing was sent" in errors[0]
    progress = [line for line in rest if not line.startswith("error:")]
    assert all(re.fullmatch(r"scene 's\d': [a-z ]+", line) for line in progress), stderr  # no library's line


def test_the_run_after_an_unreachable_one_sends_the_create_as_new(tmp_path: Path) -> None:
    """The create that found the provider unreachable sent nothing, so it is not left "unknown, may be paid" on a
    provider that lists no jobs. (One scene at a time: a create in flight in another scene when the run stops is
    cancelled, its answer lost, as when a key is rejected.)"""
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: later\nscenes:\n  - {id: a, prompt: a harbour}\n  - {id: b, prompt: a town}\n")
    output = f"file://{tmp_path}/out"

    def run(base_url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", output],
                              capture_output=True, text=True, cwd=REPO, timeout=300, env={
                                  **os.environ, "OPENROUTER_API_KEY": "sk-or-v1-x", "OPENROUTER_BASE_URL": base_url,
                                  "REELFLOW_POLL_MIN_SECONDS": "0.1", "REELFLOW_MAX_CONCURRENT": "1"})

    assert run(closed("/api/v1")).returncode == 1
    with run_sandbox(profile="openrouter", job_seconds=0.2) as pose:
        done = run(pose.base_url)
        jobs = pose.stats()["jobs"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert jobs == 2 and "unknown" not in done.stdout + done.stderr

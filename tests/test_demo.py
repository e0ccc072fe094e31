"""`make demo`: the demo plan rendered on the embedded sandbox posing as OpenRouter (Veo 3.1 Fast, with sound),
whatever keys the shell holds, ending with the lines that render it for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import probe_video, sound_of

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("local_prefect_server")


def test_make_demo_renders_on_openrouters_pose_with_sound_and_says_how_to_go_live(tmp_path: Path) -> None:
    output = f"file://{tmp_path}"
    environment = {**os.environ, "REELFLOW_SANDBOX_JOB_SECONDS": "0.2",
                   "OPENROUTER_API_KEY": "sk-or-v1-in-the-shell", "REELFLOW_PROVIDER": "fal"}  # left out by the demo
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "demo", f"DEMO_OUTPUT={output}",
                           f"BIN={Path(sys.executable).parent}"], capture_output=True, text=True, cwd=REPO,
                          env=environment, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == (
        "No credentials of 'openrouter' are set: rendering test videos on the embedded sandbox on loopback, posing "
        "as 'openrouter'. To render on openrouter for real, set OPENROUTER_API_KEY.")
    assert "Estimate on openrouter" in done.stdout and "google/veo-3.1-fast" in done.stdout
    assert done.stdout.splitlines()[-3:] == [
        "That ran on reelflow's sandbox, posing as openrouter. To render the same plan on openrouter for real:",
        "  export OPENROUTER_API_KEY=...",
        f"  reelflow run deployments/plans/demo.yaml --output {output}"]
    for scene, seconds in {"opening": 12, "tree": 4, "closing": 4}.items():
        data = (tmp_path / "demo" / scene / "video.mp4").read_bytes()
        assert round(probe_video(data).seconds) == seconds and sound_of(data) is not None, scene
    assert sound_of((tmp_path / "demo" / "reel.mp4").read_bytes()) is not None

"""A run killed outright (SIGKILL, like a closed laptop) resumes without creating any job twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from reelflow.sandbox import run_sandbox
from tests.media import probe_video

PLAN = """\
name: crash
defaults: {size: 1280x720, seconds: 4}
scenes:
  - {id: alpha, prompt: first}
  - {id: beta, prompt: second, extensions: [{prompt: then, seconds: 4}]}
  - {id: gamma, prompt: third}
"""


def start_run(plan: Path, output: Path, base_url: str, api_key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": api_key, "OPENAI_BASE_URL": base_url, "REELFLOW_PROVIDER": "sandbox",
           "REELFLOW_POLL_MIN_SECONDS": "0.2"}
    return subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{output}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_sigkill_after_the_jobs_were_created_then_resume(tmp_path: Path, local_prefect_server: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    with run_sandbox(job_seconds=15) as sandbox:
        victim = start_run(plan, tmp_path / "out", sandbox.base_url, sandbox.api_key)
        deadline = time.monotonic() + 400
        while sandbox.stats()["jobs_by_kind"].get("create", 0) < 3:
            assert victim.poll() is None, victim.communicate()
            assert time.monotonic() < deadline, "the run never created its jobs"
            time.sleep(0.1)
        os.killpg(victim.pid, signal.SIGKILL)  # the run, mid-wait (the Prefect server is not its child)
        victim.communicate()
        assert sandbox.stats()["requests"].get("GET /v1/videos/{id}/content", 0) == 0

        resumed = start_run(plan, tmp_path / "out", sandbox.base_url, sandbox.api_key)
        _, stderr = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, stderr
        stats = sandbox.stats()
    assert stats["jobs_by_kind"] == {"create": 3, "extension": 1}
    assert stats["requests"]["POST /v1/videos"] == 3
    for scene, seconds in (("alpha", 4), ("beta", 8), ("gamma", 4)):
        info = probe_video((tmp_path / "out" / "crash" / scene / "video.mp4").read_bytes())
        assert (info.size, info.seconds) == ((1280, 720), seconds)
    assert not list((tmp_path / "out").rglob("*.part-*"))
    with sqlite3.connect(Path(os.environ["PREFECT_HOME"]) / "prefect.db") as db:
        states = [row[0] for row in db.execute("SELECT state_type FROM flow_run WHERE json_extract(parameters, "
                                               "'$.output') = ? ORDER BY created", (f"file://{tmp_path / 'out'}",))]
    assert states == ["CRASHED", "COMPLETED"]  # the killed run does not stay RUNNING

"""Without PREFECT_API_URL, the first command starts a Prefect server in the background; later commands
reuse it, and Prefect's own `prefect server stop` stops it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from reelflow.prefect_server import healthy
from tests.conftest import free_port, wait_until


def reelflow_run(plan: Path, output: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{output}"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def flow_runs_recorded(api: str) -> int:
    request = urllib.request.Request(f"{api}/flow_runs/count", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(json.load(answer))


def test_the_first_run_starts_a_server_that_later_runs_reuse(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {"PREFECT_HOME": str(tmp_path / "home"), "REELFLOW_PREFECT_PORT": str(port),
           "REELFLOW_SANDBOX_JOB_SECONDS": "0.1"}
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: once\nscenes:\n  - {id: only, prompt: a lighthouse}\n")
    try:
        first = reelflow_run(plan, tmp_path / "first", env)
        assert first.returncode == 0, first.stderr
        assert f"Started a Prefect server for reelflow's runs: UI at http://127.0.0.1:{port}" in first.stderr
        second = reelflow_run(plan, tmp_path / "second", env)
        assert second.returncode == 0, second.stderr
        assert "Started a Prefect server" not in second.stderr
        assert flow_runs_recorded(api) == 2
    finally:
        stopped = subprocess.run([sys.executable, "-m", "prefect", "server", "stop"], capture_output=True,
                                 text=True, env={**os.environ, **env}, timeout=120)
    assert "Server stopped!" in stopped.stdout, stopped.stdout + stopped.stderr
    assert wait_until(lambda: not healthy(api)), "the server still answers after `prefect server stop`"

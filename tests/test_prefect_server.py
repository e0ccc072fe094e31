"""Without PREFECT_API_URL, the first command starts a Prefect server in the background; later commands
reuse it, and Prefect's own `prefect server stop` stops it; a run whose server goes away goes on without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from reelflow.prefect_server import PID_FILE, healthy
from reelflow.sandbox import run_sandbox
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


def test_a_run_whose_prefect_server_went_away_renders_writes_its_manifest_and_says_so_once(tmp_path: Path) -> None:
    """The server killed while the run's jobs render: the run goes on without its page in the Prefect UI, writes
    its videos, manifest and report, and says so in one line, with no traceback."""
    port, home = free_port(), tmp_path / "home"
    env = {"PREFECT_HOME": str(home), "REELFLOW_PREFECT_PORT": str(port), "REELFLOW_POLL_MIN_SECONDS": "0.2"}
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: gone\nscenes:\n  - {id: a, prompt: a lighthouse}\n  - {id: b, prompt: a harbour}\n")
    with run_sandbox(job_seconds=8) as sandbox:
        env |= {"REELFLOW_PROVIDER": "sandbox", "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url}
        run = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                                f"file://{tmp_path / 'out'}"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: sandbox.stats()["jobs"] == 2, seconds=300), "the run never created its jobs"
            server = int((home / PID_FILE).read_text())
            os.killpg(server, signal.SIGKILL)  # the server and its workers, mid-render
            stdout, stderr = run.communicate(timeout=300)
        finally:
            run.kill()
    printed = stdout + stderr
    assert run.returncode == 0, printed
    said = [line for line in printed.splitlines() if "Prefect server stopped answering" in line]
    assert len(said) == 1 and "Traceback" not in printed and "Error logging" not in printed, printed
    manifest = json.loads((tmp_path / "out" / "gone" / "manifest.json").read_text())
    assert [s["status"] for s in manifest["scenes"]] == ["completed", "completed"]
    assert any("Prefect server stopped answering" in note for note in manifest["warnings"]), manifest
    assert (tmp_path / "out" / "gone" / "report.html").exists() and sandbox.stats()["jobs"] == 2

"""A keyless run killed outright (SIGKILL) leaves no process of its own behind: the embedded sandbox it started
ends with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import wait_until


def children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_sigkilled_keyless_run_leaves_no_process_of_its_own(tmp_path: Path, local_prefect_server: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: orphans\nscenes:\n  - {id: a, prompt: a lighthouse}\n")
    env = {**os.environ, "REELFLOW_SANDBOX_JOB_SECONDS": "120"}  # no key: the embedded sandbox
    run = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{tmp_path}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    own: dict[int, str] = {}
    try:
        assert wait_until(lambda: any("sandbox" in c for c in children_of(run.pid).values()), seconds=120), \
            "the run never started its sandbox"
        own = children_of(run.pid)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in own), seconds=15), \
            {pid: command for pid, command in own.items() if alive(pid)}
    finally:
        for pid in own:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

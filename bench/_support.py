"""What several benchmarks share: commands pointed at a sandbox in its own process (so that its media rendering
does not compete for the measured process's interpreter), and commands run the way a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reelflow.sandbox_process import SandboxProcess, sandbox_process

__all__ = ["Finished", "SandboxProcess", "free_port", "pointed_at", "reelflow_run", "sandbox_process", "scenes_plan",
           "timed_command"]


def pointed_at(sandbox: SandboxProcess, **settings: str) -> dict[str, str]:
    """The environment of a `reelflow` command pointed at `sandbox` as at a real provider."""
    return {**os.environ, "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url,
            "REELFLOW_PROVIDER": "sandbox", **{f"REELFLOW_{k.upper()}": v for k, v in settings.items()}}


RUN_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class Finished:
    """What one command took, as a whole process: its wall seconds, peak RSS (MB) and CPU seconds."""

    seconds: float
    peak_rss_mb: float
    cpu_seconds: float


def timed_command(command: list[str], env: dict[str, str]) -> Finished:
    """Run `command` to its end (failing if it fails), timed from its start to its exit."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = threading.Timer(RUN_TIMEOUT_SECONDS, process.kill)
        deadline.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # (its resource usage: Popen.wait does not give it)
        finally:
            deadline.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command[:4])} failed:\n{log.read()}")
    return Finished(time.monotonic() - started, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def reelflow_run(plan: Path, output: Path, env: dict[str, str]) -> Finished:
    return timed_command([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{output}"],
                         env)


def scenes_plan(folder: Path, name: str, scenes: int) -> Path:
    """A plan of `scenes` 4 s 1280x720 shots, written into `folder`."""
    plan = folder / f"{name}.yaml"
    plan.write_text(f"name: {name}\ndefaults: {{size: 1280x720, seconds: 4}}\nscenes:\n" + "".join(
        f"  - {{id: shot-{i}, prompt: shot {i}}}\n" for i in range(scenes)))
    return plan


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

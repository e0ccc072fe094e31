"""What several benchmarks share: a sandbox in its own process (so that its media rendering does not
compete for this process's interpreter), and `reelflow` commands run the way a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelflow.sandbox import SANDBOX_API_KEY


@dataclass(frozen=True)
class SandboxProcess:
    base_url: str
    pid: int

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url.removesuffix('/v1')}/_sandbox/stats", timeout=30) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats

    def environment(self, **settings: str) -> dict[str, str]:
        """The environment of a `reelflow` command pointed at this sandbox as at a real provider."""
        return {**os.environ, "OPENAI_API_KEY": SANDBOX_API_KEY, "OPENAI_BASE_URL": self.base_url,
                "REELFLOW_PROVIDER": "sandbox", **{f"REELFLOW_{k.upper()}": v for k, v in settings.items()}}


@contextlib.contextmanager
def sandbox_process(*switches: str) -> Iterator[SandboxProcess]:
    """`reelflow sandbox --port 0 SWITCHES...`, stopped at the end of the block."""
    process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "sandbox", "--port", "0", *switches],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        announced = process.stderr.readline()  # "reelflow sandbox serving http://127.0.0.1:PORT/v1 (...)"
        if "serving" not in announced:
            raise RuntimeError(f"the sandbox did not start: {announced}{process.stderr.read()}")
        yield SandboxProcess(base_url=announced.split()[3], pid=process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def reelflow_run(plan: Path, output: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{output}"],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"reelflow run failed:\n{done.stdout}\n{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

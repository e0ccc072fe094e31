"""The sandbox in a process of its own (`reelflow sandbox`), so that its media work (every clip it makes, with
sound, thumbnail and spritesheet) never competes with the client's interpreter: what a run without a key renders
against, and what the benchmarks measure against. Nothing here imports the sandbox itself."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

SANDBOX_API_KEY = "sk-sandbox"  # the key its clients send; it accepts any unless told otherwise
START_SECONDS, STOP_SECONDS = 60, 30


class SandboxStartError(RuntimeError):
    """The sandbox process ended, or said something else, instead of announcing where it serves."""


@dataclass(frozen=True)
class SandboxProcess:
    """A sandbox serving on loopback from a process of its own."""

    base_url: str
    pid: int
    api_key: str = SANDBOX_API_KEY

    def stats(self) -> dict[str, Any]:
        """What it has seen: requests, jobs, refusals (its `/_sandbox/stats`)."""
        import urllib.request  # (http.client: only for those who ask)

        address = urlsplit(self.base_url)
        with urllib.request.urlopen(f"{address.scheme}://{address.netloc}/_sandbox/stats", timeout=30) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats


@contextlib.contextmanager
def sandbox_process(*switches: str) -> Iterator[SandboxProcess]:
    """`reelflow sandbox --port 0 SWITCHES...` (its options: `--profile`, `--job-seconds`, ...), from when it
    announces its address until the end of the block, when it is stopped. Its environment is this process's;
    what it prints goes to a temporary file, read for its address (and its last words, should it not start).
    It runs in a session of its own, so a Ctrl-C on the terminal reaches this process, which stops it; and it
    stops by itself when this process ends in any way (a SIGKILL too): its standard input is a pipe only this
    process holds, whose end it waits for (`--with-parent`)."""
    with tempfile.TemporaryFile("w+") as said:
        process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "sandbox", "--port", "0", "--with-parent",
                                    *switches], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=said,
                                   start_new_session=True)  # a Ctrl-C meant for us is ours to pass on
        try:
            yield SandboxProcess(base_url=_announced(process, said), pid=process.pid)
        finally:
            if process.stdin is not None:
                process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _announced(process: subprocess.Popen[bytes], said: IO[str]) -> str:
    """The base URL of its line "reelflow sandbox serving http://127.0.0.1:PORT/v1 (...)"."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        said.seek(0)
        first = said.readline()
        if first.endswith("\n"):
            if "serving" not in first:
                raise SandboxStartError(f"the sandbox did not start: {first.strip()}")
            return first.split()[3]
        if process.poll() is not None or time.monotonic() > deadline:
            said.seek(0)
            raise SandboxStartError(f"the sandbox did not start: {said.read().strip() or 'it said nothing'}")
        time.sleep(0.01)

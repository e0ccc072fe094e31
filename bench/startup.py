"""Start-up: seconds from `reelflow run` to the provider's first create request (warm install).

Anchor: the same command with PREFECT_API_URL pointing at an already running `prefect server`.
Goal: under 5 s without any server set up by hand (not met yet: the temporary server is the cost).
Run: .venv/bin/python bench/startup.py   (two or three minutes: it starts a Prefect server)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from reelflow.sandbox import RunningSandbox, run_sandbox

GOAL_SECONDS = 5.0
PLAN = "name: startup\nscenes:\n  - {id: only, prompt: the first create is what we time}\n"


def seconds_to_first_create(sandbox: RunningSandbox, plan: Path, env: dict[str, str]) -> float:
    before = sandbox.stats()["requests"].get("POST /v1/videos", 0)
    started = time.monotonic()
    output = tempfile.mkdtemp(dir=plan.parent)  # a fresh output each time: a finished plan would resume
    run = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                            f"file://{output}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while sandbox.stats()["requests"].get("POST /v1/videos", 0) == before:
        if run.poll() is not None:
            raise RuntimeError("reelflow run ended before creating anything")
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    run.wait(timeout=600)
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("prefect server did not become healthy")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, run_sandbox(job_seconds=0) as sandbox:
        plan = Path(folder) / "plan.yaml"
        plan.write_text(PLAN)
        base = {**os.environ, "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url,
                "REELFLOW_PROVIDER": "sandbox", "PREFECT_HOME": f"{folder}/home"}
        seconds_to_first_create(sandbox, plan, base)  # warm: migrations, imports, caches
        temporary = seconds_to_first_create(sandbox, plan, base)
        server, url = running_prefect_server(Path(folder) / "server-home")
        try:
            seconds_to_first_create(sandbox, plan, {**base, "PREFECT_API_URL": url})
            anchor = seconds_to_first_create(sandbox, plan, {**base, "PREFECT_API_URL": url})
        finally:
            server.terminate()
            server.wait(timeout=30)
    ok = temporary < GOAL_SECONDS
    print(f"reelflow run -> first create, PREFECT_API_URL at a running server: {anchor:.1f} s (anchor)")
    print(f"reelflow run -> first create, no PREFECT_API_URL (temporary server): {temporary:.1f} s "
          f"({temporary / anchor:.1f}x the anchor; goal < {GOAL_SECONDS:.0f} s): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start-up: seconds from `reelflow run` to the provider's first create request, warm install.

Anchor: Prefect's default, a temporary server inside the process (`REELFLOW_PREFECT_SERVER=temporary`).
Measured: reelflow's default, the local Prefect server that the first command started and later
commands reuse; the first command's own time (which starts that server) is printed too.
Goal: under 5 s.
Then the commands that make no call: `reelflow validate` and `reelflow estimate` of a 40-scene plan, whole
commands (interpreter start-up and imports included), against a bare `python -c pass`. Goal: under 0.75 s.
Run: .venv/bin/python -m bench.startup   (a minute or two)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._support import free_port
from reelflow.prefect_server import PID_FILE
from reelflow.sandbox import RunningSandbox, run_sandbox

GOAL_SECONDS = 5.0
ANSWER_GOAL_SECONDS = 0.75
ROUNDS = 3
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


def median_of(sandbox: RunningSandbox, plan: Path, env: dict[str, str]) -> float:
    return statistics.median(seconds_to_first_create(sandbox, plan, env) for _ in range(ROUNDS))


def command_seconds(*command: str) -> float:
    rounds = []
    for _ in range(ROUNDS + 2):
        started = time.monotonic()
        subprocess.run(command, check=True, capture_output=True)
        rounds.append(time.monotonic() - started)
    return statistics.median(rounds)


def answers() -> bool:
    """`reelflow validate` and `estimate`: the whole command, warm."""
    with tempfile.TemporaryDirectory() as folder:
        plan = Path(folder) / "plan.yaml"
        plan.write_text("name: answers\ndefaults: {size: 1280x720, seconds: 4}\nscenes:\n" + "".join(
            f"  - {{id: shot-{i}, prompt: shot {i}, extensions: [{{prompt: and then, seconds: 4}}]}}\n"
            for i in range(40)))
        bare = command_seconds(sys.executable, "-c", "pass")
        timed = {name: command_seconds(sys.executable, "-m", "reelflow.cli", name, str(plan))
                 for name in ("validate", "estimate")}
    ok = all(seconds < ANSWER_GOAL_SECONDS for seconds in timed.values())
    print(f"reelflow validate / estimate of 40 scenes, whole command: "
          f"{timed['validate']:.2f} s / {timed['estimate']:.2f} s, median of {ROUNDS + 2} (python -c pass: "
          f"{bare:.2f} s; goal < {ANSWER_GOAL_SECONDS} s): {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    answered = answers()
    with tempfile.TemporaryDirectory() as folder, run_sandbox(job_seconds=0) as sandbox:
        plan = Path(folder) / "plan.yaml"
        plan.write_text(PLAN)
        home = Path(folder) / "home"
        base = {**os.environ, "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url,
                "REELFLOW_PROVIDER": "sandbox", "PREFECT_HOME": str(home), "REELFLOW_PREFECT_PORT": str(free_port())}
        base.pop("PREFECT_API_URL", None)
        temporary = {**base, "REELFLOW_PREFECT_SERVER": "temporary"}
        seconds_to_first_create(sandbox, plan, temporary)  # migrations, imports, caches
        anchor = median_of(sandbox, plan, temporary)
        try:
            first = seconds_to_first_create(sandbox, plan, base)
            warm = median_of(sandbox, plan, base)
        finally:
            subprocess.run([sys.executable, "-m", "prefect", "server", "stop"], env=base, capture_output=True)
            assert not (home / PID_FILE).exists()
    ok = warm < GOAL_SECONDS
    print(f"reelflow run -> first create, Prefect's temporary server: {anchor:.1f} s (anchor, median of {ROUNDS})")
    print(f"reelflow run -> first create, the first command (starts the local Prefect server): {first:.1f} s")
    print(f"reelflow run -> first create, later commands (reuse it): {warm:.1f} s, median of {ROUNDS} "
          f"({warm / anchor:.2f}x the anchor; goal < {GOAL_SECONDS:.0f} s): {'PASS' if ok else 'FAIL'}")
    return 0 if ok and answered else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start-up: seconds from `reelflow run` to the provider's first create request, warm install.

Anchor: Prefect's default, a temporary server inside the process (`REELFLOW_PREFECT_SERVER=temporary`).
Measured: reelflow's default, the local Prefect server that the first command started and later
commands reuse; the first command's own time (which starts that server) is printed too.
Goal: under 5 s.
Before that, the first answer of a command: `reelflow validate` and `reelflow estimate` of a 40-scene plan, whole
commands (interpreter start-up and imports included), against a bare `python -c pass`, and `reelflow run` to its
estimate on the terminal. Goal: under 0.75 s ("well under a second").
Run: .venv/bin/python -m bench.startup   (a minute or two)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench._support import free_port
from reelflow.prefect_server import PID_FILE
from reelflow.sandbox import RunningSandbox, run_sandbox

GOAL_SECONDS = 5.0
ANSWER_GOAL_SECONDS = 0.75
ROUNDS = 3
PLAN = "name: startup\nscenes:\n  - {id: only, prompt: the first create is what we time}\n"


@dataclass(frozen=True)
class Started:
    """Seconds from `reelflow run` to its estimate on the terminal (its first answer), and to its first create."""

    estimate: float
    create: float


def started(sandbox: RunningSandbox, plan: Path, env: dict[str, str]) -> Started:
    before = sandbox.stats()["requests"].get("POST /v1/videos", 0)
    began = time.monotonic()
    output = tempfile.mkdtemp(dir=plan.parent)  # a fresh output each time: a finished plan would resume
    run = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                            f"file://{output}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    estimated: list[float] = []

    def watch() -> None:
        assert run.stdout is not None
        for line in run.stdout:
            if line.startswith("Estimated total") and not estimated:
                estimated.append(time.monotonic() - began)

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    while sandbox.stats()["requests"].get("POST /v1/videos", 0) == before:
        if run.poll() is not None:
            raise RuntimeError("reelflow run ended before creating anything")
        time.sleep(0.02)
    created = time.monotonic() - began
    run.wait(timeout=600)
    reader.join()
    return Started(estimated[0], created)


def median_of(sandbox: RunningSandbox, plan: Path, env: dict[str, str]) -> Started:
    rounds = [started(sandbox, plan, env) for _ in range(ROUNDS)]
    return Started(statistics.median(r.estimate for r in rounds), statistics.median(r.create for r in rounds))


def import_seconds(module: str) -> float:
    """What importing `module` alone costs (`python -X importtime`), the bytecode warm."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1].split("|")[1]) / 1e6


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
        started(sandbox, plan, temporary)  # migrations, imports, caches
        anchor = median_of(sandbox, plan, temporary)
        try:
            first = started(sandbox, plan, base)
            warm = median_of(sandbox, plan, base)
        finally:
            subprocess.run([sys.executable, "-m", "prefect", "server", "stop"], env=base, capture_output=True)
            assert not (home / PID_FILE).exists()
    answered_ok, created_ok = warm.estimate < ANSWER_GOAL_SECONDS, warm.create < GOAL_SECONDS
    print(f"reelflow run -> its estimate on the terminal (its first answer), warm: {warm.estimate:.2f} s, median of "
          f"{ROUNDS} (goal < {ANSWER_GOAL_SECONDS} s): {'PASS' if answered_ok else 'FAIL'}")
    print(f"reelflow run -> first create, Prefect's temporary server: {anchor.create:.1f} s (anchor, median of "
          f"{ROUNDS})")
    print(f"reelflow run -> first create, the first command (starts the local Prefect server): {first.create:.1f} s")
    print(f"reelflow run -> first create, later commands (reuse it): {warm.create:.1f} s, median of {ROUNDS} "
          f"({warm.create / anchor.create:.2f}x the anchor; goal < {GOAL_SECONDS:.0f} s): "
          f"{'PASS' if created_ok else 'FAIL'}")
    print(f"    of which importing: prefect {import_seconds('prefect'):.2f} s, the provider's SDK (openai) "
          f"{import_seconds('openai'):.2f} s, reelflow's flows {import_seconds('flows.render_plan'):.2f} s "
          "(Prefect included)")
    return 0 if answered_ok and created_ok and answered else 1


if __name__ == "__main__":
    sys.exit(main())

"""Throughput at the rate limit: 50 scenes, 10 s jobs, 25 job-creating requests a minute, 10 jobs at once.

Anchor: a hand-written asyncio loop over AsyncOpenAI at the same limits (a semaphore of 10 jobs; the SDK
waits out each 429 with the provider's retry-after), downloading the same three files per scene.
Each side gets its own sandbox process with those limits; the sides run one after the other.
Goals: `reelflow run`'s wall time at most 1.15x the anchor's; no create refused for a limit after the
first minute (reelflow paces itself).
Run: .venv/bin/python -m bench.throughput   (about four minutes)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import warnings
from pathlib import Path

import openai

from bench._support import SandboxProcess, pointed_at, reelflow_run, sandbox_process, scenes_plan
from bench.hand_loop import loop
from reelflow.sandbox import SANDBOX_API_KEY

warnings.filterwarnings("ignore", category=DeprecationWarning)
SCENES, JOB_SECONDS, RPM, CONCURRENT = 50, 10, 25, 10
GOAL_RATIO = 1.15
LIMITS = ("--job-seconds", str(JOB_SECONDS), "--rpm", str(RPM), "--max-concurrent", str(CONCURRENT))


async def anchor(sandbox: SandboxProcess, folder: Path) -> float:
    started = time.monotonic()
    client = openai.AsyncOpenAI(api_key=SANDBOX_API_KEY, base_url=sandbox.base_url, max_retries=20)
    await loop(client, SCENES, CONCURRENT, folder)
    return time.monotonic() - started


def ours(sandbox: SandboxProcess, folder: Path) -> tuple[float, float]:
    """Wall seconds of `reelflow run`, and when (sandbox uptime) it started."""
    plan = scenes_plan(folder, "throughput", SCENES)
    environment = pointed_at(sandbox, requests_per_minute=str(RPM), max_concurrent=str(CONCURRENT))
    began_at = sandbox.stats()["uptime_seconds"]
    return reelflow_run(plan, folder / "out", environment).seconds, began_at


def warm_up(folder: Path) -> None:
    """One small run first, so both sides find the Prefect server and the caches warm."""
    with sandbox_process("--job-seconds", "0") as sandbox:
        plan = folder / "warm.yaml"
        plan.write_text("name: warm\nscenes:\n  - {id: one, prompt: warm up}\n")
        reelflow_run(plan, folder / "warm", pointed_at(sandbox))


def refusals_after_first_minute(sandbox: SandboxProcess, began_at: float) -> tuple[int, int]:
    times = [t - began_at for t in sandbox.stats()["limited_at_seconds"]]
    return sum(1 for t in times if t <= 60), sum(1 for t in times if t > 60)


def main() -> int:
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        warm_up(folder)
        (folder / "anchor").mkdir()
        with sandbox_process(*LIMITS) as sandbox:
            anchor_seconds = asyncio.run(anchor(sandbox, folder / "anchor"))
            anchor_early, anchor_late = refusals_after_first_minute(sandbox, 0.0)
        with sandbox_process(*LIMITS) as sandbox:
            our_seconds, began_at = ours(sandbox, folder)
            our_early, our_late = refusals_after_first_minute(sandbox, began_at)
            assert sandbox.stats()["jobs"] == SCENES
    ratio = our_seconds / anchor_seconds
    ok = ratio <= GOAL_RATIO and our_late == 0
    print(f"{SCENES} scenes, {JOB_SECONDS} s jobs, {RPM} creates/min, {CONCURRENT} at once")
    print(f"anchor asyncio loop: {anchor_seconds:.1f} s; creates refused: {anchor_early} in the first minute, "
          f"{anchor_late} after")
    print(f"reelflow run:        {our_seconds:.1f} s; creates refused: {our_early} in the first minute, "
          f"{our_late} after")
    print(f"ratio {ratio:.2f}x the anchor's wall time (goal <= {GOAL_RATIO}), {our_late} refused after the "
          f"first minute (goal 0): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

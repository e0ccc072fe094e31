"""Scale: `reelflow run` against a hand-written asyncio loop over the same SDK, at 40, 160 and 1,000 scenes.

No provider rate limit: 4 s clips, 2 s sandbox jobs, 32 jobs at once, the video, thumbnail and spritesheet
of every scene downloaded. Anchor: `bench.hand_loop`, an asyncio loop over AsyncOpenAI (a semaphore of 32; the
SDK's `create_and_poll` at 1 s; each download read whole, then written). Both sides are timed as whole commands,
from their start to their exit, each against a sandbox process of its own; the sides run one after the other.
`reelflow run` records its run in a Prefect server of its own, started (and warmed) before the timing, so the
server's CPU seconds are this run's.
Goal: `reelflow run`'s wall time at most 1.10x the anchor's at every size.
Run: .venv/bin/python -m bench.scale [SCENES...] [--rounds N]   (about 30 minutes for all three)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench._support import (
    Finished,
    SandboxProcess,
    free_port,
    pointed_at,
    reelflow_run,
    sandbox_process,
    scenes_plan,
    timed_command,
)
from reelflow.prefect_server import PID_FILE

SIZES, JOB_SECONDS, CONCURRENT, GOAL_RATIO = (40, 160, 1000), 2, 32, 1.10
LONG_PLAN = 500
SANDBOX = ("--job-seconds", str(JOB_SECONDS))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def anchor(sandbox: SandboxProcess, scenes: int, folder: Path) -> Finished:
    """The hand-written loop, run as its own command like `reelflow run` (its interpreter and imports counted)."""
    folder.mkdir()
    return timed_command([sys.executable, "-m", "bench.hand_loop", str(scenes), str(CONCURRENT), str(folder)],
                         pointed_at(sandbox))


@dataclass(frozen=True)
class Run:
    finished: Finished
    server_cpu_seconds: float
    sandbox_cpu_seconds: float


def cpu_seconds_of_tree(root: int) -> float:
    """User plus system CPU seconds of a process and every living descendant (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree, grown = tree | more, bool(more)
    return sum(times.get(pid, 0.0) for pid in tree)


def ours(sandbox: SandboxProcess, scenes: int, folder: Path, env: dict[str, str]) -> Run:
    environment = {**pointed_at(sandbox, max_concurrent=str(CONCURRENT)), **env}
    server = int((Path(env["PREFECT_HOME"]) / PID_FILE).read_text())
    cpu_before, sandbox_before = cpu_seconds_of_tree(server), cpu_seconds_of_tree(sandbox.pid)
    finished = reelflow_run(scenes_plan(folder, f"scale-{scenes}", scenes), folder / "out", environment)
    return Run(finished, cpu_seconds_of_tree(server) - cpu_before, cpu_seconds_of_tree(sandbox.pid) - sandbox_before)


def warm_up(folder: Path, env: dict[str, str]) -> None:
    """One small run first: it starts the Prefect server (its migrations) and warms the caches."""
    with sandbox_process("--job-seconds", "0") as sandbox:
        reelflow_run(scenes_plan(folder, "warm", 2), folder / "warm", {**pointed_at(sandbox), **env})


@dataclass(frozen=True)
class Round:
    """One round at one size: the loop, then `reelflow run`, each against a fresh sandbox."""

    loop: Finished
    loop_sandbox_cpu_seconds: float
    run: Run

    @property
    def ratio(self) -> float:
        return self.run.finished.seconds / self.loop.seconds


def one_round(scenes: int, folder: Path, env: dict[str, str]) -> Round:
    folder.mkdir()
    with sandbox_process(*SANDBOX) as sandbox:
        loop = anchor(sandbox, scenes, folder / "loop")
        loop_sandbox_cpu = cpu_seconds_of_tree(sandbox.pid)
    with sandbox_process(*SANDBOX) as sandbox:
        run = ours(sandbox, scenes, folder, env)
        jobs = sandbox.stats()["jobs"]
    if jobs != scenes:
        raise RuntimeError(f"reelflow run made {jobs} jobs for {scenes} scenes")
    return Round(loop, loop_sandbox_cpu, run)


def measure(scenes: int, rounds: int, folder: Path, env: dict[str, str]) -> bool:
    """The median round by ratio (each round's figures as measured), against the goal."""
    done = sorted((one_round(scenes, folder / f"{scenes}-{index}", env) for index in range(rounds)),
                  key=lambda measured: measured.ratio)
    middle = done[len(done) // 2]
    loop, finished = middle.loop, middle.run.finished
    ok = middle.ratio <= GOAL_RATIO
    spread = f" (rounds: {', '.join(f'{r.ratio:.2f}x' for r in done)})" if rounds > 1 else ""
    print(f"{scenes:>5} scenes: hand-written loop {loop.seconds:6.1f} s, reelflow run {finished.seconds:6.1f} s: "
          f"{middle.ratio:.2f}x{spread} (goal <= {GOAL_RATIO}), "
          f"{(finished.seconds - loop.seconds) / scenes * 1000:+.0f} ms a scene; Prefect server "
          f"{middle.run.server_cpu_seconds:.1f} CPU s; peak RSS {finished.peak_rss_mb:.0f} MB (the loop's "
          f"{loop.peak_rss_mb:.0f} MB): {'PASS' if ok else 'FAIL'}", flush=True)
    print(f"{'':13}CPU s: the loop {loop.cpu_seconds:.1f} (its sandbox {middle.loop_sandbox_cpu_seconds:.1f}), "
          f"reelflow run {finished.cpu_seconds:.1f} (its sandbox {middle.run.sandbox_cpu_seconds:.1f})", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="reelflow run against a hand-written loop, at growing plan sizes.")
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES), help="scenes in a plan (40 160 1000)")
    parser.add_argument("--rounds", type=int, help="rounds at each size; the median round is shown (default: 3 "
                        f"below {LONG_PLAN} scenes, where the machine's noise weighs most, else 1)")
    options = parser.parse_args()
    print(f"{JOB_SECONDS} s sandbox jobs, 4 s clips, no rate limit, {CONCURRENT} at once, three downloads a scene",
          flush=True)
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        env = {"PREFECT_HOME": str(folder / "prefect"), "REELFLOW_PREFECT_PORT": str(free_port())}
        os.environ.pop("PREFECT_API_URL", None)  # the server of its own, not the user's
        try:
            warm_up(folder, env)
            results = [measure(scenes, options.rounds or (3 if scenes < LONG_PLAN else 1), folder, env)
                       for scenes in options.sizes]
        finally:
            subprocess.run([sys.executable, "-m", "prefect", "server", "stop"], env={**os.environ, **env},
                           capture_output=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

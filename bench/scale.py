"""Scale: `reelflow run` against a hand-written asyncio loop over the same SDK, at 40, 160 and 1,000 scenes.

No provider rate limit: 4 s clips, 2 s sandbox jobs, 32 jobs at once, the video, thumbnail and spritesheet
of every scene downloaded. Anchor: an asyncio loop over AsyncOpenAI (a semaphore of 32; the SDK's
`create_and_poll` at 1 s; each download read whole, then written). Each side has its own sandbox process;
the sides run one after the other. `reelflow run` records its run in a Prefect server of its own, started
(and warmed) before the timing, so the server's CPU seconds are this run's.
Goal: `reelflow run`'s wall time at most 1.10x the anchor's at every size.
Run: .venv/bin/python -m bench.scale [SCENES...]   (about 20 minutes for all three)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai

from bench._support import SandboxProcess, free_port, sandbox_process
from bench.throughput import anchor_scene
from reelflow.prefect_server import PID_FILE
from reelflow.sandbox import SANDBOX_API_KEY

SIZES, JOB_SECONDS, CONCURRENT, GOAL_RATIO = (40, 160, 1000), 2, 32, 1.10
SANDBOX = ("--job-seconds", str(JOB_SECONDS))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def anchor(sandbox: SandboxProcess, scenes: int, folder: Path) -> float:
    started = time.monotonic()
    async with openai.AsyncOpenAI(api_key=SANDBOX_API_KEY, base_url=sandbox.base_url, max_retries=5) as client:
        slots = asyncio.Semaphore(CONCURRENT)
        await asyncio.gather(*(anchor_scene(client, slots, i, folder) for i in range(scenes)))
    return time.monotonic() - started


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
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


def reelflow_run(plan: Path, output: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one `reelflow run`."""
    started = time.monotonic()
    with (plan.parent / "run.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                                    f"file://{output}"], env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"reelflow run failed:\n{(plan.parent / 'run.log').read_text()}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def write_plan(folder: Path, name: str, scenes: int) -> Path:
    plan = folder / f"{name}.yaml"
    plan.write_text(f"name: {name}\ndefaults: {{size: 1280x720, seconds: 4}}\nscenes:\n" + "".join(
        f"  - {{id: shot-{i}, prompt: shot {i}}}\n" for i in range(scenes)))
    return plan


def ours(sandbox: SandboxProcess, scenes: int, folder: Path, env: dict[str, str]) -> Run:
    environment = {**sandbox.environment(max_concurrent=str(CONCURRENT)), **env}
    server = int((Path(env["PREFECT_HOME"]) / PID_FILE).read_text())
    cpu_before, sandbox_before = cpu_seconds_of_tree(server), cpu_seconds_of_tree(sandbox.pid)
    seconds, peak, cpu = reelflow_run(write_plan(folder, f"scale-{scenes}", scenes), folder / f"out-{scenes}",
                                      environment)
    return Run(seconds, peak, cpu, cpu_seconds_of_tree(server) - cpu_before,
               cpu_seconds_of_tree(sandbox.pid) - sandbox_before)


def warm_up(folder: Path, env: dict[str, str]) -> None:
    """One small run first: it starts the Prefect server (its migrations) and warms the caches."""
    with sandbox_process("--job-seconds", "0") as sandbox:
        reelflow_run(write_plan(folder, "warm", 2), folder / "warm", {**sandbox.environment(), **env})


def measure(scenes: int, folder: Path, env: dict[str, str]) -> bool:
    (folder / f"anchor-{scenes}").mkdir()
    with sandbox_process(*SANDBOX) as sandbox:
        cpu_before = time.process_time()
        anchor_seconds = asyncio.run(anchor(sandbox, scenes, folder / f"anchor-{scenes}"))
        anchor_cpu, anchor_sandbox_cpu = time.process_time() - cpu_before, cpu_seconds_of_tree(sandbox.pid)
    with sandbox_process(*SANDBOX) as sandbox:
        run = ours(sandbox, scenes, folder, env)
        jobs = sandbox.stats()["jobs"]
    if jobs != scenes:
        raise RuntimeError(f"reelflow run made {jobs} jobs for {scenes} scenes")
    ratio = run.seconds / anchor_seconds
    overhead_ms = (run.seconds - anchor_seconds) / scenes * 1000
    ok = ratio <= GOAL_RATIO
    print(f"{scenes:>5} scenes: anchor {anchor_seconds:6.1f} s, reelflow run {run.seconds:6.1f} s: {ratio:.2f}x "
          f"(goal <= {GOAL_RATIO}), {overhead_ms:+.0f} ms a scene; Prefect server {run.server_cpu_seconds:.1f} "
          f"CPU s; peak RSS {run.peak_rss_mb:.0f} MB: {'PASS' if ok else 'FAIL'}", flush=True)
    print(f"{'':13}CPU s: anchor {anchor_cpu:.1f} (its sandbox {anchor_sandbox_cpu:.1f}), reelflow run "
          f"{run.cpu_seconds:.1f} (its sandbox {run.sandbox_cpu_seconds:.1f})", flush=True)
    return ok


def main() -> int:
    sizes = [int(arg) for arg in sys.argv[1:]] or list(SIZES)
    print(f"{JOB_SECONDS} s sandbox jobs, 4 s clips, no rate limit, {CONCURRENT} at once, three downloads a scene",
          flush=True)
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        env = {"PREFECT_HOME": str(folder / "prefect"), "REELFLOW_PREFECT_PORT": str(free_port())}
        os.environ.pop("PREFECT_API_URL", None)  # the server of its own, not the user's
        try:
            warm_up(folder, env)
            results = [measure(scenes, folder, env) for scenes in sizes]
        finally:
            subprocess.run([sys.executable, "-m", "prefect", "server", "stop"], env={**os.environ, **env},
                           capture_output=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

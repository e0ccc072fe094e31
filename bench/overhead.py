"""Orchestration overhead: what Prefect's task runs add to a plan's wall time.

A plan of 10 scenes (5 with an extension; 60 s jobs, as in the waiting benchmark; 10 at once) rendered
by the `render-plan` flow against a sandbox process, recorded in the local Prefect server. Anchor: the
same flow with every task called as its plain function (`task.fn`: same code, no task runs, no
retries). The Prefect server runs on this machine too, so its CPU is part of the overhead.
Goal: the flow with its task runs at most 2 % slower than the anchor.
Run: .venv/bin/python -m bench.overhead   (about five minutes)
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from prefect.utilities.annotations import BaseAnnotation

from reelflow.quiet import keep_run_logs_off_the_console, quiet_prefect

quiet_prefect()

import flows.render_scene  # noqa: E402
from bench._support import pointed_at, sandbox_process  # noqa: E402
from flows.render_plan import render_plan  # noqa: E402
from reelflow import Settings, parse_plan  # noqa: E402
from reelflow.prefect_server import prefect_api  # noqa: E402

keep_run_logs_off_the_console()
SCENES, JOB_SECONDS, CONCURRENT, ROUNDS = 10, 60, 10, 1
GOAL = 0.02
PLAN = parse_plan({"name": "overhead", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
    {"id": f"shot-{i}", "prompt": f"shot {i}", "extensions": [{"prompt": "and then", "seconds": 4}] if i % 2 else []}
    for i in range(SCENES)]})


def unwrapped(parameter: Any) -> Any:
    return parameter.unwrap() if isinstance(parameter, BaseAnnotation) else parameter


@contextlib.contextmanager
def plain_functions() -> Iterator[None]:
    """Every task of the scene chain called as its function, not as a task run (with the parameters passed
    unexamined unwrapped, as Prefect's task engine unwraps them)."""
    def plain(task: Any, settings: Settings) -> Any:
        def call(*parameters: Any, **named: Any) -> Any:
            return task.fn(*map(unwrapped, parameters), **{name: unwrapped(p) for name, p in named.items()})
        return call

    original = vars(flows.render_scene)["tuned"]
    setattr(flows.render_scene, "tuned", plain)  # noqa: B010  # the module's own name for the task wrapper
    try:
        yield
    finally:
        setattr(flows.render_scene, "tuned", original)  # noqa: B010


def wall_seconds(output: str, plain: bool) -> float:
    with plain_functions() if plain else contextlib.nullcontext():
        started = time.monotonic()
        render_plan(PLAN, output=output)
        return time.monotonic() - started


def main() -> int:
    with sandbox_process("--job-seconds", str(JOB_SECONDS)) as sandbox, tempfile.TemporaryDirectory() as root:
        os.environ.update(pointed_at(sandbox, max_concurrent=str(CONCURRENT)))
        with prefect_api(Settings(), lambda line: None):
            timings: dict[bool, list[float]] = {True: [], False: []}
            for index in range(ROUNDS * 2):
                plain = index % 2 == 0
                timings[plain].append(wall_seconds(f"file://{root}/{index}", plain))
    anchor, ours = statistics.median(timings[True]), statistics.median(timings[False])
    overhead = (ours - anchor) / anchor
    ok = overhead <= GOAL
    print(f"{SCENES} scenes ({SCENES // 2} extended), {JOB_SECONDS} s jobs, {CONCURRENT} at once; "
          f"{'median of ' if ROUNDS > 1 else ''}{ROUNDS} round{'s' if ROUNDS > 1 else ''} each, alternating")
    print(f"anchor, tasks as plain functions: {anchor:.1f} s")
    print(f"render-plan with its task runs:   {ours:.1f} s")
    print(f"overhead {overhead * 100:+.1f} % of the wall time (goal <= {GOAL * 100:.0f} %): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Each scene's stage as a run goes (preparing, queued, rendering n %, extending i/k, downloading, done,
failed: reason), for whoever shows it: the terminal's live display, or nobody.

The pipeline reports through `report()`; a command that shows progress wraps the run in
`showing_progress()`. Nothing else depends on it, so flows called from Python stay silent."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

FINAL_STAGES = ("done", "failed")


class ProgressView(Protocol):
    def update(self, scene: str, stage: str, percent: int | None = None) -> None: ...


_VIEW: ContextVar[ProgressView | None] = ContextVar("reelflow_progress_view", default=None)


def report(scene: str, stage: str, percent: int | None = None) -> None:
    view = _VIEW.get()
    if view is not None:
        view.update(scene, stage, percent)


@dataclass(frozen=True)
class Watch:
    """What to call a job's progress while it renders: the scene, and the stage (rendering for its first
    job, extending i/k, revising i/k)."""

    scene: str
    stage: str = "rendering"

    def saw(self, status: str, percent: int) -> None:
        if status == "queued":
            report(self.scene, "queued" if self.stage == "rendering" else f"{self.stage}: queued")
        else:
            report(self.scene, self.stage, percent)


class PlainLines:
    """Not a terminal (CI logs, pipes): one plain line per change of stage, no percentages."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.stages: dict[str, str] = {}

    def update(self, scene: str, stage: str, percent: int | None = None) -> None:
        if self.stages.get(scene) != stage:
            self.stages[scene] = stage
            print(f"scene {scene!r}: {stage}", file=self.stream, flush=True)


class LiveBars:
    """A terminal: one line per scene with its stage, and an overall bar of finished scenes."""

    def __init__(self, scenes: list[str], console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stage]}"), console=console, transient=False)
        self.overall = self.progress.add_task("all scenes", total=len(scenes), stage="")
        self.rows: dict[str, TaskID] = {s: self.progress.add_task(s, total=100, stage="waiting") for s in scenes}
        self.finished: set[str] = set()

    def update(self, scene: str, stage: str, percent: int | None = None) -> None:
        row = self.rows[scene]
        self.progress.update(row, stage=stage if percent is None else f"{stage} {percent} %",
                             completed=100 if stage.startswith(FINAL_STAGES) else (percent or 0))
        if stage.startswith(FINAL_STAGES) and scene not in self.finished:
            self.finished.add(scene)
            self.progress.advance(self.overall)


@contextlib.contextmanager
def showing_progress(scenes: list[str], stream: TextIO | None = None) -> Iterator[None]:
    """Show every scene's stage on `stream` (stderr) for the duration of the block."""
    stream = stream or sys.stderr
    console = Console(file=stream)
    if console.is_terminal:
        bars = LiveBars(scenes, console)
        view: ProgressView = bars
        live: contextlib.AbstractContextManager[object] = bars.progress
    else:
        view, live = PlainLines(stream), contextlib.nullcontext()
    token = _VIEW.set(view)
    try:
        with live:
            yield
    finally:
        _VIEW.reset(token)

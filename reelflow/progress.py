"""Each scene's stage as a run goes (preparing, queued, rendering n %, extending i/k, downloading, done,
failed: reason), for whoever shows it: the terminal's live display, or nobody.

The pipeline reports through `report()`; a command that shows progress wraps the run in
`showing_progress()`, and a plan run shows it on its page in the Prefect UI through `watching()`. Nothing
else depends on it, so flows called from Python stay silent in the terminal."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # rich is imported when a run shows its progress: other commands do without it
    from rich.console import Console
    from rich.progress import TaskID

FINAL_STAGES = ("done", "failed")


class ProgressView(Protocol):
    def update(self, scene: str, stage: str, percent: int | None = None) -> None: ...

    def provider(self, trouble: str | None) -> None:
        """The provider stopped answering (`trouble` says since when and why), or answers again (None)."""


_VIEWS: ContextVar[tuple[ProgressView, ...]] = ContextVar("reelflow_progress_views", default=())


def report(scene: str, stage: str, percent: int | None = None) -> None:
    for view in _VIEWS.get():
        view.update(scene, stage, percent)


def report_provider(trouble: str | None) -> None:
    for view in _VIEWS.get():
        view.provider(trouble)


@contextlib.contextmanager
def watching(view: ProgressView) -> Iterator[None]:
    """`view` is told every scene's stage for the duration of the block, besides any other view."""
    token = _VIEWS.set((*_VIEWS.get(), view))
    try:
        yield
    finally:
        _VIEWS.reset(token)


class ProviderHealth:
    """Whether the provider answers: the first failure that may pass (a 5xx, a timeout, a dropped connection)
    is reported with its time, once, while retries go on; the next answer reports the recovery. (A provider that
    cannot be reached at all stops the run instead.)"""

    def __init__(self) -> None:
        self.failing_since: float | None = None

    def failed(self, started: float, reason: str) -> None:
        if self.failing_since is None:
            self.failing_since = started
            report_provider(f"waiting for the provider since {time.strftime('%H:%M:%S', time.localtime(started))}"
                            f" ({reason}); retrying")

    def answered(self) -> None:
        if self.failing_since is not None:
            report_provider(None)
            self.failing_since = None


@dataclass(frozen=True)
class Watch:
    """What to call a job's progress while it renders: the scene, and the stage (rendering for its first
    job, extending i/k, revising i/k)."""

    scene: str
    stage: str = "rendering"

    def saw(self, status: str, percent: int, ahead: int | None = None) -> None:
        if status == "queued":
            queued = "queued" if ahead is None else f"queued ({ahead} ahead)"
            report(self.scene, queued if self.stage == "rendering" else f"{self.stage}: {queued}")
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

    def provider(self, trouble: str | None) -> None:
        print(f"provider: {trouble or 'answering again'}", file=self.stream, flush=True)


class LiveBars:
    """A terminal: an overall bar of finished scenes and a line per scene with its stage; for a plan longer than
    the screen, only the scenes under way (every line shown is drawn again ten times a second), and a line above
    the bars for each scene that fails."""

    def __init__(self, scenes: list[str], console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stage]}"), console=console, transient=False)
        self.every_scene = len(scenes) < console.size.height - 2
        self.overall = self.progress.add_task("all scenes", total=len(scenes), stage="")
        self.rows: dict[str, TaskID] = {}
        for scene in scenes:
            self._add(scene)
        self.finished: set[str] = set()
        self.trouble: TaskID | None = None

    def _add(self, scene: str) -> TaskID:
        self.rows[scene] = self.progress.add_task(scene, total=100, stage="waiting", visible=self.every_scene)
        return self.rows[scene]

    def provider(self, trouble: str | None) -> None:
        stage = trouble or "answering again"
        if self.trouble is None:
            self.trouble = self.progress.add_task("provider", total=None, stage=stage)
        self.progress.update(self.trouble, stage=stage)

    def update(self, scene: str, stage: str, percent: int | None = None) -> None:
        if scene not in self.rows:  # decided on during the run: a review's redo
            self._add(scene)
            self.progress.update(self.overall, total=len(self.rows))
        final = stage.startswith(FINAL_STAGES)
        self.progress.update(self.rows[scene], stage=stage if percent is None else f"{stage} {percent} %",
                             completed=100 if final else (percent or 0), visible=self.every_scene or not final)
        if final and scene not in self.finished:
            self.finished.add(scene)
            self.progress.advance(self.overall)
            if not self.every_scene and stage.startswith("failed"):
                self.progress.console.print(f"scene {scene!r}: {stage}", markup=False, highlight=False)


@contextlib.contextmanager
def showing_progress(scenes: list[str], stream: TextIO | None = None) -> Iterator[None]:
    """Show every scene's stage on `stream` (stderr) for the duration of the block."""
    from rich.console import Console

    stream = stream or sys.stderr
    console = Console(file=stream)
    if console.is_terminal:
        bars = LiveBars(scenes, console)
        view: ProgressView = bars
        live: contextlib.AbstractContextManager[object] = bars.progress
    else:
        view, live = PlainLines(stream), contextlib.nullcontext()
    with watching(view), live:
        yield

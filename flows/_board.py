"""A plan run's page in the Prefect UI: a progress artifact of finished scenes and the scene table, both
updated in place as scenes change stage.

Updates are gathered and sent from a thread of the board's own at most every few seconds, the scene table
less often the longer the plan, so a plan of a thousand scenes costs the API as little per scene as a plan of
ten, and the run's event loop never waits on it."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from reelflow.progress import FINAL_STAGES, watching


def artifact_key(plan: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in f"{plan}-{kind}".lower())


ROWS_PER_SECOND = 20  # the scene table's rows sent to the API per second at most, however long the plan


class RunBoard:
    """Every scene's stage as the run page shows it."""

    def __init__(self, plan: str, scenes: list[str]) -> None:
        self.plan = plan
        self.stages = dict.fromkeys(scenes, "waiting")
        self.finished = 0
        self.trouble: str | None = None
        self.changed = threading.Event()
        self.lock = threading.Lock()
        self.shown: tuple[int, str | None] = (0, None)  # the progress artifact's finished scenes and trouble
        created = create_progress_artifact(0.0, key=artifact_key(plan, "progress"),
                                           description=self._description())
        self.progress_id = cast(UUID, created)  # called outside an event loop: the sync call's id

    def update(self, scene: str, stage: str, percent: int | None = None) -> None:
        with self.lock:
            before = self.stages.get(scene, "waiting")
            self.stages[scene] = stage if percent is None else f"{stage} {percent} %"
            self.finished += stage.startswith(FINAL_STAGES) - before.startswith(FINAL_STAGES)
        self.changed.set()

    def provider(self, trouble: str | None) -> None:
        self.trouble = trouble
        self.changed.set()

    def publish_progress(self) -> None:
        """The share of finished scenes, and whether the provider answers, when either changed."""
        shown = (self.finished, self.trouble)
        if shown != self.shown:
            update_progress_artifact(self.progress_id, round(100 * shown[0] / max(len(self.stages), 1), 1),
                                     description=self._description())
            self.shown = shown

    def publish_table(self) -> None:
        with self.lock:
            stages = dict(self.stages)
            self.changed.clear()
        rows = [{"scene": scene, "stage": stage} for scene, stage in stages.items()]
        create_table_artifact(rows, key=artifact_key(self.plan, "scenes"), description=self._description())

    def _description(self) -> str:
        return f"Scenes of {self.plan}" + (f" ({self.trouble})" if self.trouble else "")


@contextlib.contextmanager
def on_the_run_page(plan: str, scenes: list[str], seconds: float) -> Iterator[RunBoard]:
    """The board of the block's run: its progress published every `seconds` while it moves, its scene table
    while something changed, as often as ROWS_PER_SECOND allows (so a long plan's table does not load the API
    with every stage), and both once at its end."""
    board = RunBoard(plan, scenes)
    done = threading.Event()
    table_every = max(seconds, len(scenes) / ROWS_PER_SECOND)

    def keep_publishing() -> None:
        table_due = time.monotonic() + table_every
        while not done.wait(seconds):
            board.publish_progress()
            if board.changed.is_set() and time.monotonic() >= table_due:
                board.publish_table()
                table_due = time.monotonic() + table_every

    publisher = threading.Thread(target=contextvars.copy_context().run, args=(keep_publishing,),
                                 name="reelflow-run-board", daemon=True)
    publisher.start()
    try:
        with watching(board):
            yield board
    finally:
        done.set()
        publisher.join()
        board.publish_progress()
        board.publish_table()

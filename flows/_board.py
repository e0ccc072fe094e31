"""A plan run's page in the Prefect UI: a progress artifact of finished scenes and the scene table, both
updated in place as scenes change stage.

Updates are gathered and sent from a thread of the board's own at most every few seconds, so a plan of a
thousand scenes costs the API a few calls a second at most, and the run's event loop never waits on it."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from reelflow.progress import FINAL_STAGES, watching


def artifact_key(plan: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in f"{plan}-{kind}".lower())


class RunBoard:
    """Every scene's stage as the run page shows it."""

    def __init__(self, plan: str, scenes: list[str]) -> None:
        self.plan = plan
        self.stages = dict.fromkeys(scenes, "waiting")
        self.trouble: str | None = None
        self.changed = threading.Event()
        self.lock = threading.Lock()
        created = create_progress_artifact(0.0, key=artifact_key(plan, "progress"),
                                           description=f"Scenes of {plan} finished")
        self.progress_id = cast(UUID, created)  # called outside an event loop: the sync call's id

    def update(self, scene: str, stage: str, percent: int | None = None) -> None:
        with self.lock:
            self.stages[scene] = stage if percent is None else f"{stage} {percent} %"
        self.changed.set()

    def provider(self, trouble: str | None) -> None:
        self.trouble = trouble
        self.changed.set()

    def publish(self) -> None:
        with self.lock:
            stages = dict(self.stages)
            self.changed.clear()
        finished = sum(stage.startswith(FINAL_STAGES) for stage in stages.values())
        update_progress_artifact(self.progress_id, round(100 * finished / max(len(stages), 1), 1))
        rows = [{"scene": scene, "stage": stage} for scene, stage in stages.items()]
        create_table_artifact(rows, key=artifact_key(self.plan, "scenes"),
                              description=f"Scenes of {self.plan}" + (f" ({self.trouble})" if self.trouble else ""))


@contextlib.contextmanager
def on_the_run_page(plan: str, scenes: list[str], seconds: float) -> Iterator[RunBoard]:
    """The board of the block's run, published every `seconds` while something changed, and once at its end."""
    board = RunBoard(plan, scenes)
    done = threading.Event()

    def keep_publishing() -> None:
        while not done.wait(seconds):
            if board.changed.is_set():
                board.publish()

    publisher = threading.Thread(target=contextvars.copy_context().run, args=(keep_publishing,),
                                 name="reelflow-run-board", daemon=True)
    publisher.start()
    try:
        with watching(board):
            yield board
    finally:
        done.set()
        publisher.join()
        board.publish()

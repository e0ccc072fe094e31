"""A plan run's page in the Prefect UI: a progress artifact of finished scenes and the scene table, both
updated in place as scenes change stage: each is one card in the run's Artifacts tab, however often it changes.

Updates are gathered and sent from a thread of the board's own at most every few seconds, the scene table
less often the longer the plan, so a plan of a thousand scenes costs the API as little per scene as a plan of
ten, and the run's event loop never waits on it."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar, cast
from uuid import UUID

import httpx
from prefect.artifacts import (
    TableArtifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactUpdate

from reelflow.prefect_server import PREFECT_GONE
from reelflow.progress import FINAL_STAGES, watching

Written = TypeVar("Written")


def artifact_key(plan: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in f"{plan}-{kind}".lower())


def update_artifact(artifact_id: UUID, data: str, description: str) -> None:
    """Change an artifact's data in place. Prefect 3.9 has a helper for progress artifacts only
    (prefect/artifacts.py `update_progress_artifact`); what it calls works for any: the client's
    `update_artifact` sends `PATCH /artifacts/{id}` with an `ArtifactUpdate` (data, description;
    prefect/client/orchestration/_artifacts/client.py), and the server updates the artifact and, when it is its
    key's latest, the key's collection too (prefect/server/models/artifacts.py `update_artifact`), so the same
    card, on the run page and in the Artifacts page, shows the new data."""
    with get_client(sync_client=True) as client:  # inside a run: the run's own client (prefect.context)
        client.update_artifact(artifact_id, ArtifactUpdate(data=data, description=description))


def scene_row(scene: str, stage: str) -> dict[str, object]:
    """A scene's row as the table shows it while the run goes: its stage, and the reason apart if it failed."""
    status, _, error = stage.partition(": ") if stage.startswith("failed: ") else (stage, "", "")
    return {"scene": scene, "status": status, "error": error}


ROWS_PER_SECOND = 20  # the scene table's rows sent to the API per second at most, however long the plan


class RunBoard:
    """Every scene's stage as the run page shows it. The page is written only while the Prefect server answers:
    one that goes away mid-run (stopped, crashed) is said once, and the run goes on without its page."""

    def __init__(self, plan: str, scenes: list[str]) -> None:
        self.plan = plan
        self.stages = dict.fromkeys(scenes, "waiting")
        self.finished = 0
        self.trouble: str | None = None
        self.changed = threading.Event()
        self.lock = threading.Lock()
        self.shown: tuple[int, str | None] = (0, None)  # the progress artifact's finished scenes and trouble
        self.gone: str | None = None  # why the Prefect server no longer answers, once it did not
        # Called outside an event loop: the sync calls, and their ids.
        self.progress_id = self.write(lambda: cast(UUID, create_progress_artifact(
            0.0, key=artifact_key(plan, "progress"), description=self._description())))
        self.table_id = self.write(lambda: cast(UUID, create_table_artifact(
            self._rows(), key=artifact_key(plan, "scenes"), description=self._description())))

    def write(self, call: Callable[[], Written]) -> Written | None:
        """`call` to the Prefect API for the run's page, unless the server stopped answering (`gone` says why;
        the run goes on without its page: its files, manifest and report do not depend on it)."""
        if self.gone is not None:
            return None
        try:
            return call()
        except httpx.HTTPError as e:  # refused, reset, timed out, or answered 5xx after Prefect's own retries
            self.gone = f"{PREFECT_GONE} ({e or type(e).__name__}) during the run: it went on without its page in " \
                        "the Prefect UI"
            return None

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
        if shown != self.shown and self.progress_id is not None:
            progress_id, percent = self.progress_id, round(100 * shown[0] / max(len(self.stages), 1), 1)
            self.write(lambda: update_progress_artifact(progress_id, percent, description=self._description()))
            self.shown = shown

    def publish_table(self) -> None:
        with self.lock:
            self.changed.clear()
            rows = self._rows()
        self.show_table(rows)

    def show_table(self, rows: list[dict[str, object]]) -> None:
        """The scene table as `rows` (scene, status and error first: the columns a narrow page shows)."""
        # As Prefect formats a new table (NaN as null); `_sync` picks the sync side of Prefect's async_dispatch.
        table = TableArtifact(table=rows).format(_sync=True)  # type: ignore[call-arg]
        if self.table_id is not None:
            table_id = self.table_id
            self.write(lambda: update_artifact(table_id, cast(str, table), self._description()))

    def _rows(self) -> list[dict[str, object]]:
        return [scene_row(scene, stage) for scene, stage in self.stages.items()]

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

"""How every task is called: one retry policy (transient failures are retried, permanent ones never),
parameters Prefect need not walk through, and the routine log line the many runs of a task can do without."""

from __future__ import annotations

import functools
import logging
from typing import Any, TypeVar, cast

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun
from prefect.utilities.annotations import quote

from reelflow import Settings, is_transient

T = TypeVar("T", bound=Task[Any, Any])
V = TypeVar("V")

DEFAULT_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.2,
}


def transient_only(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry_condition_fn: retry 429s, 5xx, timeouts and dropped connections only."""
    if isinstance(state.data, BaseException):  # how the engine hands over a raised exception
        return is_transient(state.data)
    try:
        state.result(_sync=True)  # type: ignore[call-overload]  # async tasks would get a coroutine
    except Exception as error:
        return is_transient(error)
    return False


def tuned(task: T, settings: Settings) -> T:
    """The task with the retry counts and delays of `settings` (made once for each: every job of a run asks)."""
    return cast(T, _tuned(task, settings.task_retries, tuple(settings.retry_delays_seconds)))


@functools.cache
def _tuned(task: Task[Any, Any], retries: int, delays: tuple[float, ...]) -> Task[Any, Any]:
    return task.with_options(retries=retries, retry_delay_seconds=list(delays))


def unexamined(value: V) -> V:
    """`value` as a task parameter Prefect does not walk through looking for futures and states (it visits every
    object a parameter reaches: through a scene's job, the whole run's state, every scene of a long plan). The
    task gets `value` itself."""
    return cast(V, quote(value))


class _QuietWhenDone(logging.Filter):
    """Leaves out Prefect's "Finished in state Completed()" line of the runs of some tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and getattr(record, "task_name", None) in self.tasks
                    and record.getMessage().startswith("Finished in state Completed("))


_QUIET_WHEN_DONE = _QuietWhenDone()


def quiet_when_done(*tasks: Task[Any, Any]) -> None:
    """The runs of `tasks` (one or more a scene) log no line of their own when they complete: the Prefect UI shows
    each task run's state, a plan of a thousand scenes would log a thousand such lines, and each costs the Prefect
    server a write. Failures and retries still log theirs; other tasks are left alone."""
    _QUIET_WHEN_DONE.tasks.update(task.name for task in tasks)
    logger = logging.getLogger("prefect.task_runs")
    if _QUIET_WHEN_DONE not in logger.filters:
        logger.addFilter(_QUIET_WHEN_DONE)

"""One retry policy for every task: transient failures are retried, permanent ones never."""

from __future__ import annotations

from typing import Any, TypeVar

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from reelflow import Settings, is_transient

T = TypeVar("T", bound=Task[Any, Any])

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
    """The task with the retry counts and delays of `settings`."""
    return task.with_options(retries=settings.task_retries,  # type: ignore[return-value]
                             retry_delay_seconds=settings.retry_delays_seconds)

"""A flow's event loop that a SIGTERM stops cleanly.

Prefect turns SIGTERM into a `TerminationSignal` raised wherever the main thread happens to be; inside an
asyncio task nobody awaits (a connection's, a logger's), it is stored in that task and lost, and the run
carries on. Here the signal instead cancels the run at its next await: every scene's task unwinds
(temporaries removed, ledgers as they were), and then the flow raises Prefect's `TerminationSignal`, which
Prefect records as a crash and the command line reports in one line."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from prefect.exceptions import TerminationSignal

T = TypeVar("T")


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, stopped cleanly by SIGTERM (outside the main thread, where no signal arrives, as is)."""
    return asyncio.run(_stoppable(main))


async def _stoppable(main: Coroutine[Any, Any, T]) -> T:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def stop() -> None:
        received.append(signal.SIGTERM)
        task.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, stop)
    except (ValueError, RuntimeError):  # not the main thread: no signal comes here
        return await main
    try:
        return await main
    except asyncio.CancelledError:
        if received:
            raise TerminationSignal(signal.SIGTERM) from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)  # Prefect's own, for the rest of the flow

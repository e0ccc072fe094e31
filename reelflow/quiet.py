"""Prefect's defaults print telemetry errors, per-task INFO lines and exit tracebacks; users see none of it in
the terminal, while the Prefect API (the UI) gets every flow and task run's log at INFO."""

from __future__ import annotations

import logging
import os

PREFECT_DEFAULTS = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # Run logs at INFO reach the API (so the run page tells the run's story) but never the terminal: the
    # console handler shows warnings and worse only. Set in the environment, so flow runs started in a
    # subprocess (`reelflow serve`, a worker) log the same way.
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def quiet_prefect() -> None:
    """Set Prefect's environment before it is imported; the user's own settings win."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Shutdown chatter of the temporary server and its event flusher (not errors of the run).
    for name in ("EventsWorker", "APILogWorker", "prefect._internal.concurrency"):
        logging.getLogger(name).setLevel(logging.ERROR)


def keep_run_logs_off_the_console() -> None:
    """Flow and task run logs still reach the Prefect API (the UI shows them); the terminal shows
    reelflow's own summary instead of Prefect's per-state lines and failure tracebacks.

    Call after Prefect is imported: its logging setup runs on import."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).propagate = False

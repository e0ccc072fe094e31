"""Prefect's defaults print telemetry errors, per-task INFO lines and exit tracebacks, and the providers' SDKs log
warnings of their own (a retry, an upload's fallback); users see none of it in the terminal, while the Prefect API
(the UI) gets every flow and task run's log at INFO, and the libraries' warnings of a run."""

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
    # A Prefect server that went away mid-run is found out in half a minute, not after minutes of retries: the run
    # goes on without its page (flows/_board.py). Prefect's own default is 5 retries with exponential backoff
    # (2, 4, 8, 16, 32 s; prefect/client/base.py `_send_with_retry`). Not fewer than 4: the same retries ride out a
    # busy server's 503s (SQLite's SQLITE_BUSY_SNAPSHOT when runs write at once, which Prefect's server answers
    # with 503, prefect/server/api/server.py `is_client_retryable_exception`); with 2 (6 s), a CI run of the suite
    # lost one run's start to it.
    "PREFECT_CLIENT_MAX_RETRIES": "4",
    # Prefect's internal services (its event and log flushers) log through a logger that heeds this setting, not
    # its level (prefect/_internal/_logging.py `SafeLogger`): a server gone away is said by the run, once.
    "PREFECT_LOGGING_INTERNAL_LEVEL": "CRITICAL",
}


def quiet_prefect() -> None:
    """Set Prefect's environment before it is imported; the user's own settings win."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _hush_prefects_own_chatter()


def _hush_prefects_own_chatter() -> None:
    """Shutdown chatter of the temporary server and its event flusher, and of a server that went away (not errors
    of the run, which says so itself, once)."""
    for name in ("EventsWorker", "APILogWorker", "prefect.events.clients"):
        logging.getLogger(name).setLevel(logging.ERROR)


def keep_run_logs_off_the_console() -> None:
    """Flow and task run logs still reach the Prefect API (the UI shows them); the terminal shows
    reelflow's own summary instead of Prefect's per-state lines and failure tracebacks. A library's log lines
    go to the run's logs too, never to the terminal.

    Call after Prefect is imported: its logging setup runs on import."""
    from prefect.logging.handlers import APILogHandler

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).propagate = False
    logging.raiseExceptions = False  # a log that cannot be sent (the server gone) prints no "--- Error logging" block
    _hush_prefects_own_chatter()  # (again: Prefect's logging setup, on import, set its loggers' levels)
    keep_library_logs_off_the_terminal()
    root = logging.getLogger()
    if not any(isinstance(handler, APILogHandler) for handler in root.handlers):
        to_runs = APILogHandler()  # outside a run it drops them (PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore)
        to_runs.addFilter(_Own(False))
        root.addHandler(to_runs)


OWN = ("prefect", "reelflow")  # whose log records may reach the terminal


class _Own(logging.Filter):
    """Passes the records of reelflow's and Prefect's loggers (`own`), or the others' (a library's)."""

    def __init__(self, own: bool) -> None:
        super().__init__()
        self.own = own

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name.partition(".")[0] in OWN) is self.own


def keep_library_logs_off_the_terminal() -> None:
    """No library's log record (fal_client's upload fallback, google-genai's choice of key, a retry notice)
    reaches the terminal: the terminal's handlers pass only reelflow's and Prefect's own. Without any handler
    (Prefect's logging not set up), Python would print a library's warnings itself: a handler that drops them
    takes its place."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    for handler in root.handlers:
        if not any(isinstance(f, _Own) for f in handler.filters):
            handler.addFilter(_Own(True))

"""Where a command's flow runs are recorded: the user's Prefect API if one is set, else a local Prefect
server that reelflow starts once, in the background, and reuses.

Prefect's fallback, a temporary server inside every process, costs 10-20 s per command; a running
server costs about 1.5 s. The server started here is Prefect's own (`prefect server start`), detached
from the terminal (Ctrl-C on a run leaves it alone) and recorded in Prefect's pid file, so that
`prefect server stop` stops it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ReelflowError
from .settings import Settings

STARTUP_TIMEOUT_SECONDS = 180.0  # a new database runs its migrations first (about 20 s here)
PREFECT_GONE = "the Prefect server stopped answering"  # how a run says its server went away mid-run
PID_FILE = "server.pid"  # Prefect's own name for it: `prefect server stop` reads this file
LOG_FILE = "reelflow-server.log"
_OUTLIVING_US: list[subprocess.Popen[bytes]] = []  # held so that no server is reported as leaked: they outlive us


class PrefectServerError(ReelflowError):
    """The local Prefect server could not be started."""


@contextlib.contextmanager
def prefect_api(settings: Settings, announce: Callable[[str], None]) -> Iterator[None]:
    """Run the body against the user's Prefect API, or else against the local server (started if
    needed, with one line through `announce`). Import Prefect only after `quiet_prefect()`."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    current = get_current_settings()
    if current.api.url or settings.prefect_server == "temporary":
        yield
        return
    url = local_server_url(settings)
    if ensure_local_server(settings, Path(current.home)):
        announce(f"Started a Prefect server for reelflow's runs: UI at {url.removesuffix('/api')} "
                 "(it keeps running for the next commands; `prefect server stop` stops it).")
    os.environ["PREFECT_API_URL"] = url  # for the processes Prefect starts (served flow runs)
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        del os.environ["PREFECT_API_URL"]


def local_server_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prefect_port}/api"


def ensure_local_server(settings: Settings, home: Path) -> bool:
    """Make sure the local Prefect server answers; True when this call had to start it. Concurrent
    commands take turns, so only one of them starts the server."""
    url = local_server_url(settings)
    if healthy(url):
        return False
    home.mkdir(parents=True, exist_ok=True)
    with (home / "reelflow-server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if healthy(url):
            return False
        _wait_until_healthy(url, home, _start(settings, home))
    return True


def healthy(url: str) -> bool:
    import urllib.request  # (http.client: a tenth of a second that commands without a run do not need)

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _start(settings: Settings, home: Path) -> subprocess.Popen[bytes]:
    """`prefect server start`, detached, at the CPU priority of a background service (a few threads it starts
    in its first milliseconds may keep ours: they do not record runs)."""
    port = str(settings.prefect_port)
    environment = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_API_HOST": "127.0.0.1",
                   "PREFECT_SERVER_API_PORT": port, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    environment.pop("PREFECT_API_URL", None)
    with (home / LOG_FILE).open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port],
            env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    os.setpriority(os.PRIO_PROCESS, server.pid, settings.prefect_server_niceness)
    (home / PID_FILE).write_text(str(server.pid))
    _OUTLIVING_US.append(server)
    return server


def _wait_until_healthy(url: str, home: Path, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not healthy(url):
        if time.monotonic() > deadline or server.poll() is not None:
            raise PrefectServerError(
                f"could not start a Prefect server at {url} (its log: {home / LOG_FILE}); "
                "set REELFLOW_PREFECT_PORT to a free port, or PREFECT_API_URL to a running server")
        time.sleep(0.25)

"""Shared fixtures: a clean environment, sandbox servers, SDK clients, test images."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image
from pydantic import SecretStr

# Prefect reads these at import time: quiet, offline, and isolated from the user's own Prefect.
_SESSION_HOME = tempfile.mkdtemp(prefix="reelflow-tests-")
os.environ.update({
    "PREFECT_HOME": str(Path(_SESSION_HOME) / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
})


def wait_until(condition: Callable[[], bool], seconds: float = 30, every: float = 0.2) -> bool:
    """Whether `condition` came true within `seconds` (checked every `every`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Commands run by tests share one local Prefect server, on a port of their own (not the user's 4200).
os.environ["REELFLOW_PREFECT_PORT"] = str(free_port())
_KEPT = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT", "CI", "REELFLOW_PREFECT_PORT")
_BASELINE = {k: v for k, v in os.environ.items() if k in _KEPT or k.startswith("PREFECT_")}

from reelflow import Settings, load_profile  # noqa: E402
from reelflow.prefect_server import PID_FILE, ensure_local_server, local_server_url  # noqa: E402
from reelflow.providers import Connection, Gateway, open_gateway  # noqa: E402
from reelflow.sandbox import RunningSandbox, run_sandbox  # noqa: E402


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the same environment: no user's keys, URLs or REELFLOW_ settings."""
    for key in list(os.environ):
        if key not in _BASELINE:
            monkeypatch.delenv(key)
    for key, value in _BASELINE.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def local_prefect_server() -> str:
    """The Prefect server that `reelflow` commands started by tests record their runs in, started up
    front so that no test's output includes the one-time "Started a Prefect server" line."""
    ensure_local_server(Settings(), Path(os.environ["PREFECT_HOME"]))
    return local_server_url(Settings())


@pytest.fixture(scope="session", autouse=True)
def stop_local_prefect_server() -> Iterator[None]:
    """What `prefect server stop` does, for the server the session's commands started (if any)."""
    yield
    pid_file = Path(os.environ["PREFECT_HOME"]) / PID_FILE
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture(autouse=True)
def clean_memory_filesystem() -> Iterator[None]:
    """`memory://` is the test filesystem: every test starts (and leaves) it empty."""
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    """One quick sandbox for the session; tests that change its switches start their own."""
    with run_sandbox(job_seconds=0.3) as running:
        yield running


def gateway_to(running: RunningSandbox, settings: Settings | None = None, key: str | None = None,
               profile: str = "sandbox") -> Gateway:
    """reelflow's gateway to a sandbox, in the dialect its profile speaks (close it when done)."""
    connection = Connection(running.base_url, SecretStr(key or running.api_key), load_profile(profile), False)
    return open_gateway(connection, settings or Settings())


_OPEN_CLIENTS: list[openai.OpenAI] = []


def sdk(running: RunningSandbox, **options: object) -> openai.OpenAI:
    """The real SDK pointed at a sandbox; closed when the test (or module fixture) ends."""
    client = openai.OpenAI(api_key=running.api_key, base_url=running.base_url, **options)  # type: ignore[arg-type]
    _OPEN_CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    already_open = len(_OPEN_CLIENTS)
    yield
    while len(_OPEN_CLIENTS) > already_open:
        _OPEN_CLIENTS.pop().close()


@pytest.fixture
def client(sandbox: RunningSandbox) -> openai.OpenAI:
    return sdk(sandbox, max_retries=0)


Colour = float | tuple[int, ...] | str


def image_bytes(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", colour: Colour | None = None) -> bytes:
    """A real image file of the given size, format and mode."""
    image = Image.new(mode, size, colour if colour is not None else _default_colour(mode))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


DEFAULT_COLOURS: dict[str, Colour] = {"RGB": (200, 80, 40), "RGBA": (200, 80, 40, 128), "L": 128, "P": 3,
                                     "CMYK": (10, 200, 30, 0), "I;16": 30000}


def _default_colour(mode: str) -> Colour:
    return DEFAULT_COLOURS.get(mode, 0)

"""Serving a sandbox: in the foreground (`reelflow sandbox`) or in-process on a free port."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from ..sandbox_process import SANDBOX_API_KEY
from ._app import ConnectionDropped, Sandbox
from ._config import SandboxConfig


class _HideDroppedConnections(logging.Filter):
    """A `drop` fault is deliberate: keep uvicorn from logging it as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


@dataclass
class RunningSandbox:
    """A sandbox serving on loopback: where to reach it and what it has seen."""

    base_url: str
    sandbox: Sandbox
    api_key: str = SANDBOX_API_KEY

    def stats(self) -> dict[str, Any]:
        return self.sandbox.stats()


def _bind(config: SandboxConfig) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(2048)  # from now on connections queue, so the address can be announced before serving starts
    sock.set_inheritable(True)
    return sock


def _server(sandbox: Sandbox, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())
    # The engine stamps each answer's Date itself: uvicorn's own is refreshed by its main loop about once a
    # second, and seconds late when that loop is starved (clients read the provider's clock from it).
    return uvicorn.Server(uvicorn.Config(sandbox.asgi(), log_level=log_level, access_log=False,
                                         timeout_graceful_shutdown=2, date_header=False))


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig | None = None, **overrides: Any) -> Iterator[RunningSandbox]:
    """Serve a sandbox in a background thread for the duration of the `with` block."""
    config = SandboxConfig.model_validate({**(config or SandboxConfig()).model_dump(), **overrides})
    sandbox = Sandbox(config)
    server = _server(sandbox, "warning")
    sock = _bind(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="reelflow-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    try:
        yield RunningSandbox(base_url=f"http://{host}:{port}{sandbox.base_path}", sandbox=sandbox)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_sandbox(sandbox: Sandbox, announce: Callable[[str], None], with_parent: bool = False) -> None:
    """Serve in the foreground until interrupted (Ctrl-C), or, `with_parent`, until standard input closes (the
    process that started it, holding the other end, has ended: even a SIGKILL closes it); `announce` gets the
    base URL once bound."""
    server = _server(sandbox, "warning")
    sock = _bind(sandbox.config)
    host, port = sock.getsockname()[:2]
    announce(f"http://{host}:{port}{sandbox.base_path}")
    if with_parent:
        threading.Thread(target=_stop_at_end_of_input, args=(server,), name="reelflow-parent", daemon=True).start()
    server.run(sockets=[sock])


def _stop_at_end_of_input(server: uvicorn.Server) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    server.should_exit = True

"""Faults between reelflow and a provider, on the wire: a loopback proxy in front of any server (a sandbox pose,
a third party's fake), in the spirit of toxiproxy.

A `Fault` picks the Nth request that matches a method and a path pattern (and, optionally, an upstream answer
that contains some bytes: "the poll that says it is finished") and does to it what a flaky network or gateway
does: answers a status without forwarding it, forwards it and answers a status instead of the provider's answer
(a gateway's 502 after the provider acted), forwards it and drops the answer, drops it before forwarding, cuts
the answer's body short, resets the connection mid-body, or delays the answer. Every request is recorded, with
whether it reached the provider and what the client got.

The proxy keeps the client's `Host` header, so URLs the provider builds from it (fal's `response_url`, a signed
download URL) point back at the proxy, and the faults reach them too."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import h11
import httpx

Action = Literal["answer", "after", "lose", "drop", "truncate", "reset", "delay"]
_GATEWAY_PAGES = {502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                  504: b"<html><body><h1>504 Gateway Time-out</h1></body></html>"}
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
               b"proxy-connection", b"content-length"}


@dataclass
class Fault:
    """What to do to the `nth` request (1: the first) whose method is `method` and whose path (with its query)
    matches `path` (a regular expression, searched), counting only requests whose upstream answer contains
    `answered` when that is given (then the request is always forwarded first)."""

    method: str
    path: str
    action: Action
    nth: int = 1
    status: int = 502  # for "answer" and "after"
    seconds: float = 0.0  # for "delay"
    answered: bytes | None = None
    seen: int = 0
    fired: bool = False

    def describe(self) -> str:
        what = {"answer": f"answered {self.status} without forwarding", "after": f"answered {self.status} after "
                "forwarding", "lose": "forwarded, its answer dropped", "drop": "dropped before forwarding",
                "truncate": "its answer cut short", "reset": "reset mid-answer",
                "delay": f"delayed {self.seconds:g} s"}[self.action]
        return f"{self.method} {self.path} #{self.nth}: {what}"


@dataclass(frozen=True)
class Passage:
    """One request as the proxy saw it: whether it reached the provider, the provider's status, what the client
    was given (a status, or the fault's action)."""

    method: str
    path: str
    reached: bool
    upstream_status: int | None
    given: str


@dataclass
class WireFaults:
    """The proxy's rules and what passed through it; `base_url` is the provider's, as seen through the proxy."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    base_url: str = ""

    def reached(self, method: str, path: str) -> int:
        """How many requests matching `method` and `path` reached the provider."""
        pattern = re.compile(path)
        return sum(1 for p in self.passages if p.reached and p.method == method and pattern.search(p.path))

    def fired(self) -> list[Fault]:
        return [fault for fault in self.faults if fault.fired]

    def _pick(self, method: str, path: str, answered: bytes | None) -> Fault | None:
        for fault in self.faults:
            if fault.fired or fault.method != method or not re.search(fault.path, path):
                continue
            if (fault.answered is None) != (answered is None):
                continue
            if fault.answered is not None and (answered is None or fault.answered not in answered):
                continue
            fault.seen += 1
            if fault.seen == fault.nth:
                fault.fired = True
                return fault
        return None

    def _waits_for_answer(self, method: str, path: str) -> bool:
        return any(not f.fired and f.answered is not None and f.method == method and re.search(f.path, path)
                   for f in self.faults)


class _Response:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Proxy:
    """The proxy's event loop, in a thread of its own."""

    def __init__(self, wire: WireFaults) -> None:
        self.wire = wire
        self.loop = asyncio.new_event_loop()
        self.client: httpx.AsyncClient | None = None
        self.server: asyncio.AbstractServer | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        self.client = httpx.AsyncClient(timeout=300, follow_redirects=False)
        self.server = await asyncio.start_server(self.serve, sock=sock)

    async def stop(self) -> None:
        """Stop listening, end the connections still open (a client's idle keep-alive ones) and close."""
        if self.server is not None:
            self.server.close()
        for task in self.connections:
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        task.add_done_callback(self.connections.discard)
        connection = h11.Connection(h11.SERVER)
        try:
            while await self._one(connection, reader, writer):
                connection.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    async def _one(self, connection: h11.Connection, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        """Serve one request of the connection; False when the connection is to end."""
        request, body = await _read_request(connection, reader)
        if request is None:
            return False
        method, target = request.method.decode(), request.target.decode()
        fault = None if self.wire._waits_for_answer(method, target) else self.wire._pick(method, target, None)
        if fault is not None and fault.action in ("answer", "drop"):
            self._record(method, target, False, None, fault)
            if fault.action == "drop":
                return False
            await _write(connection, writer, _gateway_answer(fault.status))
            return connection.our_state is h11.DONE and connection.their_state is h11.DONE
        upstream = await self._forward(request, body)
        if fault is None:
            fault = self.wire._pick(method, target, upstream.body) if self.wire._waits_for_answer(
                method, target) else None
        self._record(method, target, True, upstream.status, fault)
        return await self._answer(connection, writer, upstream, fault)

    async def _forward(self, request: h11.Request, body: bytes) -> _Response:
        assert self.client is not None
        headers = [(name, value) for name, value in request.headers if name.lower() not in _HOP_BY_HOP]
        answer = await self.client.request(request.method.decode(), self.wire.upstream + request.target.decode(),
                                           headers=headers, content=body)
        kept = [(name.encode(), value.encode()) for name, value in answer.headers.items()
                if name.encode().lower() not in _HOP_BY_HOP and name.lower() != "content-encoding"]
        return _Response(answer.status_code, kept, answer.content)

    async def _answer(self, connection: h11.Connection, writer: asyncio.StreamWriter, upstream: _Response,
                      fault: Fault | None) -> bool:
        if fault is None:
            await _write(connection, writer, upstream)
            return True
        if fault.action == "after":
            await _write(connection, writer, _gateway_answer(fault.status))
            return True
        if fault.action == "delay":
            await asyncio.sleep(fault.seconds)
            await _write(connection, writer, upstream)
            return True
        if fault.action in ("truncate", "reset"):
            headers = [*upstream.headers, (b"content-length", str(len(upstream.body)).encode())]
            writer.write(connection.send(h11.Response(status_code=upstream.status, headers=headers)) or b"")
            writer.write(connection.send(h11.Data(data=upstream.body[:len(upstream.body) // 2])) or b"")
            await writer.drain()
            if fault.action == "reset":
                _reset(writer)
        return False  # "lose": forwarded, and nothing comes back

    def _record(self, method: str, target: str, reached: bool, status: int | None, fault: Fault | None) -> None:
        given = fault.action if fault is not None and fault.action not in ("answer", "after") else str(
            fault.status if fault is not None else status)
        self.wire.passages.append(Passage(method, target, reached, status, given))


async def _read_request(connection: h11.Connection, reader: asyncio.StreamReader
                        ) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            connection.receive_data(data)
            if not data and request is None:
                return None, b""
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body)
        else:  # ConnectionClosed, PAUSED
            return None, b""


async def _write(connection: h11.Connection, writer: asyncio.StreamWriter, response: _Response) -> None:
    headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
    writer.write(connection.send(h11.Response(status_code=response.status, headers=headers)) or b"")
    writer.write(connection.send(h11.Data(data=response.body)) or b"")
    writer.write(connection.send(h11.EndOfMessage()) or b"")
    await writer.drain()


def _gateway_answer(status: int) -> _Response:
    """What a gateway in front of the provider answers (an HTML page for 502 and 504, as nginx and cloud load
    balancers do; a bare JSON error otherwise)."""
    if status in _GATEWAY_PAGES:
        return _Response(status, [(b"content-type", b"text/html")], _GATEWAY_PAGES[status])
    return _Response(status, [(b"content-type", b"application/json")],
                     b'{"error": {"message": "injected fault", "code": %d}}' % status)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than an orderly end (SO_LINGER of zero)."""
    raw = writer.get_extra_info("socket")
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


@contextlib.contextmanager
def wire_faults(base_url: str, *faults: Fault) -> Iterator[WireFaults]:
    """A proxy on loopback in front of the server at `base_url` (scheme, host, port and base path), applying
    `faults`, for the duration of the block; its `base_url` is the provider's through the proxy."""
    scheme_host, _, base_path = base_url.partition("://")[2].partition("/")
    upstream = f"{base_url.partition('://')[0]}://{scheme_host}"
    wire = WireFaults(upstream=upstream, faults=list(faults))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    wire.base_url = f"http://127.0.0.1:{port}" + (f"/{base_path}" if base_path else "")
    proxy = _Proxy(wire)
    thread = threading.Thread(target=proxy.loop.run_forever, name="reelflow-wire-faults", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(proxy.start(sock), proxy.loop).result(timeout=10)
    try:
        yield wire
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), proxy.loop).result(timeout=10)
        proxy.loop.call_soon_threadsafe(proxy.loop.stop)
        thread.join(timeout=10)
        proxy.loop.close()
        sock.close()

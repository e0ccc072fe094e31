"""The fault matrix: one plan rendered through a dialect while the wire between reelflow and the provider fails in
one way at a time, and what must hold whatever fails: no step is paid for more often than it is delivered or left
"unknown, may be paid"; every delivered video is the one its scene asked for; the exit code says whether every
scene was rendered; the user gets one line per failed scene and no traceback."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..sandbox import Route, Routes
from ._wire import Fault

Outcome = Literal["delivered", "delivered where the provider lists jobs"]


@dataclass(frozen=True)
class FaultCase:
    """One way the wire fails (`faults`, for a dialect's routes; None where the dialect has no such request), and
    what a run must then come to: the scene delivered, or delivered only on a provider that lists its jobs
    (elsewhere the step is left unknown, may be paid: the create's answer is lost and nothing can tell)."""

    name: str
    faults: Callable[[Routes], list[Fault] | None]
    outcome: Outcome
    request_timeout: float | None = None  # seconds: the run's request timeout, for a case that waits it out


def _on(route: Route, action: Literal["answer", "after", "lose", "drop", "truncate", "reset", "delay"], *,
        status: int = 502, seconds: float = 0.0, answered: bytes | None = None) -> list[Fault]:
    return [Fault(route[0], route[1], action, status=status, seconds=seconds, answered=answered)]


def _result(routes: Routes, status: int) -> list[Fault]:
    """The fetch of a finished job's result answered `status` (by the gateway, after the provider answered)."""
    if routes.result is not None:
        return _on(routes.result, "answer", status=status)
    return _on(routes.status, "after", status=status, answered=routes.finished)


def _download(routes: Routes, action: Literal["answer", "truncate", "reset"], status: int = 502
              ) -> list[Fault] | None:
    return None if routes.download is None else _on(routes.download, action, status=status)


ONLY_LISTED: Outcome = "delivered where the provider lists jobs"
CASES: tuple[FaultCase, ...] = (
    FaultCase("create answered 500 after the provider made it", lambda r: _on(r.create, "after", status=500),
              ONLY_LISTED),
    FaultCase("create answered 502 by a gateway after the provider made it",
              lambda r: _on(r.create, "after", status=502), ONLY_LISTED),
    FaultCase("create answered 504 by a gateway after the provider made it",
              lambda r: _on(r.create, "after", status=504), ONLY_LISTED),
    FaultCase("create made, its answer dropped", lambda r: _on(r.create, "lose"), ONLY_LISTED),
    FaultCase("create dropped before it reached the provider", lambda r: _on(r.create, "drop"), ONLY_LISTED),
    FaultCase("create made, its answer later than the timeout", lambda r: _on(r.create, "delay", seconds=4),
              ONLY_LISTED, request_timeout=2),
    FaultCase("status answered 503", lambda r: _on(r.status, "answer", status=503), "delivered"),
    FaultCase("status answered 404", lambda r: _on(r.status, "answer", status=404), "delivered"),
    FaultCase("finished job's result answered 500", lambda r: _result(r, 500), "delivered"),
    FaultCase("finished job's result answered 404", lambda r: _result(r, 404), "delivered"),
    FaultCase("download answered 403", lambda r: _download(r, "answer", 403), "delivered"),
    FaultCase("download answered 410", lambda r: _download(r, "answer", 410), "delivered"),
    FaultCase("download cut short", lambda r: _download(r, "truncate"), "delivered"),
    FaultCase("download reset mid-body", lambda r: _download(r, "reset"), "delivered"),
)


@dataclass(frozen=True)
class Ledgered:
    """What a run left, as its output says: per scene, whether it was delivered, its video's SHA-256, and the steps
    its ledger leaves unknown (may be paid)."""

    delivered: dict[str, str]  # scene id -> SHA-256 of its video
    delivered_steps: int
    unknown_steps: int


def ledgered(read: Callable[..., bytes], exists: Callable[..., bool], scenes: dict[str, int]) -> Ledgered:
    """From a plan folder (`read` and `exists` of its storage) and its scenes (id -> number of steps)."""
    manifest = json.loads(read("manifest.json")) if exists("manifest.json") else {"scenes": []}
    delivered = {s["id"]: s["files"]["video.mp4"]["sha256"] for s in manifest["scenes"]
                 if s["status"] == "completed" and "video.mp4" in s.get("files", {})}
    unknown = 0
    for scene in scenes:
        if exists("ledger", f"{scene}.json"):
            entry = json.loads(read("ledger", f"{scene}.json"))
            unknown += sum(1 for job in entry["jobs"] if job["status"] == "unknown")
    return Ledgered(delivered, sum(scenes[s] for s in delivered), unknown)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

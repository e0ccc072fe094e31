"""One run per output at a time: a lease in the output's ledger.

The lease is a numbered object under `ledger/lease/`, each made with an atomic create-if-absent (a hard link
on a local disk, `If-None-Match: *` on S3), so of two runs that find the same lease free exactly one makes the
next number and holds the output; on an object store the winner also reads its lease back before it counts on it
(some S3-compatible stores ignore the condition, and then the last writer wins), and every renewal checks it again.
The holder rewrites its object every third of the lease's length. A lease
not renewed by its expiry (its owner was killed, its machine lost) is taken over by the next run, which makes
the next number; on the holder's own machine, a holder whose process has ended is taken over at once. Runs
compare their own clocks with the holder's expiry: a fleet's clocks must agree to well within a lease."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from .errors import StorageError, UserError
from .ledger import LEDGER_FOLDER
from .storage import Storage

LEASE_FOLDER = "lease"
# An object store's create-if-absent is trusted only once the lease reads back as this run's own, this long after
# it was written: a store that ignores If-None-Match lets the last of several writers win, and every writer that
# made its write within this time reads back the winner's.
SETTLE_SECONDS = 1.0


class OutputBusy(UserError):
    """Another run holds the output's lease."""


class Holder(BaseModel):
    """Who holds an output, as its lease says."""

    host: str
    pid: int
    flow_run_id: str | None = Field(default=None, description="The holder's Prefect flow run, if it is one.")
    flow_run_name: str | None = None
    started_at: float = Field(description="When the holder took the lease (epoch seconds).")
    expires_at: float = Field(description="Unless renewed before then (epoch seconds, by the holder's clock).")
    released: bool = False
    token: str = Field(default_factory=lambda: secrets.token_hex(8), description="This holding's own mark: what it "
                       "reads back to know the lease is its own.")

    @classmethod
    def me(cls, flow_run_id: str | None, flow_run_name: str | None, seconds: float) -> Holder:
        now = time.time()
        return cls(host=socket.gethostname(), pid=os.getpid(), flow_run_id=flow_run_id, flow_run_name=flow_run_name,
                   started_at=now, expires_at=now + seconds)

    def holds(self, now: float) -> bool:
        """Still held: not released, renewed in time, and (on this machine) its process still there."""
        return not self.released and self.expires_at > now and not self._gone_from_here()

    def _gone_from_here(self) -> bool:
        """A holder on this machine whose process has ended (killed, say) holds nothing: no need to wait for
        its lease to expire. (A reused pid only makes the next run wait for the expiry.)"""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # a process of another user: there
        return False

    def describe(self) -> str:
        run = f", Prefect flow run {self.flow_run_name or '?'} ({self.flow_run_id})" if self.flow_run_id else ""
        started = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"host {self.host}, pid {self.pid}{run}, started {started}"


class Lease:
    """The output's lease while this run holds it; renewed in the background until released."""

    def __init__(self, storage: Storage, generation: int, holder: Holder, seconds: float,
                 previous: Holder | None) -> None:
        self.storage, self.generation, self.holder, self.seconds = storage, generation, holder, seconds
        self.previous = previous  # the holder whose expired lease this one took over, if any
        self.lost = False  # another run took the lease over: this one stopped renewing it
        self._stop = threading.Event()
        self._renewing = threading.Thread(target=self._renew, name="reelflow-lease", daemon=True)
        self._renewing.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            with contextlib.suppress(StorageError):  # a missed renewal is made up by the next one
                if _latest(self.storage) != self.generation or not _ours(self.storage, self.generation, self.holder):
                    self.lost = True
                    return
                self.holder = self.holder.model_copy(update={"expires_at": time.time() + self.seconds})
                _write(self.storage, self.generation, self.holder)

    def release(self) -> None:
        self._stop.set()
        self._renewing.join()
        if not self.lost:
            _write(self.storage, self.generation, self.holder.model_copy(update={"released": True}))


@contextlib.contextmanager
def holding(storage: Storage, holder: Holder, seconds: float, wait: bool) -> Iterator[Lease]:
    """Hold the output of `storage` (a plan's folder) for the block; with `wait`, wait while another run holds
    it, else stop at once with one line naming that run."""
    lease = acquire(storage, holder, seconds, wait)
    try:
        yield lease
    finally:
        lease.release()


def acquire(storage: Storage, holder: Holder, seconds: float, wait: bool) -> Lease:
    while True:
        generation = _latest(storage)
        current = _read(storage, generation) if generation else None
        same_run = holder.flow_run_id is not None and current is not None and current.flow_run_id == holder.flow_run_id
        if current is not None and current.holds(time.time()) and not same_run:  # (a flow run retried takes it back)
            if not wait:
                raise OutputBusy(f"{storage.location()} is being rendered by another run ({current.describe()}); "
                                 "let it end (`reelflow run --wait` waits for it), or stop it")
            time.sleep(min(2.0, seconds / 3))
            continue
        if _create(storage, generation + 1, holder) and _confirmed(storage, generation + 1, holder):
            _forget_before(storage, generation)
            taken_over = current if current is not None and not current.released else None
            return Lease(storage, generation + 1, holder, seconds, taken_over)


def _latest(storage: Storage) -> int:
    numbers = [int(name.removesuffix(".json")) for name in storage.names(LEDGER_FOLDER, LEASE_FOLDER)
               if name.removesuffix(".json").isdigit()]
    return max(numbers, default=0)


def _read(storage: Storage, generation: int) -> Holder | None:
    """The holder of `generation`; one being written (or damaged) counts as held for a lease's length."""
    try:
        return Holder.model_validate_json(storage.read_bytes(*_parts(generation)))
    except (StorageError, ValidationError):
        now = time.time()
        return Holder(host="?", pid=0, started_at=now, expires_at=now + 1)


def _create(storage: Storage, generation: int, holder: Holder) -> bool:
    return storage.create(holder.model_dump_json().encode(), *_parts(generation))


def _confirmed(storage: Storage, generation: int, holder: Holder) -> bool:
    """Whether the lease just created is this holder's: on an object store, read back after `SETTLE_SECONDS` (a
    store that ignored the condition shows the last writer's), else as the create said."""
    if storage.creates_atomically:
        return True
    time.sleep(SETTLE_SECONDS)
    return _ours(storage, generation, holder)


def _ours(storage: Storage, generation: int, holder: Holder) -> bool:
    held = _read(storage, generation)
    return held is not None and held.token == holder.token


def _write(storage: Storage, generation: int, holder: Holder) -> None:
    storage.write_bytes(holder.model_dump_json().encode(), *_parts(generation))


def _forget_before(storage: Storage, generation: int) -> None:
    """Leases older than the one just taken over are history."""
    for name in storage.names(LEDGER_FOLDER, LEASE_FOLDER):
        number = name.removesuffix(".json")
        if number.isdigit() and int(number) < generation:
            with contextlib.suppress(StorageError):
                storage.remove(LEDGER_FOLDER, LEASE_FOLDER, name)


def _parts(generation: int) -> tuple[str, ...]:
    return LEDGER_FOLDER, LEASE_FOLDER, f"{generation}.json"

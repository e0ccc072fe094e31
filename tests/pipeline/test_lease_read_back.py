"""The lease on an object store that ignores `If-None-Match` (several S3-compatible stores do): every writer's
create "succeeds" and the last one wins, so a run counts on its lease only once it reads it back as its own."""

from __future__ import annotations

import threading
import time

import pytest

from reelflow.lease import Holder, Lease, OutputBusy, acquire
from reelflow.storage import Storage


def test_of_eight_runs_on_a_store_that_ignores_the_condition_exactly_one_holds_the_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def careless(self: Storage, data: bytes, *parts: str) -> bool:
        """A put that ignores If-None-Match, as slow as a store across a network (every run that listed the
        folder before any put lands sees it free)."""
        time.sleep(0.2)
        self.write_bytes(data, *parts)
        return True

    monkeypatch.setattr(Storage, "create", careless)
    folder = Storage("memory://careless").child("plan")
    start, won, refused = threading.Barrier(8), list[Lease](), list[str]()

    def contend(name: str) -> None:
        start.wait()
        try:
            won.append(acquire(folder, Holder.me(f"id-{name}", name, 30), 30, wait=False))
        except OutputBusy as e:
            refused.append(str(e))

    threads = [threading.Thread(target=contend, args=(f"run{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(refused)) == (1, 7), (won, refused)
    assert all(f"Prefect flow run {won[0].holder.flow_run_name}" in line for line in refused), refused
    won[0].release()

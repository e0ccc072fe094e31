"""The lease on an object store that ignores `If-None-Match` (several S3-compatible stores do): every writer's
create "succeeds" and the last one wins, so a run counts on its lease only once it reads it back as its own."""

from __future__ import annotations

import time

import pytest

from reelflow.storage import Storage
from tests.pipeline.test_lease import contended


def test_of_eight_runs_on_a_store_that_ignores_the_condition_exactly_one_holds_the_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def careless(self: Storage, data: bytes, *parts: str) -> bool:
        """A put that ignores If-None-Match, as slow as a store across a network (every run that listed the
        folder before any put lands sees it free)."""
        time.sleep(0.2)
        self.write_bytes(data, *parts)
        return True

    monkeypatch.setattr(Storage, "create", careless)
    won, refused = contended(Storage("memory://careless").child("plan"), 8)
    assert (len(won), len(refused)) == (1, 7), (won, refused)
    assert all(f"Prefect flow run {won[0].holder.flow_run_name}" in line for line in refused), refused
    won[0].release()

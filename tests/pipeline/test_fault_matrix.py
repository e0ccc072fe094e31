"""The fault matrix (reelflow.testing's `FaultMatrix`) for every built-in dialect through its own SDK: a one-scene
plan rendered by `reelflow run` while the wire between reelflow and the sandbox posing as the provider fails once,
in one way (creates answered 5xx after the provider made the job, lost, dropped, timed out; status checks and
result fetches answered 5xx or 404; downloads answered 403 or 410, cut short, reset)."""

from __future__ import annotations

import pytest

from reelflow.providers import dialect_entries
from reelflow.testing import FaultMatrix

BUILT_IN = [entry.profile for entry in dialect_entries() if entry.profile]


@pytest.fixture(params=BUILT_IN)
def profile_name(request: pytest.FixtureRequest, prefect_harness: None) -> str:
    return str(request.param)


class TestEveryBuiltInDialect(FaultMatrix):
    pass

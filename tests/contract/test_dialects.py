"""The dialect contract (reelflow.testing's `DialectContract`) run on every built-in dialect, each against the
sandbox posing as its provider, through reelflow's gateway: as fsspec runs one set of tests across its
filesystems. The profiles are the registry's (each entry names the profile its contract runs against)."""

from __future__ import annotations

import pytest

from reelflow.providers import dialect_entries
from reelflow.testing import DialectContract

BUILT_IN = [entry.profile for entry in dialect_entries() if entry.profile]


@pytest.fixture(scope="module", params=BUILT_IN)
def profile_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestEveryBuiltInDialect(DialectContract):
    @pytest.fixture(autouse=True)
    def _verdicts(self, profile_name: str) -> None:
        # OpenRouter's `failed` status carries no verdict: a server-side failure reads as a refusal there, so final.
        self.tells_passing_failures = profile_name != "openrouter"

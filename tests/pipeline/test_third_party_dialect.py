"""A dialect added the way a third party adds one (tests/acme_dialect.py: Acme Video, a made-up API, its dialect and
its sandbox pose), registered once, passes the dialect contract and the fault matrix imported from
reelflow.testing, with no change to reelflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelflow.providers import register_dialect
from reelflow.testing import DialectContract, FaultMatrix
from tests.acme_dialect import ACME_PROFILE


@pytest.fixture
def profile_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Acme Video joins as a third party's dialect does: its profile in the user's file, and one registration
    naming its class, its sandbox pose and the profile its contract runs against."""
    providers = tmp_path / "acme.yaml"
    providers.write_text(ACME_PROFILE)
    monkeypatch.setenv("REELFLOW_PROVIDERS_FILE", str(providers))
    register_dialect("acme-videos", "tests.acme_dialect:AcmeVideos", pose="tests.acme_dialect:AcmePose",
                     profile="acme", clobber=True)
    return "acme"


class TestAThirdPartysDialect(DialectContract):
    """The imported contract."""


class TestAThirdPartysDialectUnderWireFaults(FaultMatrix):
    """The fault matrix (Prefect's test harness records the runs)."""

    @pytest.fixture(autouse=True)
    def _recorded(self, prefect_harness: None) -> None:
        return None

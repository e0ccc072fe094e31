"""`reelflow doctor`: one line per finding, passed / degraded / blocked with the fix, before anything is paid; an
unreachable provider and an output that cannot be written are each blocked in one line, and make the exit code
non-zero; a provider that answers is asked for its key and models, and nothing is created."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from reelflow.providers import Capabilities
from reelflow.sandbox import run_sandbox
from tests.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
VERDICTS = ("passed", "degraded", "blocked")


class OlderDialect:
    """A third party's dialect from before `check_access` (its other methods are not called here)."""

    dialect = "older-dialect"
    capabilities = Capabilities()


def doctor(*arguments: str, env: dict[str, str], without_root_overrides: bool = False
           ) -> subprocess.CompletedProcess[str]:
    """`reelflow doctor ARGUMENTS`; for a read-only folder to be one for root too, without its capability to
    write anywhere (CAP_DAC_OVERRIDE)."""
    command = [sys.executable, "-m", "reelflow.cli", "doctor", *arguments]
    if without_root_overrides and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, **env})


def findings(done: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """Each finding's subject: its verdict and detail (every line of stdout must be one finding)."""
    found = {}
    for line in done.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        subject, _, detail = rest.strip().partition(": ")
        assert verdict in VERDICTS and detail, line
        found[subject] = (verdict, detail)
    return found


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(f"name: checked\noutput: file://{tmp_path}/out\nscenes:\n  - {{id: a, prompt: a harbour}}\n")
    return path


def test_an_unreachable_provider_is_blocked_in_one_line(plan: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v1"
    done = doctor(str(plan), env={"OPENROUTER_API_KEY": "sk-or-v1-secret-value", "OPENROUTER_BASE_URL": base_url})
    assert done.returncode == 1, done.stdout + done.stderr
    found = findings(done)
    assert found["openrouter credentials"] == ("passed", "OPENROUTER_API_KEY, OPENROUTER_BASE_URL set")
    verdict, detail = found["openrouter API"]
    assert verdict == "blocked" and f"could not connect to {base_url}" in detail
    assert "check the network and the provider's base URL" in detail
    assert found["output"][0] == "passed" and found["openrouter plan"] == ("passed", "valid")
    assert "sk-or-v1-secret-value" not in done.stdout + done.stderr and done.stderr == ""


def test_an_output_it_cannot_write_is_blocked_in_one_line(plan: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root writes any folder, and setpriv is not here to give that up")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        done = doctor(str(plan), env={}, without_root_overrides=True)
    finally:
        out.chmod(0o755)
    assert done.returncode == 1, done.stdout + done.stderr
    verdict, detail = findings(done)["output"]
    assert verdict == "blocked" and f"cannot write file://{out}/checked" in detail and "Permission denied" in detail
    assert detail.endswith("choose another output (--output, or the plan's `output:`), or give it the permissions "
                           "or credentials to write")
    assert not (out / "checked").exists()


def test_a_provider_that_answers_is_asked_for_its_key_and_models(plan: Path, tmp_path: Path) -> None:
    with run_sandbox(profile="openrouter", api_keys=frozenset({"sk-or-v1-mine"})) as pose:
        done = doctor(str(plan), env={"OPENROUTER_API_KEY": "sk-or-v1-mine", "OPENROUTER_BASE_URL": pose.base_url})
        wrong = doctor(str(plan), env={"OPENROUTER_API_KEY": "sk-or-v1-not", "OPENROUTER_BASE_URL": pose.base_url})
        stats = pose.stats()
    assert done.returncode == 0, done.stdout + done.stderr
    found = findings(done)
    assert found["openrouter API"][0] == "passed" and "accepted the key" in found["openrouter API"][1]
    assert found["openrouter models"] == ("passed", "google/veo-3.1-fast offered today")
    assert found["openrouter reference images"][0] == "degraded"  # a local output signs no URLs: data URLs
    assert (tmp_path / "out/checked").is_dir() and not list((tmp_path / "out/checked").iterdir())  # probe removed
    assert wrong.returncode == 1 and findings(wrong)["openrouter API"][0] == "blocked"
    assert "rejected the API key" in findings(wrong)["openrouter API"][1]
    assert stats["jobs"] == 0 and stats["requests"]["GET /api/v1/key"] == 2


def test_a_model_the_provider_no_longer_offers_is_blocked(tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-router\nextends: openrouter\ndefault_model: acme/gone\nmodels:\n  acme/gone:\n"
                   "    seconds: [4]\n    sizes: [1280x720]\n    price_per_second: {1280x720: 0.1}\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: gone\nprovider: my-router\noutput: file://{tmp_path}/out\n"
                    "scenes:\n  - {id: a, prompt: x}\n")
    with run_sandbox(profile="openrouter") as pose:  # its catalog: the built-in profile's models
        done = doctor(str(plan), env={"REELFLOW_PROVIDERS_FILE": str(own), "OPENROUTER_API_KEY": "sk-or-v1-x",
                                      "OPENROUTER_BASE_URL": pose.base_url})
    assert done.returncode == 1
    assert findings(done)["my-router models"] == (
        "blocked", "acme/gone not offered by my-router today: choose another (`reelflow providers my-router`)")


def test_a_dialect_without_a_key_check_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third party's dialect written before doctor asked for `check_access`."""
    from reelflow import Settings
    from reelflow.doctor import Examined, examine
    from reelflow.providers import register_dialect

    register_dialect("older-dialect", "tests.test_doctor:OlderDialect", clobber=True)
    own = tmp_path / "providers.yaml"
    own.write_text("name: older\nextends: litellm\napi: older-dialect\n")
    for name, value in {"REELFLOW_PROVIDERS_FILE": str(own), "REELFLOW_PROVIDER": "older",
                        "OPENAI_API_KEY": "sk-x"}.items():
        monkeypatch.setenv(name, value)
    found = {f.subject: f for f in examine(Examined(None, Settings(), f"file://{tmp_path}/out"))}
    assert (found["older API"].verdict, found["older API"].detail) == (
        "degraded", "its dialect 'older-dialect' has no key check (`check_access`): the first run finds out whether "
        "the key is accepted")


def test_without_credentials_it_says_how_to_render_for_real(tmp_path: Path) -> None:
    done = doctor("--output", f"file://{tmp_path}/out", env={})
    assert done.returncode == 0, done.stdout + done.stderr
    verdict, detail = findings(done)["sandbox credentials"]
    assert verdict == "degraded" and "OPENROUTER_API_KEY (openrouter)" in detail

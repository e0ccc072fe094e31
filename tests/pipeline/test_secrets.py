"""The API key never reaches a log, manifest, ledger, Prefect parameter, state, artifact or message."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from reelflow.sandbox import run_sandbox


def test_the_key_appears_nowhere_a_run_leaves_anything(tmp_path: Path, local_prefect_server: str) -> None:
    key = f"sk-reelflow-canary-{secrets.token_hex(16)}"
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: secret\nscenes:\n  - {id: fine, prompt: a quiet street}\n"
                    "  - {id: refused, prompt: '[blocked] not allowed'}\n")
    home = Path(os.environ["PREFECT_HOME"])  # the local Prefect server's database and log are there
    with run_sandbox(job_seconds=0.2, api_keys=frozenset({key})) as sandbox:
        env = {**os.environ, "OPENAI_API_KEY": key, "OPENAI_BASE_URL": sandbox.base_url,
               "REELFLOW_PROVIDER": "sandbox", "PREFECT_LOGGING_LEVEL": "DEBUG",
               "REELFLOW_POLL_MIN_SECONDS": "0.1"}
        done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                               f"file://{tmp_path}/out"], env=env, capture_output=True, text=True, timeout=900)
        assert sandbox.stats()["jobs"] == 2  # the key worked: the run really talked to the provider
    assert done.returncode == 1  # one scene was refused, so the error paths ran too
    assert "moderation_blocked" in done.stdout
    searched = [p for p in [*(tmp_path / "out").rglob("*"), *home.rglob("*")] if p.is_file()]
    assert any(p.name == "manifest.json" for p in searched) and any(p.suffix == ".db" for p in searched) and any(
        p.suffix == ".log" for p in searched)
    assert key not in done.stdout + done.stderr
    for path in searched:
        assert key.encode() not in path.read_bytes(), path

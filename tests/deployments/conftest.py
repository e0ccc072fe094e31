"""A real Prefect server (SQLite) and `reelflow serve` in its own process, its provider the test sandbox:
shared by the tests of deployments and of what the UI shows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments import DEPLOYMENTS
from reelflow import Settings
from reelflow.prefect_server import PID_FILE, ensure_local_server, local_server_url
from reelflow.sandbox import RunningSandbox
from tests.conftest import free_port

CRON, ZONE = "30 7 * * 1-5", "Europe/Berlin"
UI_UPDATE_SECONDS = 0.2  # a run page updated as often as a long run's is over minutes


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`prefect server start` (SQLite) on a loopback port of its own."""
    home = tmp_path_factory.mktemp("prefect-home")
    settings = Settings(prefect_port=free_port())
    ensure_local_server(settings, home)
    yield local_server_url(settings), home
    os.kill(int((home / PID_FILE).read_text()), signal.SIGTERM)


@pytest.fixture(scope="session")
def served(prefect_server: tuple[str, Path], sandbox: RunningSandbox,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`reelflow serve` in a subprocess, its provider the test sandbox; yields the API URL."""
    api, home = prefect_server
    folder = tmp_path_factory.mktemp("served")
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home), "OPENAI_API_KEY": sandbox.api_key,
           "OPENAI_BASE_URL": sandbox.base_url, "REELFLOW_PROVIDER": "sandbox", "REELFLOW_SCHEDULE_CRON": CRON,
           "REELFLOW_SCHEDULE_TIMEZONE": ZONE, "REELFLOW_POLL_MIN_SECONDS": "0.1",
           "REELFLOW_UI_UPDATE_SECONDS": str(UI_UPDATE_SECONDS)}
    process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "serve"], env=env, cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            asyncio.run(wait_for_deployments(process))
            yield api
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
        assert "Traceback" not in errors, errors


async def wait_for_deployments(process: subprocess.Popen[str], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    async with get_client() as client:
        for name in DEPLOYMENTS.values():
            while True:
                try:
                    await client.read_deployment_by_name(name)
                    break
                except ObjectNotFound:
                    assert process.poll() is None, process.communicate()
                    assert time.monotonic() < deadline, f"reelflow serve never registered {name}"
                    await asyncio.sleep(0.5)

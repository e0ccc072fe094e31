"""Scale-out for real: PostgreSQL (Debian's packages), `prefect server` on it, a process work pool with two
workers, one plan fanned out into scene runs that both workers execute, the provider's rate and
unfinished-job limits held across the fleet by Prefect's global limits.

Run by `.ci/run` (`make integration`), which installs PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from reelflow import Settings
from reelflow.prefect_server import PID_FILE, ensure_local_server, local_server_url
from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import free_port
from tests.media import probe_video

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(1800)]
SCENES, RPM, MAX_JOBS = 10, 8, 3
POSTGRES_BIN = Path("/usr/lib/postgresql")


def as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: run it as Debian's `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    versions = sorted(POSTGRES_BIN.glob("*/bin/pg_ctl"))
    assert versions, "PostgreSQL is not installed (apt-get install postgresql)"
    bin_dir = versions[-1].parent
    # Not under pytest's temporary folder: that one is private to its owner, and the server runs as `postgres`.
    data = Path(tempfile.mkdtemp(prefix="reelflow-pgdata-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(as_postgres(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"),
                   check=True, capture_output=True)
    subprocess.run(as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                               f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def prefect_on_postgres(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prefect-home")
    settings = Settings(prefect_port=free_port())
    api = local_server_url(settings)
    previous = os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = postgres
    try:
        ensure_local_server(settings, home)
    finally:
        os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL")
        if previous is not None:
            os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = previous
    yield api
    os.kill(int((home / PID_FILE).read_text()), signal.SIGTERM)


@pytest.fixture(scope="module")
def limited_provider() -> Iterator[RunningSandbox]:
    """The provider: few requests a minute and few unfinished jobs, so that the fleet must share them."""
    with run_sandbox(job_seconds=3, rpm=RPM, max_concurrent=MAX_JOBS) as running:
        yield running


def start_worker(name: str, api: str, provider: RunningSandbox, folder: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "OPENAI_API_KEY": provider.api_key, "OPENAI_BASE_URL": provider.base_url, "REELFLOW_PROVIDER": "sandbox",
           "REELFLOW_SCENE_DEPLOYMENT": "render-scene/scene", "REELFLOW_REQUESTS_PER_MINUTE": str(RPM),
           "REELFLOW_MAX_CONCURRENT": str(MAX_JOBS), "REELFLOW_POLL_MIN_SECONDS": "0.2"}
    with (folder / f"{name}.log").open("w") as log:  # the worker keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "reelflow", "--name",
                                 name, "--limit", "6"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                cwd=folder, start_new_session=True)


def stop_workers(workers: list[subprocess.Popen[str]]) -> None:
    """SIGTERM to every worker's process group, then SIGKILL to any still there a minute later: a Prefect 3.9 worker
    sometimes stays in its event loop after the SIGINT it sends itself on SIGTERM (its cancellation is lost)."""
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_two_workers_share_a_plan_under_the_fleet_limits(prefect_on_postgres: str, limited_provider: RunningSandbox,
                                                         tmp_path: Path) -> None:
    api = prefect_on_postgres
    deployed = subprocess.run([sys.executable, "-m", "reelflow.cli", "deploy", "--pool", "reelflow"], text=True,
                              capture_output=True, env={**os.environ, "PREFECT_API_URL": api}, timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    workers = [start_worker(name, api, limited_provider, tmp_path) for name in ("w1", "w2")]
    plan = {"name": "fleet", "defaults": {"size": "1280x720", "seconds": 4},
            "scenes": [{"id": f"shot-{i}", "prompt": f"shot {i} of the fleet"} for i in range(SCENES)]}
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            run: FlowRun = run_deployment(  # type: ignore[assignment]
                "render-plan-form/manual", parameters={"plan": plan, "output": f"file://{tmp_path}/out"},
                timeout=1500)
    finally:
        stop_workers(workers)
    assert run.state is not None and run.state.is_completed(), run.state
    for index in range(SCENES):
        info = probe_video((tmp_path / "out" / "fleet" / f"shot-{index}" / "video.mp4").read_bytes())
        assert (info.size, info.seconds) == ((1280, 720), 4.0)
    # Both workers ran scene runs (each names the flow runs it submitted in its log).
    ran = {name: set(re.findall(r"[Ss]ubmitting flow run '([0-9a-f-]{36})'", (tmp_path / f"{name}.log").read_text()))
           for name in ("w1", "w2")}
    assert all(len(runs) >= 2 for runs in ran.values()), ran
    # The provider never had to refuse a create: the fleet kept under its rate and unfinished-job limits,
    # although ten creates exceed its burst of eight a minute.
    stats = limited_provider.stats()
    assert stats["jobs_by_kind"]["create"] == SCENES
    assert stats["limited_at_seconds"] == []

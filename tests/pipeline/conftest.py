"""Pipeline fixtures: Prefect's test harness, a sandbox the pipeline talks to, S3 on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer
from prefect.testing.utilities import prefect_test_harness

from reelflow.sandbox import RunningSandbox, run_sandbox


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def provider_sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(job_seconds=0.2) as running:
        yield running


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, provider_sandbox: RunningSandbox,
             prefect_harness: None) -> RunningSandbox:
    """The pipeline's provider for this test: the sandbox, as a user would configure a real one."""
    monkeypatch.setenv("OPENAI_API_KEY", provider_sandbox.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", provider_sandbox.base_url)
    monkeypatch.setenv("REELFLOW_PROVIDER", "sandbox")
    monkeypatch.setenv("REELFLOW_POLL_MIN_SECONDS", "0.05")
    monkeypatch.setenv("REELFLOW_RETRY_DELAYS_SECONDS", "[0.1]")
    return provider_sandbox


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_output(monkeypatch: pytest.MonkeyPatch, moto_s3: str) -> str:
    """An S3 bucket on a loopback moto server, configured the way a user configures real S3."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REELFLOW_STORAGE_OPTIONS", json.dumps({"endpoint_url": moto_s3}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)  # the tests' own reads: never the real AWS
    boto3.client("s3", endpoint_url=moto_s3).create_bucket(Bucket="reels")
    return "s3://reels/renders"

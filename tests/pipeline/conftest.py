"""Pipeline fixtures: Prefect's test harness, a sandbox the pipeline talks to, S3 on moto."""

from __future__ import annotations

import json
import uuid
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


FAST = {"REELFLOW_POLL_MIN_SECONDS": "0.05", "REELFLOW_RETRY_DELAYS_SECONDS": "[0.05]"}


def point_at(monkeypatch: pytest.MonkeyPatch, base_url: str, api_key: str, **settings: str) -> None:
    """Configure the pipeline the way a user configures a real provider, with quick retries and polls."""
    environment = {"OPENAI_API_KEY": api_key, "OPENAI_BASE_URL": base_url, "REELFLOW_PROVIDER": "sandbox",
                   **FAST, **{f"REELFLOW_{name.upper()}": value for name, value in settings.items()}}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, provider_sandbox: RunningSandbox,
             prefect_harness: None) -> RunningSandbox:
    """The pipeline's provider for this test: the session's sandbox."""
    point_at(monkeypatch, provider_sandbox.base_url, provider_sandbox.api_key)
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
    client = boto3.client("s3", endpoint_url=moto_s3)
    if "reels" not in {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="reels")
    return f"s3://reels/renders-{uuid.uuid4().hex[:8]}"  # a folder of its own: tests share the bucket

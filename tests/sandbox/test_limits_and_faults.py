"""Rate limits and injected faults, and how the real SDK's own retries meet them."""

from __future__ import annotations

import time

import openai
import pytest

from reelflow.sandbox import Faults, run_sandbox
from tests.conftest import sdk


def test_requests_per_minute_answer_429_with_the_api_headers() -> None:
    with run_sandbox(rpm=3, job_seconds=0) as running:
        client = sdk(running, max_retries=0)
        for _ in range(3):
            raw = client.videos.with_raw_response.create(prompt="p")
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as raised:
            client.videos.create(prompt="one too many")
        headers = raised.value.response.headers
        assert 0 < int(headers["retry-after-ms"]) <= 20_000
        assert raised.value.code == "rate_limit_exceeded"
        assert "Limit 3" in raised.value.message
        client.videos.list()  # polling and listing are not job-creating requests
        assert running.stats()["jobs"] == 3


def test_the_sdk_waits_out_a_concurrency_429_using_retry_after_ms() -> None:
    with run_sandbox(max_concurrent=1, job_seconds=1) as running:
        client = sdk(running, max_retries=2)
        client.videos.create(prompt="first")
        started = time.monotonic()
        client.videos.create(prompt="second")
        assert 0.7 < time.monotonic() - started < 5
        stats = running.stats()
        assert stats["requests"]["POST /v1/videos"] == 3
        assert stats["responses"]["429"] == 1 and stats["jobs"] == 2
        assert len(stats["limited_at_seconds"]) == 1 and stats["limited_at_seconds"][0] > 0


def test_the_sdk_retries_server_errors_until_one_gets_through() -> None:
    with run_sandbox(faults="5xx=0.25", seed=3, job_seconds=0) as running:
        client = sdk(running, max_retries=4)
        for index in range(5):
            client.videos.create(prompt=f"job {index}")
        stats = running.stats()
        assert stats["faults"]["5xx"] >= 1
        assert stats["requests"]["POST /v1/videos"] == 5 + stats["faults"]["5xx"]
        assert stats["jobs"] == 5


def test_faults_are_reproducible_from_the_seed() -> None:
    def fault_sequence() -> list[object]:
        with run_sandbox(faults="5xx=0.3,429=0.3", seed=42, job_seconds=0) as running:
            client = sdk(running, max_retries=0)
            outcomes: list[object] = []
            for _ in range(20):
                try:
                    client.videos.list()
                    outcomes.append("ok")
                except openai.APIStatusError as e:
                    outcomes.append(e.status_code)
            return outcomes

    first = fault_sequence()
    assert first == fault_sequence()
    assert {"ok", 500, 429} <= set(first)


def test_a_dropped_connection_is_a_connection_error_for_the_sdk() -> None:
    with run_sandbox(faults="drop=1", job_seconds=0) as running:
        with pytest.raises(openai.APIConnectionError):
            sdk(running, max_retries=0).videos.list()
        assert running.stats()["faults"] == {"drop": 1}


def test_a_truncated_download_is_shorter_than_the_real_file() -> None:
    with run_sandbox(job_seconds=0) as clean, run_sandbox(faults="truncate=1", job_seconds=0) as faulty:
        full = sdk(clean).videos.download_content(sdk(clean).videos.create(prompt="same").id).read()
        client = sdk(faulty)
        short = client.videos.download_content(client.videos.create(prompt="same").id).read()
        assert 0 < len(short) < len(full)
        assert faulty.stats()["faults"] == {"truncate": 1}  # only content answers are truncated


def test_a_slow_answer_takes_the_configured_delay() -> None:
    with run_sandbox(faults="slow=1", slow_seconds=0.5) as running:
        started = time.monotonic()
        sdk(running).videos.list()
        assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize(("spec", "message"), [
    ("5xx=0.1,oops=0.2", "KIND one of"),
    ("5xx=lots", "is not a number"),
    ("5xx=0.7,429=0.7", "more than 1"),
])
def test_bad_fault_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults.parse(spec)

"""The gateway turns every SDK failure into reelflow's own transient or permanent error, in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.states import Failed

from reelflow import (
    AuthenticationError,
    PermanentApiError,
    ProviderUnreachableError,
    Settings,
    TransientApiError,
    VideoFailedError,
)
from reelflow.providers import ClipJob, Gateway, JobState, Pacer
from reelflow.sandbox import RunningSandbox, run_sandbox
from tasks._retry import transient_only
from tasks.videos import WaitPolicy, wait_for
from tests.conftest import gateway_to

POLICY = WaitPolicy(min_seconds=0.05, max_seconds=5, timeout_seconds=30)


def through(running: RunningSandbox, scenario: Callable[[Gateway], Awaitable[Any]], key: str | None = None) -> Any:
    async def run() -> Any:
        gateway = gateway_to(running, Settings(request_retries=0, request_timeout_seconds=10), key=key)
        try:
            return await scenario(gateway)
        finally:
            await gateway.close()

    return asyncio.run(run())


def test_a_rejected_key_is_an_authentication_error_without_the_key() -> None:
    with run_sandbox(api_keys=frozenset({"sk-right"})) as running, pytest.raises(AuthenticationError) as raised:
        through(running, lambda g: g.retrieve("video_x"), key="sk-wrong-secret-value")
    assert "sk-wrong-secret-value" not in str(raised.value)
    assert not raised.value.transient


@pytest.mark.parametrize(("config", "call", "expected"), [
    ({}, lambda g: g.send(ClipJob(prompt="p", model="sora-2", size="9x9", seconds=4)), PermanentApiError),
    ({}, lambda g: g.retrieve("video_missing"), PermanentApiError),
    ({"faults": "5xx=1"}, lambda g: g.retrieve("video_x"), TransientApiError),
    ({"faults": "429=1"}, lambda g: g.retrieve("video_x"), TransientApiError),
    ({"faults": "drop=1"}, lambda g: g.retrieve("video_x"), TransientApiError),
])
def test_failures_are_classified(config: dict[str, Any], call: Callable[[Gateway], Awaitable[Any]],
                                 expected: type[Exception]) -> None:
    with run_sandbox(**config) as running, pytest.raises(expected):
        through(running, call)


def test_an_unreachable_api_is_not_waited_out_like_a_5xx() -> None:
    with run_sandbox() as running:
        address = running.base_url
    with pytest.raises(ProviderUnreachableError, match="could not connect") as raised:
        through(RunningSandbox(address, running.sandbox), lambda g: g.retrieve("video_x"))
    assert not raised.value.transient


def test_waiting_is_paced_by_progress() -> None:
    with run_sandbox(job_seconds=2) as running:
        async def scenario(gateway: Gateway) -> Any:
            job = await gateway.send(ClipJob(prompt="p", model="sora-2", size="1280x720", seconds=4))
            return await wait_for(gateway, job, POLICY)

        done = through(running, scenario)
        polls = running.stats()["requests"]["GET /v1/videos/{id}"]
    assert done.status == "completed"
    assert 2 <= polls <= 8  # progress-paced: ~40 at the 50 ms minimum, ~10 at the 200 ms hint


def test_a_failed_generation_is_permanent_with_its_reason(sandbox: RunningSandbox) -> None:
    async def scenario(gateway: Gateway) -> Any:
        job = await gateway.send(ClipJob(prompt="[blocked] scene", model="sora-2", size="1280x720", seconds=4))
        return await wait_for(gateway, job, POLICY)

    with pytest.raises(VideoFailedError, match="moderation_blocked"):
        through(sandbox, scenario)


def test_downloads_stream_to_disk_with_their_hash(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async def scenario(gateway: Gateway) -> Any:
        job = await gateway.send(ClipJob(prompt="p", model="sora-2", size="1280x720", seconds=4))
        await wait_for(gateway, job, POLICY)
        return await gateway.download(job, "video", tmp_path / "v.mp4")

    got = through(sandbox, scenario)
    import hashlib

    data = (tmp_path / "v.mp4").read_bytes()
    assert (got.bytes, got.sha256, got.declared_bytes) == (len(data), hashlib.sha256(data).hexdigest(), len(data))


def test_the_pacer_allows_the_burst_then_the_steady_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock of the test's own (a busy machine's scheduling is no part of the pacer's rate)."""
    clock = [0.0]
    pause = asyncio.sleep

    async def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 1e-6)  # (as a real clock does, it moves on, if only by a tick)
        await pause(0)

    monkeypatch.setattr("reelflow._bucket.time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr("reelflow.providers._gateway.asyncio", SimpleNamespace(sleep=sleep, Lock=asyncio.Lock))

    async def scenario() -> tuple[float, float]:
        pacer = Pacer(per_minute=600)  # a burst of 599 (one of headroom), then one every 0.1 s
        start = clock[0]
        await asyncio.gather(*(pacer.wait() for _ in range(599)))
        burst = clock[0] - start
        await asyncio.gather(*(pacer.wait() for _ in range(5)))
        return burst, clock[0] - start - burst

    burst, steady = asyncio.run(scenario())
    assert burst == 0 and steady == pytest.approx(0.5)


@pytest.mark.parametrize(("error", "retried"), [
    (TransientApiError("503"), True),
    (TimeoutError(), True),
    (PermanentApiError("400"), False),
    (VideoFailedError("moderation_blocked"), False),
    (AuthenticationError("401"), False),
    (ProviderUnreachableError("could not connect"), False),
    (ValueError("a bug"), False),
])
def test_tasks_retry_only_transient_failures(error: Exception, retried: bool) -> None:
    assert transient_only(None, None, Failed(data=error)) is retried  # type: ignore[arg-type]


def test_a_create_refused_for_concurrency_waits_out_retry_after() -> None:
    with run_sandbox(max_concurrent=1, job_seconds=1) as running:
        async def scenario(gateway: Gateway) -> float:
            gateway.create_retries = 3
            await gateway.send(ClipJob(prompt="first", model="sora-2", size="1280x720", seconds=4))
            loop = asyncio.get_running_loop()
            started = loop.time()
            await gateway.send(ClipJob(prompt="second", model="sora-2", size="1280x720", seconds=4))
            return loop.time() - started

        waited = through(running, scenario)
        stats = running.stats()
    assert 0.7 < waited < 5
    assert stats["jobs"] == 2 and stats["responses"]["429"] >= 1


def test_a_create_whose_answer_was_lost_is_not_repeated_by_the_sdk() -> None:
    with run_sandbox(faults="lost=1", job_seconds=0) as running:
        with pytest.raises(TransientApiError):
            once = ClipJob(prompt="once", model="sora-2", size="1280x720", seconds=4)
            through(running, lambda g: g.send(once))
        stats = running.stats()
    assert stats["requests"]["POST /v1/videos"] == 1 and stats["jobs"] == 1


def test_a_lost_job_is_found_again_by_its_fields(sandbox: RunningSandbox) -> None:
    import time

    async def scenario(gateway: Gateway) -> Any:
        since = time.time()
        created = await gateway.send(ClipJob(prompt="find me later", model="sora-2", size="720x1280", seconds=8))
        found = await gateway.find_job(ClipJob(prompt="find me later", model="sora-2", size="720x1280", seconds=8),
                                       since)
        missing = await gateway.find_job(ClipJob(prompt="find me later", model="sora-2", size="1280x720",
                                                 seconds=8), since)
        return created, found, missing

    created, found, missing = through(sandbox, scenario)
    assert found is not None and found.id == created.id
    assert missing is None


@pytest.mark.parametrize(("progress", "hint", "elapsed", "expected"), [
    (0, 2.5, 1.0, 2.5),  # no progress yet: the provider's hint
    (0, None, 1.0, 0.05),  # neither: the backoff (here its first step)
    (10, 6.0, 6.0, 30.0),  # 10 % in 6 s: about 54 s left, capped at the longest wait
    (50, 6.0, 20.0, 16.0),  # 50 % in 20 s: 20 s left, wake a little early
    (95, 6.0, 57.0, 3.0 * 0.8),  # near the end: just before it should finish
    (99, 6.0, 59.4, 0.6 + 0.25),  # about to finish: just after
])
def test_the_next_status_check_is_timed_by_progress(progress: int, hint: float | None, elapsed: float,
                                                      expected: float, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.videos import Progress

    monkeypatch.setattr("tasks.videos.time.monotonic", lambda: 1000.0 + elapsed)
    pause = Progress(since=1000.0, start=0).next_pause(
        JobState(id="video_1", status="running", progress=progress, poll_after=hint), 0.05,
        WaitPolicy(min_seconds=0.05, max_seconds=30, timeout_seconds=600))
    assert pause == pytest.approx(expected, rel=0.01)

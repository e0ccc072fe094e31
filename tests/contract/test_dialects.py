"""The same contract for every built-in dialect, each against the sandbox posing as its provider, through
reelflow's gateway (as fsspec runs one set of tests across its filesystems): a clip is made, polled, downloaded
and is what was asked for; a refused prompt ends as a failure that is final, a failure the provider calls
passing ends as one that may pass; a wrong key is one AuthenticationError; a create is sent once; a create
whose answer was lost is told apart from one that never reached the provider (which stops the run); the key
check `reelflow doctor` makes answers as the provider does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

from reelflow import AuthenticationError, NoAnswerError, ProviderUnreachableError, VideoFailedError, load_profile
from reelflow.providers import ClipJob, Gateway, JobState
from reelflow.sandbox import RunningSandbox, run_sandbox
from tasks.videos import WaitPolicy, wait_for
from tests.conftest import free_port, gateway_to
from tests.media import probe_video, sound_of

T = TypeVar("T")
DIALECTS = ["sandbox", "openrouter", "google-vertex", "fal"]  # one profile of each built-in dialect
QUICK = WaitPolicy(0.05, 0.5, 30)
# OpenRouter's `failed` status carries no verdict: a server-side failure reads as a refusal there, so final.
SAYS_WHETHER_IT_MAY_PASS = {"openrouter": False}


@pytest.fixture(scope="module", params=DIALECTS)
def pose(request: pytest.FixtureRequest) -> Iterator[RunningSandbox]:
    with run_sandbox(profile=request.param, job_seconds=0.2) as running:
        yield running


def clip(profile_name: str, prompt: str) -> ClipJob:
    profile = load_profile(profile_name)
    return ClipJob(prompt=prompt, model=profile.default_model, size=profile.default_size,
                   seconds=profile.default_seconds)


def through_gateway(pose: RunningSandbox, use: Callable[[Gateway], Awaitable[T]], key: str | None = None) -> T:
    async def scenario() -> T:
        gateway = gateway_to(pose, key=key, profile=pose.sandbox.profile.name)
        try:
            return await use(gateway)
        finally:
            await gateway.close()

    return asyncio.run(scenario())


def test_a_clip_is_made_polled_and_downloaded_as_asked(pose: RunningSandbox, tmp_path: Path) -> None:
    name = pose.sandbox.profile.name
    job = clip(name, "a lighthouse at dusk")

    async def made(gateway: Gateway) -> tuple[JobState, int]:
        created = await gateway.send(job)
        finished = await wait_for(gateway, created, QUICK)
        downloaded = await gateway.download(finished, "video", tmp_path / "video.mp4")
        return finished, downloaded.bytes

    finished, size = through_gateway(pose, made)
    data = (tmp_path / "video.mp4").read_bytes()
    assert finished.status == "completed" and size == len(data)
    info = probe_video(data)
    assert ("{}x{}".format(*info.size), round(info.seconds)) == (job.size, job.seconds)
    assert sound_of(data) is not None
    assert pose.stats()["jobs"] == 1  # sent once


@pytest.mark.parametrize(("marker", "passing"), [("[blocked]", False), ("[fails-once]", True)])
def test_a_failed_job_says_whether_its_cause_may_pass(pose: RunningSandbox, marker: str, passing: bool) -> None:
    job = clip(pose.sandbox.profile.name, f"a harbour {marker} {pose.sandbox.profile.name}")

    async def failed(gateway: Gateway) -> VideoFailedError:
        with pytest.raises(VideoFailedError) as raised:
            await wait_for(gateway, await gateway.send(job), QUICK)
        return raised.value

    error = through_gateway(pose, failed)
    assert error.cause_may_pass is (passing and SAYS_WHETHER_IT_MAY_PASS.get(pose.sandbox.profile.name, True)), error


def test_a_wrong_key_is_one_authentication_error(pose: RunningSandbox) -> None:
    name = pose.sandbox.profile.name
    with run_sandbox(profile=name, api_keys=frozenset({"the-right-key"})) as strict:
        with pytest.raises(AuthenticationError):
            through_gateway(strict, lambda gateway: gateway.send(clip(name, "x")), key="a-wrong-key")
        assert strict.stats()["jobs"] == 0


def test_a_create_whose_answer_was_lost_may_have_been_made_one_never_sent_was_not(pose: RunningSandbox) -> None:
    name = pose.sandbox.profile.name
    with run_sandbox(profile=name, job_seconds=0.2, faults="lost=1") as losing:
        with pytest.raises(NoAnswerError):
            through_gateway(losing, lambda gateway: gateway.send(clip(name, "x")))
        assert losing.stats()["jobs"] == 1  # made, its answer lost: and not sent again by the SDK
    nobody = urlsplit(pose.base_url)._replace(netloc=f"127.0.0.1:{free_port()}").geturl()  # a port no one serves
    closed = RunningSandbox(base_url=nobody, sandbox=pose.sandbox)
    with pytest.raises(ProviderUnreachableError):  # nothing was sent: the run stops rather than waiting it out
        through_gateway(closed, lambda gateway: gateway.send(clip(name, "x")))


def test_the_key_check_says_which_models_are_offered_and_refuses_a_wrong_key(pose: RunningSandbox) -> None:
    """`reelflow doctor`'s call: the key accepted, the profile's default model offered (where the provider lists
    models), a wrong key refused, nothing created."""
    name = pose.sandbox.profile.name
    default = load_profile(name).default_model
    offered = through_gateway(pose, lambda gateway: gateway.check_access([default, "no-such-model"]))
    assert offered == (None if name == "fal" else {default})  # fal's queue lists no models
    with run_sandbox(profile=name, api_keys=frozenset({"the-right-key"})) as strict:
        with pytest.raises(AuthenticationError):
            through_gateway(strict, lambda gateway: gateway.check_access([default]), key="a-wrong-key")
        assert strict.stats()["jobs"] == 0
    nobody = urlsplit(pose.base_url)._replace(netloc=f"127.0.0.1:{free_port()}").geturl()
    with pytest.raises(ProviderUnreachableError):
        through_gateway(RunningSandbox(base_url=nobody, sandbox=pose.sandbox),
                        lambda gateway: gateway.check_access([default]))

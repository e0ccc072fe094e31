"""The dialect contract, importable as fsspec's abstract tests are: subclass `DialectContract` (and `FaultMatrix`)
in a test module and give the subclass a `profile_name` fixture, naming a profile (built in, or of the user's
profiles file) whose dialect the sandbox can pose as (its registry entry names a pose). The contract then runs
against the sandbox posing as that provider, through the dialect's own client and reelflow's gateway.

`DialectContract`: a clip is made, polled, downloaded and is what was asked for; a refused prompt ends as a
failure that is final, a failure the provider calls passing ends as one that may pass (where the provider says);
a wrong key is one AuthenticationError and makes nothing; a create is sent once; a create whose answer was lost
is told apart from one that never reached the provider; the key check of `reelflow doctor` answers as the provider
does. `FaultMatrix` (needs Prefect: a test harness or a server, as the suite's conftest gives): `reelflow run`
under each of `CASES`."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from ..errors import AuthenticationError, NoAnswerError, ProviderUnreachableError, VideoFailedError
from ..media.video import probe
from ..profiles import load_profile
from ..providers import ClipJob, Connection, Gateway, JobState, open_gateway
from ..sandbox import RunningSandbox, run_sandbox
from ..settings import Settings
from ..storage import Storage
from ._matrix import CASES, FaultCase, ledgered, sha256
from ._wire import wire_faults

T = TypeVar("T")
FAST = {"REELFLOW_POLL_MIN_SECONDS": "0.05", "REELFLOW_RETRY_DELAYS_SECONDS": "[0.05]"}


def clip(profile_name: str, prompt: str) -> ClipJob:
    """A clip of the profile's default model, size and length."""
    profile = load_profile(profile_name, Settings().providers_file)
    return ClipJob(prompt=prompt, model=profile.default_model, size=profile.default_size,
                   seconds=profile.default_seconds)


def through_gateway(pose: RunningSandbox, use: Callable[[Gateway], Awaitable[T]], key: str | None = None) -> T:
    """`use` run against `pose` through reelflow's gateway, in the dialect of the profile it poses as."""
    async def scenario() -> T:
        connection = Connection(pose.base_url, SecretStr(key or pose.api_key), pose.sandbox.profile, False)
        gateway = open_gateway(connection, Settings())
        try:
            return await use(gateway)
        finally:
            await gateway.close()

    return asyncio.run(scenario())


def nobody_at(pose: RunningSandbox) -> RunningSandbox:
    """The pose's address with a port no one serves: a provider that cannot be reached."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return RunningSandbox(base_url=urlsplit(pose.base_url)._replace(netloc=f"127.0.0.1:{port}").geturl(),
                          sandbox=pose.sandbox)


class DialectContract:
    """What every dialect does, against the sandbox posing as its provider (see the module's docstring)."""

    wait = (0.05, 0.5, 30.0)  # the polls' shortest and longest pause, and how long a job may take (seconds)
    tells_passing_failures = True  # whether the provider's failed status says if the cause may pass

    @pytest.fixture
    def pose(self, profile_name: str) -> Iterator[RunningSandbox]:
        with run_sandbox(profile=profile_name, job_seconds=0.2, providers_file=Settings().providers_file) as running:
            yield running

    def _waited(self, gateway: Gateway, job: JobState) -> Awaitable[JobState]:
        from tasks.videos import WaitPolicy, wait_for

        return wait_for(gateway, job, WaitPolicy(*self.wait))

    def test_a_clip_is_made_polled_and_downloaded_as_asked(self, pose: RunningSandbox, tmp_path: Path) -> None:
        job = clip(pose.sandbox.profile.name, "a lighthouse at dusk")
        made_before = pose.stats()["jobs"]

        async def made(gateway: Gateway) -> tuple[JobState, int]:
            finished = await self._waited(gateway, await gateway.send(job))
            downloaded = await gateway.download(finished, "video", tmp_path / "video.mp4")
            return finished, downloaded.bytes

        finished, size = through_gateway(pose, made)
        data = (tmp_path / "video.mp4").read_bytes()
        info = probe(data, read_all=True)
        assert finished.status == "completed" and size == len(data) and info is not None
        assert ("{}x{}".format(*info.size), round(info.seconds)) == (job.size, job.seconds)
        limits = pose.sandbox.profile.model_limits(job.model)
        assert info.audio is bool(limits and limits.audio)  # sound, where the model makes it
        assert pose.stats()["jobs"] == made_before + 1  # sent once

    @pytest.mark.parametrize(("marker", "passing"), [("[blocked]", False), ("[fails-once]", True)])
    def test_a_failed_job_says_whether_its_cause_may_pass(self, pose: RunningSandbox, marker: str,
                                                          passing: bool) -> None:
        job = clip(pose.sandbox.profile.name, f"a harbour {marker}")

        async def failed(gateway: Gateway) -> VideoFailedError:
            with pytest.raises(VideoFailedError) as raised:
                await self._waited(gateway, await gateway.send(job))
            return raised.value

        error = through_gateway(pose, failed)
        assert error.cause_may_pass is (passing and self.tells_passing_failures), error

    def test_a_wrong_key_is_one_authentication_error_and_makes_nothing(self, pose: RunningSandbox) -> None:
        name = pose.sandbox.profile.name
        with run_sandbox(profile=name, api_keys=frozenset({"the-right-key"}),
                         providers_file=Settings().providers_file) as strict:
            with pytest.raises(AuthenticationError):
                through_gateway(strict, lambda gateway: gateway.send(clip(name, "x")), key="a-wrong-key")
            assert strict.stats()["jobs"] == 0

    def test_a_create_whose_answer_was_lost_may_have_been_made_one_never_sent_was_not(
            self, pose: RunningSandbox) -> None:
        name = pose.sandbox.profile.name
        with run_sandbox(profile=name, job_seconds=0.2, faults="lost=1",
                         providers_file=Settings().providers_file) as losing:
            with pytest.raises(NoAnswerError):
                through_gateway(losing, lambda gateway: gateway.send(clip(name, "x")))
            assert losing.stats()["jobs"] == 1  # made, its answer lost: and not sent again by the SDK
        with pytest.raises(ProviderUnreachableError):  # nothing was sent: the run stops rather than waiting it out
            through_gateway(nobody_at(pose), lambda gateway: gateway.send(clip(name, "x")))

    def test_the_key_check_says_which_models_are_offered_and_refuses_a_wrong_key(self, pose: RunningSandbox) -> None:
        """`reelflow doctor`'s call: the key accepted, the profile's default model offered (where the provider
        lists models), a wrong key refused, nothing created."""
        name = pose.sandbox.profile.name
        default = pose.sandbox.profile.default_model
        offered = through_gateway(pose, lambda gateway: gateway.check_access([default, "no-such-model"]))
        assert offered is None or offered == {default}  # (None: the provider lists no models)
        with run_sandbox(profile=name, api_keys=frozenset({"the-right-key"}),
                         providers_file=Settings().providers_file) as strict:
            with pytest.raises(AuthenticationError):
                through_gateway(strict, lambda gateway: gateway.check_access([default]), key="a-wrong-key")
            assert strict.stats()["jobs"] == 0
        with pytest.raises(ProviderUnreachableError):
            through_gateway(nobody_at(pose), lambda gateway: gateway.check_access([default]))


class FaultMatrix:
    """`reelflow run` of a one-scene plan through the dialect while the wire between reelflow and the sandbox
    posing as its provider fails once, in one of the ways of `CASES`. Under every case: the provider made no more
    jobs than were delivered or left "unknown, may be paid"; the delivered video is the one made for the scene's
    request; the exit code says whether the scene was rendered; one line for the user, no traceback.

    With `fallback` (a second profile), the plan has two routes, the dialect's first: no fault of the wire is a
    reason to move the scene, so nothing is made on the second, and each provider is reached by its own
    variables (as a user with both sets them)."""

    fallback: ClassVar[str | None] = None

    @pytest.fixture
    def pose(self, profile_name: str) -> Iterator[RunningSandbox]:
        with run_sandbox(profile=profile_name, job_seconds=0.2, providers_file=Settings().providers_file) as running:
            yield running

    @pytest.fixture
    def second_pose(self) -> Iterator[RunningSandbox | None]:
        if self.fallback is None:
            yield None
            return
        with run_sandbox(profile=self.fallback, job_seconds=0.2, providers_file=Settings().providers_file) as running:
            yield running

    @pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
    def test_no_fault_on_the_wire_pays_twice_or_delivers_another_video(
            self, case: FaultCase, pose: RunningSandbox, second_pose: RunningSandbox | None, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        from typer.testing import CliRunner

        from ..cli import app

        faults = case.faults(pose.sandbox.pose.fault_routes)
        if faults is None:
            pytest.skip(f"{pose.sandbox.profile.api} has no such request")
        prompt = f"a lighthouse in a storm ({case.name})"
        plan = tmp_path / "matrix.json"
        routes = {"providers": [pose.sandbox.profile.name, second_pose.sandbox.profile.name]} if second_pose else {}
        plan.write_text(json.dumps({"name": "matrix", "scenes": [{"id": "shot", "prompt": prompt}], **routes}))
        output = f"memory://matrix-{abs(hash(case.name))}"
        with wire_faults(pose.base_url, *faults) as wire:
            settings = {**_reached(pose, wire.base_url, alone=second_pose is None), **FAST,
                        "REELFLOW_TASK_RETRIES": "4"}
            if second_pose is not None:
                settings.update(_reached(second_pose, second_pose.base_url, alone=False))
            if case.request_timeout is not None:
                settings["REELFLOW_REQUEST_TIMEOUT_SECONDS"] = str(case.request_timeout)
            for name, value in settings.items():
                monkeypatch.setenv(name, value)
            done = CliRunner().invoke(app, ["run", str(plan), "--output", output])
            fired = wire.fired()
        assert fired, f"the fault never fired: {[f.describe() for f in wire.faults]}"

        folder = Storage(output).child("matrix")
        left = ledgered(folder.read_bytes, folder.exists, {"shot": 1})
        made = [job for job in pose.sandbox.state.jobs.values() if job.prompt == prompt]
        assert len(made) <= left.delivered_steps + left.unknown_steps, (made, left, done.output)
        if second_pose is not None:
            assert not second_pose.sandbox.state.jobs, done.output
        videos = {sha256(pose.sandbox.state.get(f"media/{job.id}/video.mp4")) for job in made
                  if pose.sandbox.state.has(f"media/{job.id}/video.mp4")}
        assert all(video in videos for video in left.delivered.values()), (left, done.output)
        delivers = case.outcome == "delivered" or pose.sandbox.profile.list_jobs
        assert (done.exit_code, bool(left.delivered)) == ((0, True) if delivers else (1, False)), done.output
        assert "Traceback" not in done.output, done.output
        if not delivers:
            failed = [line for line in done.output.splitlines() if line.startswith("scene 'shot' failed")]
            assert len(failed) == 1 and "may have been made" in failed[0], done.output


def _reached(pose: RunningSandbox, base_url: str, alone: bool) -> dict[str, str]:
    """The variables that point a run at `pose` at `base_url`: reelflow's own for a plan with one provider, else
    the provider's (its profile's key and base URL variables)."""
    profile = pose.sandbox.profile
    if alone:
        return {"REELFLOW_PROVIDER": profile.name, "REELFLOW_API_KEY": pose.api_key, "REELFLOW_BASE_URL": base_url}
    key, url = profile.credentials.api_key, profile.credentials.base_url
    if key is None or url is None:
        raise ValueError(f"profile {profile.name!r} names no key or base URL variable: it cannot be a route here")
    return {key: pose.api_key, url: base_url}

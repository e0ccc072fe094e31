"""Video-job tasks: generate (create or extend, then wait) and download, all through the gateway."""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run as current_task_run

from reelflow import Settings
from reelflow._errors import TransientApiError, VideoFailedError
from reelflow._gateway import Gateway, JobState, Reference, Request, Variant
from reelflow._plan import ResolvedScene
from reelflow._progress import Watch
from reelflow._results import FileRecord
from reelflow._storage import Storage
from reelflow._video import probe

from ._retry import DEFAULT_RETRIES, transient_only
from .fleet import Fleet, job_slot, turn_to_create

FILENAMES: dict[Variant, str] = {"video": "video.mp4", "thumbnail": "thumbnail.webp",
                                 "spritesheet": "spritesheet.jpg"}


@dataclass(frozen=True)
class WaitPolicy:
    """Bounds of the waits between status checks, and how long a job may take at most."""

    min_seconds: float
    max_seconds: float
    timeout_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> WaitPolicy:
        return cls(settings.poll_min_seconds, settings.poll_max_seconds, settings.job_timeout_seconds)


@dataclass(frozen=True)
class Attempt:
    """What the job looks like to the provider (prompt, size, seconds), when its create was first tried,
    whether that create's answer may have been lost (a crash, a retry), and whether a lost job could be
    told apart from the plan's other jobs (an identical request elsewhere in the plan makes adoption a
    guess: then paying twice is the lesser harm)."""

    looks_like: tuple[str, str, int]
    since: float
    answer_may_be_lost: bool
    adoptable: bool = True
    known_ids: frozenset[str] = frozenset()


async def _adopted(gateway: Gateway, attempt: Attempt) -> JobState | None:
    if not attempt.adoptable or not (attempt.answer_may_be_lost or current_task_run.run_count > 1):
        return None
    prompt, size, seconds = attempt.looks_like
    job = await gateway.find_job(prompt=prompt, size=size, seconds=seconds, since=attempt.since,
                                 exclude=attempt.known_ids)
    if job is not None:
        get_run_logger().warning("adopted %s, created earlier but never recorded", job.id)
    return job


@task(name="generate", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def generate(gateway: Gateway, request: Request | None, recorded_id: Callable[[], str | None],
                   created: Callable[[JobState], None], attempt: Attempt, policy: WaitPolicy,
                   watch: Watch | None = None, fleet: Fleet | None = None) -> JobState:
    """One paid job, start to finish: create it (unless the ledger has it already, or an earlier create
    whose answer was lost can be adopted), hand it to `created` to record before any waiting, then wait
    until it finishes. A failed job raises (transient or permanent, by its error code); a retry after a
    transient error waits for the recorded job rather than creating another. With a `fleet`, the job
    holds one of its slots from create to finish, and the create waits for its turn."""
    async with job_slot(fleet):
        known = recorded_id()
        if known is None:
            if request is None:
                raise ValueError("nothing recorded and nothing to send")
            job = await _adopted(gateway, attempt)
            if job is None:
                await turn_to_create(fleet)
                job = await gateway.send(request)
            get_run_logger().info("created %s (%s)", job.id, request.endpoint)
            created(job)
        else:
            job = JobState(id=known, status="queued")
        return await wait_for(gateway, job, policy, watch)


@task(name="create-character", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def create_character(gateway: Gateway, name: str, clip: Reference) -> str:
    """Create one of the plan's characters from its clip; returns the provider's id."""
    character_id = await gateway.create_character(name, clip)
    get_run_logger().info("character %r: created %s", name, character_id)
    return character_id


async def wait_for(gateway: Gateway, job: JobState, policy: WaitPolicy, watch: Watch | None = None) -> JobState:
    progress = Progress(time.monotonic(), job.progress)
    deadline = progress.since + policy.timeout_seconds
    backoff = policy.min_seconds
    while not job.finished:
        if watch is not None:
            watch.saw(job.status, job.progress)
        if time.monotonic() > deadline:
            raise TransientApiError(f"{job.id} did not finish within {policy.timeout_seconds:.0f} s")
        await asyncio.sleep(progress.next_pause(job, backoff, policy))
        backoff = min(backoff * 1.5, policy.max_seconds)
        job = await gateway.retrieve(job.id)
    if job.status != "completed":
        reason = f"{job.id} {job.status}: {job.error_code or 'no code'}: {job.error_message or 'no message'}"
        raise VideoFailedError(reason, code=job.error_code, cause_may_pass=job.failure_is_transient)
    return job


@dataclass(frozen=True)
class Progress:
    """Where a job's progress stood when waiting began, to estimate when it will finish."""

    since: float
    start: int

    def next_pause(self, job: JobState, backoff: float, policy: WaitPolicy) -> float:
        """Sleep until shortly before the job should finish, judged by its progress rate so far; without
        progress, the provider's poll hint; without a hint, an exponential backoff."""
        elapsed = time.monotonic() - self.since
        if job.progress > self.start and elapsed > 0:
            remaining = elapsed * (100 - job.progress) / (job.progress - self.start)
            pause = remaining * 0.8 if remaining > 2 else remaining + 0.25
        else:
            pause = job.poll_after if job.poll_after is not None else backoff
        return min(max(pause, policy.min_seconds), policy.max_seconds)


class Fetched:
    """The files one download has in place so far: a retry fetches only the others."""

    def __init__(self) -> None:
        self.records: dict[str, FileRecord] = {}


@task(name="download", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def download(gateway: Gateway, video: JobState, variants: list[Variant], scene: ResolvedScene,
                   storage: Storage, fetched: Fetched | None = None) -> dict[str, FileRecord]:
    """Every content variant of the finished video, fetched side by side, verified and moved into place."""
    fetched = fetched or Fetched()
    missing = [variant for variant in variants if FILENAMES[variant] not in fetched.records]
    outcomes = await asyncio.gather(*(_fetch(gateway, video, v, scene, storage) for v in missing),
                                    return_exceptions=True)
    fetched.records.update({FILENAMES[variant]: outcome for variant, outcome in zip(missing, outcomes, strict=True)
                            if not isinstance(outcome, BaseException)})
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]
    return dict(fetched.records)


async def _fetch(gateway: Gateway, video: JobState, variant: Variant, scene: ResolvedScene,
                 storage: Storage) -> FileRecord:
    """Stream one variant to a local file, verify it, and move it into place."""
    filename = FILENAMES[variant]
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir:
        local = Path(workdir) / filename
        got = await gateway.download(video.id, variant, local)
        if got.declared_bytes is not None and got.declared_bytes != got.bytes:
            raise TransientApiError(f"{filename} of {video.id}: got {got.bytes} of {got.declared_bytes} bytes")
        await asyncio.to_thread(_verify, local, variant, scene)
        await asyncio.to_thread(storage.publish, local, scene.id, filename)
    return FileRecord(url=storage.location(scene.id, filename), bytes=got.bytes, sha256=got.sha256)


def _verify(local: Path, variant: Variant, scene: ResolvedScene) -> None:
    """Decode what arrived: a truncated or corrupt body is a transient failure, so it is fetched again."""
    if variant == "video":
        info = probe(local, decode_all=True)
        if info is None or info.size != scene.dimensions or abs(info.seconds - scene.total_seconds) > 0.5:
            found = "undecodable" if info is None else f"{info.size[0]}x{info.size[1]}, {info.seconds:.2f} s"
            raise TransientApiError(f"scene {scene.id!r}: downloaded video is {found}; expected "
                                    f"{scene.size}, {scene.total_seconds} s")
        return
    try:
        with Image.open(io.BytesIO(local.read_bytes())) as image:
            image.load()
    except (OSError, SyntaxError) as e:
        raise TransientApiError(f"scene {scene.id!r}: downloaded {variant} does not decode: {e}") from e

"""Video-job tasks: submit, wait, extend and download, all through the gateway."""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run as current_task_run

from reelflow import Settings
from reelflow._errors import TransientApiError, VideoFailedError
from reelflow._gateway import Gateway, JobState, Reference, Variant, create_request, extension_request
from reelflow._plan import ResolvedExtension, ResolvedScene
from reelflow._progress import Watch
from reelflow._results import FileRecord
from reelflow._storage import Storage
from reelflow._video import probe

from ._retry import DEFAULT_RETRIES, transient_only

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
    """When a create was first tried, whether its answer may have been lost (a crash, a retry), and
    whether a lost job could be told apart from the plan's other jobs (an identical request elsewhere
    in the plan makes adoption a guess: then paying twice is the lesser harm)."""

    since: float
    answer_may_be_lost: bool
    adoptable: bool = True
    known_ids: frozenset[str] = frozenset()


async def _adopted(gateway: Gateway, attempt: Attempt, prompt: str, size: str, seconds: int) -> JobState | None:
    if not attempt.adoptable or not (attempt.answer_may_be_lost or current_task_run.run_count > 1):
        return None
    job = await gateway.find_job(prompt=prompt, size=size, seconds=seconds, since=attempt.since,
                                 exclude=attempt.known_ids)
    if job is not None:
        get_run_logger().warning("adopted %s, created earlier but never recorded", job.id)
    return job


@task(name="submit", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def submit(gateway: Gateway, scene: ResolvedScene, reference: Reference | None, attempt: Attempt) -> JobState:
    """Create the scene's video job, unless an earlier attempt already did and only its answer was lost."""
    adopted = await _adopted(gateway, attempt, scene.prompt, scene.size, scene.seconds)
    if adopted is not None:
        return adopted
    job = await gateway.send(create_request(prompt=scene.prompt, model=scene.model, size=scene.size,
                                            seconds=scene.seconds, reference=reference))
    get_run_logger().info("scene %r: created %s", scene.id, job.id)
    return job


@task(name="await-video", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def await_video(gateway: Gateway, job: JobState, policy: WaitPolicy, watch: Watch | None = None) -> JobState:
    """Wait until the job finishes; a failed job raises (transient or permanent, by its error code)."""
    return await wait_for(gateway, job, policy, watch)


@task(name="extend", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def extend(gateway: Gateway, video: JobState, extension: ResolvedExtension, size: str, stitched_seconds: int,
                 attempt: Attempt) -> JobState:
    """Chain one extension onto a completed video; its result is the stitched video so far."""
    adopted = await _adopted(gateway, attempt, extension.prompt, size, stitched_seconds)
    if adopted is not None:
        return adopted
    job = await gateway.send(extension_request(video_id=video.id, prompt=extension.prompt, seconds=extension.seconds))
    get_run_logger().info("extending %s as %s", video.id, job.id)
    return job


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


@task(name="download", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def download(gateway: Gateway, video: JobState, variant: Variant, scene: ResolvedScene,
                   storage: Storage) -> FileRecord:
    """Stream one content variant to a local file, verify it, and move it into place."""
    filename = FILENAMES[variant]
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir:
        local = Path(workdir) / filename
        got = await gateway.download(video.id, variant, local)
        if got.declared_bytes is not None and got.declared_bytes != got.bytes:
            raise TransientApiError(f"{filename} of {video.id}: got {got.bytes} of {got.declared_bytes} bytes")
        await asyncio.to_thread(_verify, local, variant, scene)
        storage.publish(local, scene.id, filename)
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

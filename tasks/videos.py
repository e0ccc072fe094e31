"""Video-job tasks: generate (create or extend, wait, then fetch what the job leaves here) and download, all
through the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.runtime import task_run as current_task_run

from reelflow import Settings
from reelflow.errors import (
    ApiError,
    AssetsExpiredError,
    DeliveryError,
    NoAnswerError,
    PermanentApiError,
    ProviderUnusableError,
    TransientApiError,
    UnknownJobError,
    VideoFailedError,
)
from reelflow.media.checks import Expectation, TakeCheck, Thresholds, check_take
from reelflow.media.sound import loudness_of
from reelflow.media.video import VideoInfo, probe, sprite_tiles, spritesheet_jpeg, thumbnail_webp
from reelflow.progress import Watch, report
from reelflow.providers import Downloaded, Gateway, JobSpec, JobState, Reference, Variant, action_of
from reelflow.report import THUMBNAIL_WIDTH, remember_card
from reelflow.results import FileRecord
from reelflow.storage import Storage
from reelflow.webhooks import Inbox

from ._retry import DEFAULT_RETRIES, quiet_when_done, transient_only
from .fleet import Fleet, job_slot, turn_to_create

FILENAMES: dict[Variant, str] = {"video": "video.mp4", "thumbnail": "thumbnail.webp",
                                 "spritesheet": "spritesheet.jpg"}
VIDEO = FILENAMES["video"]
PICTURES: tuple[Variant, ...] = ("thumbnail", "spritesheet")  # served by some providers, else made here
_OUTSIDE_A_RUN = logging.getLogger("reelflow.tasks")


@dataclass(frozen=True)
class WaitPolicy:
    """Bounds of the waits between status checks, and how long a job may take at most. With a webhook
    `inbox`, the provider is asked only when the job's event has arrived, or every `fallback_seconds`."""

    min_seconds: float
    max_seconds: float
    timeout_seconds: float
    inbox: Inbox | None = None
    fallback_seconds: float = 300

    @classmethod
    def of(cls, settings: Settings) -> WaitPolicy:
        inbox = (Inbox(Storage(settings.webhook_inbox, settings.storage_options))
                 if settings.webhook_secret is not None else None)
        return cls(settings.poll_min_seconds, settings.poll_max_seconds, settings.job_timeout_seconds, inbox,
                   settings.webhook_fallback_seconds)


@dataclass(frozen=True)
class Attempt:
    """When the job's create was first tried, whether that create's answer may have been lost (a crash, a
    retry), and whether a lost job could be told apart from the plan's other jobs (an identical request
    elsewhere in the plan makes adoption a guess: then paying twice is the lesser harm). `known_ids`: the jobs
    the run knows to be others' (the run's own set, read when a lost job is looked for: not copied for each
    job of a long plan)."""

    since: float
    answer_may_be_lost: bool
    adoptable: bool = True
    known_ids: AbstractSet[str] = frozenset()


async def _adopted(gateway: Gateway, job: JobSpec, attempt: Attempt) -> JobState | None:
    """A job created by an earlier try whose answer was lost, found in the provider's recent jobs. On a
    provider that lists no jobs, the create of a run that stopped while sending it is left unknown (a retry
    here follows an answered failure: nothing was made)."""
    if not gateway.profile.list_jobs:
        if attempt.answer_may_be_lost:
            raise UnknownJobError(_unknowable(gateway, "an earlier run stopped while sending its create"))
        return None
    if not attempt.adoptable or not (attempt.answer_may_be_lost or current_task_run.run_count > 1):
        return None
    found = await gateway.find_job(job, attempt.since, frozenset(attempt.known_ids))
    if found is not None:
        get_run_logger().warning("adopted %s, created earlier but never recorded", found.id)
    return found


async def _sent(gateway: Gateway, request: JobSpec) -> JobState:
    try:
        return await gateway.send(request)
    except NoAnswerError as e:
        if gateway.profile.list_jobs:
            raise  # retried: the job, if made, is found in the list
        raise UnknownJobError(_unknowable(gateway, str(e))) from e


def _unknowable(gateway: Gateway, cause: str) -> str:
    return (f"{cause}; the job may have been made (and paid), but {gateway.profile.name} lists no jobs to tell, "
            "so it is not made again unasked: `reelflow jobs PLAN` shows it and how to resolve it")


class JobBook(Protocol):
    """Where one job's life is written down (the ledger): read before anything is sent, written the moment the
    provider names the job (before any waiting: it is paid for) and when it has finished."""

    def recorded_id(self) -> str | None: ...

    def created(self, job: JobState) -> None: ...

    def withdrawn(self) -> None:
        """The create was refused or never reached the provider: nothing was made, so the next run sends it as
        new rather than asking after a job that may exist."""
        ...

    def finished(self, job: JobState) -> None: ...


@dataclass(frozen=True)
class Order:
    """One paid job as a step asks for it: its request (None when the book has its id already), where it is
    recorded, how its create was tried before, whose progress it is, and what it leaves in the scene's folder."""

    request: JobSpec | None
    book: JobBook
    attempt: Attempt
    watch: Watch
    delivery: Delivery | None = None

    @property
    def label(self) -> str:
        """The task run's name in the Prefect UI: the scene and the step."""
        return f"{self.watch.scene}: {self.watch.stage}"


@dataclass(frozen=True)
class Generated:
    """A finished job, and the files it left in the scene's folder."""

    job: JobState
    files: dict[str, FileRecord]


@task(name="generate", task_run_name="{order.label}", cache_policy=NO_CACHE, retry_condition_fn=transient_only,
      **DEFAULT_RETRIES)
async def generate(gateway: Gateway, order: Order, policy: WaitPolicy, fleet: Fleet | None = None) -> Generated:
    """One paid job, start to finish, in one task run: create it (unless the book has it already, or an earlier
    create whose answer was lost can be adopted), record it before any waiting, wait until it finishes, record
    that, then fetch (and make) what it leaves in the scene's folder. A failed job raises (transient or
    permanent, by its error code). A retry after a transient error waits for the recorded job rather than
    creating another, and fetches only what is not in place yet. With a `fleet`, the job holds one of its slots
    from create to finish, and the create waits for its turn."""
    async with job_slot(fleet):
        known = order.book.recorded_id()
        if known is None:
            job = await _created(gateway, order, fleet)
        else:
            job = JobState(id=known, status="queued")
        job = await wait_for(gateway, job, policy, order.watch)
    order.book.finished(job)
    files = await deliver(gateway, job, order.delivery) if order.delivery else {}
    return Generated(job, files)


quiet_when_done(generate)


async def _created(gateway: Gateway, order: Order, fleet: Fleet | None) -> JobState:
    if order.request is None:
        raise ValueError("nothing recorded and nothing to send")
    job = await _adopted(gateway, order.request, order.attempt)
    if job is None:
        await turn_to_create(fleet)
        try:
            job = await _sent(gateway, order.request)
        except UnknownJobError:
            raise
        except PermanentApiError:  # refused (or never sent: unreachable, a key refused): nothing was made; an
            order.book.withdrawn()  # earlier create whose answer was lost was looked for above
            raise
    get_run_logger().info("created %s (%s)", job.id, action_of(order.request))
    order.book.created(job)
    return job


@task(name="create-character", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def create_character(gateway: Gateway, name: str, clip: Reference) -> str:
    """Create one of the plan's characters from its clip; returns the provider's id."""
    character_id = await gateway.create_character(name, clip)
    get_run_logger().info("character %r: created %s", name, character_id)
    return character_id


async def wait_for(gateway: Gateway, job: JobState, policy: WaitPolicy, watch: Watch | None = None) -> JobState:
    """Until the job finishes: by its webhook event when there is an inbox, else by polling."""
    deadline = time.monotonic() + policy.timeout_seconds
    job = await (_told(gateway, job, policy, watch, deadline) if policy.inbox is not None
                 else _polled(gateway, job, policy, watch, deadline))
    if job.status != "completed":
        reason = f"{job.id} {job.status}: {job.error_code or 'no code'}: {job.error_message or 'no message'}"
        raise VideoFailedError(reason, code=job.error_code, cause_may_pass=job.transient)
    return job


async def _polled(gateway: Gateway, job: JobState, policy: WaitPolicy, watch: Watch | None,
                  deadline: float) -> JobState:
    progress = Progress(time.monotonic(), job.progress)
    backoff = policy.min_seconds
    while not job.finished:
        _still_running(job, watch, deadline, policy)
        await asyncio.sleep(progress.next_pause(job, backoff, policy))
        backoff = min(backoff * 1.5, policy.max_seconds)
        job = _logged(job, await gateway.retrieve(job.id))
    return job


async def _told(gateway: Gateway, job: JobState, policy: WaitPolicy, watch: Watch | None,
                deadline: float) -> JobState:
    """Look in the webhook inbox (our own storage, so often); ask the provider once the job's event is
    there (then as usual, should it not be finished after all), or when `fallback_seconds` have passed."""
    assert policy.inbox is not None
    asked = time.monotonic()
    while not job.finished:
        _still_running(job, watch, deadline, policy)
        await asyncio.sleep(policy.min_seconds)
        if await asyncio.to_thread(policy.inbox.arrived, job.id) is not None:
            return await _polled(gateway, _logged(job, await gateway.retrieve(job.id)), policy, watch, deadline)
        if time.monotonic() - asked >= policy.fallback_seconds:
            job, asked = _logged(job, await gateway.retrieve(job.id)), time.monotonic()
    return job


def _logged(before: JobState, now: JobState) -> JobState:
    """`now`, its change of status (if any) logged to the run."""
    if now.status != before.status:
        run_log().info("%s: %s -> %s", now.id, before.status, now.status)
    return now


def run_log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger, whose lines reach the Prefect UI; outside a run (waiting or downloading called on its
    own, from Python), reelflow's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return _OUTSIDE_A_RUN


def _still_running(job: JobState, watch: Watch | None, deadline: float, policy: WaitPolicy) -> None:
    if watch is not None:
        watch.saw(job.status, job.progress, job.queue_position)
    if time.monotonic() > deadline:
        raise TransientApiError(f"{job.id} did not finish within {policy.timeout_seconds:.0f} s")


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


@dataclass(frozen=True)
class Expected:
    """What a downloaded video must be: its size and length (a stitched one may be a few frames short); without a
    length, as long as its header says (a take's length against its order is for its checks to judge)."""

    size: tuple[int, int]
    seconds: float | None
    tolerance_seconds: float = 0.5


@dataclass(frozen=True)
class Checked:
    """How a scene's video is checked as it is delivered (see `reelflow.media.checks`): what it should be, and the
    plan's thresholds."""

    expect: Expectation
    thresholds: Thresholds

    def of(self, video: Path) -> TakeCheck:
        return check_take(video, self.expect, self.thresholds)


class Fetched:
    """The files one delivery has in place so far: a retry fetches only the others."""

    def __init__(self) -> None:
        self.records: dict[str, FileRecord] = {}


@dataclass(frozen=True)
class Delivery:
    """What a finished job leaves in its scene's folder: `files` (output name -> variant) fetched from the
    provider and verified against `expected`, and `made`, the pictures the provider does not serve, made here
    from its video; a scene's video is `checked` as it arrives. `fetched` holds what is in place so far, so a retry
    fetches only the rest."""

    scene_id: str
    storage: Storage
    files: dict[str, Variant]
    expected: Expected
    made: tuple[Variant, ...] = ()
    fetched: Fetched = field(default_factory=Fetched)
    checked: Checked | None = None


@task(name="download", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def download(gateway: Gateway, video: JobState, delivery: Delivery) -> dict[str, FileRecord]:
    """What a job finished earlier leaves in the scene's folder (see `deliver`), on its own."""
    return await deliver(gateway, video, delivery)


quiet_when_done(download)


async def deliver(gateway: Gateway, video: JobState, delivery: Delivery) -> dict[str, FileRecord]:
    """Content variants of a finished video fetched side by side, verified and moved into place, and the
    pictures it lacks made from the video."""
    fetched = delivery.fetched
    missing = [name for name in delivery.files if name not in fetched.records]
    report(delivery.scene_id, "downloading")
    outcomes = await asyncio.gather(*(_fetch(gateway, video, name, delivery) for name in missing),
                                    return_exceptions=True)
    for outcome in outcomes:
        if not isinstance(outcome, BaseException):
            fetched.records.update(outcome)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]
    return dict(fetched.records)


async def _fetch(gateway: Gateway, video: JobState, name: str, delivery: Delivery) -> dict[str, FileRecord]:
    """Stream one variant to a local file, verify it, and move it into place; from the video, first make the
    pictures the provider does not serve, and check a scene's video (the file just written: read once more from the
    local disk, never downloaded again). Each file records the job it comes from."""
    variant, storage, scene_id = delivery.files[name], delivery.storage, delivery.scene_id
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir:
        local = Path(workdir) / "content"
        got = await _downloaded(gateway, video, variant, local)
        if got.truncated:
            raise DeliveryError(f"{name} of {video.id}: got {got.received_bytes} of {got.declared_bytes} bytes")
        info = await asyncio.to_thread(verify, local, variant, f"scene {scene_id!r}: downloaded {name}",
                                       delivery.expected, got.sha256)
        made = (await asyncio.to_thread(pictures_of, local, storage, scene_id, delivery.made, video.id)
                if variant == "video" and delivery.made else {})
        checks = (await asyncio.to_thread(delivery.checked.of, local)
                  if variant == "video" and delivery.checked else None)
        await asyncio.to_thread(storage.publish, local, scene_id, name)
        record = FileRecord(url=storage.location(scene_id, name), bytes=got.bytes, sha256=got.sha256, job=video.id,
                            checks=checks)
        return {name: record if info is None else await asyncio.to_thread(described, record, local, info), **made}


async def _downloaded(gateway: Gateway, video: JobState, variant: Variant, local: Path) -> Downloaded:
    """A finished job's file, fetched: a refusal or a broken download is no verdict on the job (it is paid and
    finished), so it is fetched again, on a retry or by the next run; only its files being gone for good
    (`AssetsExpiredError`) or a refused key end it."""
    try:
        return await gateway.download(video, variant, local)
    except (ProviderUnusableError, AssetsExpiredError, DeliveryError):
        raise
    except ApiError as e:
        raise DeliveryError(f"{e} (the job is finished and paid: its files are fetched again, never paid again)",
                            status=e.status, code=e.code) from e


def pictures_of(video: Path, storage: Storage, scene_id: str, variants: Iterable[Variant],
                job_id: str | None = None) -> dict[str, FileRecord]:
    """The pictures (`variants`: thumbnail, spritesheet) made here from a local video (of job `job_id`), put in the
    scene's folder."""
    tiles = sprite_tiles(video)  # the first tile is the first frame: the thumbnail
    made = {"thumbnail": thumbnail_webp(tiles[0]), "spritesheet": spritesheet_jpeg(tiles)}
    records = {}
    for variant in variants:
        name = FILENAMES[variant]
        local = video.with_name(name)
        local.write_bytes(made[variant])
        records[name] = published(local, storage, scene_id, name).model_copy(update={"job": job_id})
        if variant == "thumbnail":
            remember_card(records[name].sha256, tiles[0])
    return records


def published(local: Path, storage: Storage, *parts: str) -> FileRecord:
    """A local file moved into place, as its record says it."""
    with local.open("rb") as written:
        digest = hashlib.file_digest(written, "sha256").hexdigest()
    size = local.stat().st_size
    storage.publish(local, *parts)
    return FileRecord(url=storage.location(*parts), bytes=size, sha256=digest)


def described(record: FileRecord, video: Path, info: VideoInfo) -> FileRecord:
    """A video's record with what a player would report of it: its length, whether it has sound, how loud (as its
    checks measured it, when it was checked: its sound is not decoded again)."""
    lufs: float | None = None
    if info.audio and record.checks is not None:
        lufs = record.checks.loudness_lufs
    elif info.audio and (loudness := loudness_of(video)) is not None:
        lufs = loudness.integrated_lufs
    return record.model_copy(update={"seconds": round(info.seconds, 3), "audio": info.audio,
                                     "loudness_lufs": round(lufs, 1) if lufs is not None and lufs > -70 else None})


def verify(local: Path, variant: Variant, what: str, expected: Expected, sha256: str) -> VideoInfo | None:
    """Read what arrived (`sha256`: its digest): a truncated or corrupt body is a transient failure, so it is
    fetched again. A video's size, length and sound as read; a thumbnail's card picture kept for the report."""
    if variant == "video":
        return verify_video(local, what, expected)
    try:
        image = Image.open(io.BytesIO(local.read_bytes()))
        # A JPEG decoded down to the report's size still reads every byte of it.
        image.draft("RGB", (THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * image.height // max(image.width, 1)))
        image.load()
    except (OSError, SyntaxError) as e:
        raise TransientApiError(f"{what} does not decode: {e}") from e
    with image:
        if variant == "thumbnail":
            remember_card(sha256, image)
    return None


def verify_video(local: Path, what: str, expected: Expected) -> VideoInfo:
    """A video read whole, of the expected size and length (by its header and by its frames: frames missing from
    what the header says are a broken download), as read."""
    info = probe(local, read_all=True)
    shown = info.frames / info.rate if info and info.rate else 0.0  # what was read, not what the header says
    wanted = expected.seconds if expected.seconds is not None else info.seconds if info else 0.0
    if info is None or info.size != expected.size or max(abs(info.seconds - wanted), abs(
            shown - wanted)) > expected.tolerance_seconds:
        found = "undecodable" if info is None else f"{info.size[0]}x{info.size[1]}, {info.seconds:.2f} s"
        raise TransientApiError(f"{what} is {found}; expected {expected.size[0]}x{expected.size[1]}, "
                                f"{wanted:g} s" + (" (as its header says)" if expected.seconds is None else ""))
    return info

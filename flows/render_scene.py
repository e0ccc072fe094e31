"""One scene, start to finish: reference image, job, extensions, downloads, resumable from the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial

from prefect import flow, get_run_logger
from prefect.context import AsyncClientContext

from reelflow import (
    AssetsExpiredError,
    DeliveryError,
    ImageError,
    JobGoneError,
    ProviderUnusableError,
    ReelflowError,
    ResolvedScene,
    Scene,
    SceneDefaults,
    Settings,
    StorageError,
    StyleBlock,
    UnknownJobError,
    VideoFailedError,
    is_transient,
)
from reelflow.costs import BudgetExceeded, Estimate, Spend, estimate
from reelflow.ledger import JobRecord, Ledger, SceneEntry, SceneInputs, fingerprint, step_fingerprints
from reelflow.media.references import (
    FIRST,
    LAST,
    Role,
    SceneImages,
    as_reference,
    subject_reference,
    unchanged_reference,
    usable_as_is,
)
from reelflow.plans import Plan, Segment, validate_plan
from reelflow.progress import Watch, report
from reelflow.providers import (
    ClipJob,
    Connection,
    ExtensionJob,
    Gateway,
    JobSpec,
    JobState,
    Reference,
    RevisionJob,
    active_profile,
    check_images,
    check_settings,
    connect_provider,
    open_gateway,
)
from reelflow.results import FileRecord, SceneResult
from reelflow.reuse import Reuse, clip_name, kept_in, reuse_of
from reelflow.storage import Storage
from tasks._retry import tuned, unexamined
from tasks.fleet import Fleet
from tasks.images import last_frame_of, transform, validate_dimensions
from tasks.reel import stitch
from tasks.videos import FILENAMES, PICTURES, VIDEO, Attempt, Delivery, Expected, Order, WaitPolicy, download, generate

from ._stoppable import run_stoppable

Signature = tuple[str, str, int]


def request_signatures(scene: ResolvedScene) -> list[Signature]:
    """What the provider shows of each job of the scene: prompt, size and seconds (an extension shows the
    stitched total; a last-frame continuation is a clip of its own; a revision is the whole video again)."""
    signatures: list[Signature] = []
    shown = 0
    for segment in scene.segments:
        shown = shown + segment.seconds if segment.via == "extension" else segment.seconds
        signatures.append((segment.prompt, scene.size, shown))
    return signatures + [(revision.prompt, scene.size, scene.total_seconds) for revision in scene.revisions]


def revision_name(number: int) -> str:
    """Where the scene's video is kept after `number` revisions (0: before the first)."""
    return f"video.rev{number}.mp4"


@dataclass
class SceneRun:
    """Everything a scene's steps share within one run."""

    gateway: Gateway
    storage: Storage
    settings: Settings
    estimate: Estimate
    retry_failed: bool = False
    requests: Counter[Signature] = field(default_factory=Counter)
    known_ids: set[str] = field(default_factory=set)
    spend: Spend = field(default_factory=lambda: Spend(None))
    character_ids: dict[str, str] = field(default_factory=dict)
    fleet: Fleet | None = None
    warnings: dict[str, list[str]] = field(default_factory=dict)  # by scene, gathered before its own run
    embedded_sandbox: bool = False  # the provider is the sandbox started for this run: its jobs cost nothing
    made: list[JobRecord] = field(default_factory=list)  # every job this run sent (or is sending) a create for

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, connection: Connection, storage: Storage, settings: Settings, scenes: list[ResolvedScene],
                   costs: Estimate, retry_failed: bool = False) -> AsyncIterator[SceneRun]:
        """A gateway to the provider, and one Prefect client for every task run, for the life of the block (inside
        the run's event loop: each task run would otherwise open a client of its own, about 60 ms of CPU)."""
        gateway = open_gateway(connection, settings)
        try:
            async with AsyncClientContext():
                yield cls(gateway, storage, settings, costs, retry_failed,
                          Counter(signature for scene in scenes for signature in request_signatures(scene)),
                          spend=Spend(costs.budget_usd), embedded_sandbox=connection.embedded_sandbox)
        finally:
            await gateway.close()

    def attempt(self, record: JobRecord, signature: Signature, answer_may_be_lost: bool) -> Attempt:
        return Attempt(since=record.recorded_at, answer_may_be_lost=answer_may_be_lost,
                       adoptable=self.requests[signature] == 1, known_ids=self.known_ids)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.storage)

    @property
    def policy(self) -> WaitPolicy:
        return WaitPolicy.of(self.settings)


async def run_scene(scene: ResolvedScene, run: SceneRun) -> SceneResult:
    """Render one scene, resuming whatever the ledger says was already paid for.

    The scene's own failure becomes a failed result; a provider that cannot be used (its key rejected, or not
    reached at all) stops the whole run."""
    try:
        images = await images_of(scene, run)
    except ImageError as e:  # missing, unreadable, damaged: nothing is sent, nothing paid
        get_run_logger().error("scene %r failed: %s", scene.id, e)
        report(scene.id, f"failed: {e}")
        return SceneResult(id=scene.id, status="failed", size=scene.size, seconds=scene.total_seconds, error=str(e))
    entry = entry_of(scene, images, run)
    reuse = _reuse(scene, entry, run)
    if reuse.rendered:
        get_run_logger().info("scene %r: already rendered, files verified", scene.id)
        report(scene.id, "done (rendered earlier)")
        return _result(scene, entry, reused=reuse.steps)
    if entry.status == "failed" and not entry.transient and not run.retry_failed:
        said = any(job.status in ("unknown", "gone") for job in entry.chain())  # its error says the way out
        entry.error = f"{entry.error} (in an earlier run{'' if said else '; --retry-failed renders it again'})"
        report(scene.id, "failed in an earlier run")
        return _result(scene, entry)
    entry.status, entry.error, entry.transient = "rendering", None, False
    run.known_ids.update(j.id for j in entry.jobs if j.id)
    warnings = run.warnings.pop(scene.id, [])
    try:
        reuse = await _rendered(Chain(scene, images, entry, warnings), run, reuse)
        entry.status = "completed"
        _log_rendered(scene, entry)
        report(scene.id, "done")
    except ProviderUnusableError:
        raise
    except ReelflowError as e:
        # A budget refusal or a storage failure (a full disk) is no verdict on the scene: a later run with more
        # budget, or room, renders it (its paid jobs are in the ledger, so only their files are fetched again).
        entry.status, entry.error = "failed", str(e)
        entry.transient = is_transient(e) or isinstance(e, BudgetExceeded | StorageError)
        if isinstance(e, AssetsExpiredError):
            _forget_videos(entry)
            entry.transient, entry.error = True, f"{entry.error} (the next run makes again only what is not kept here)"
        get_run_logger().error("scene %r failed: %s", scene.id, e)
        report(scene.id, f"failed: {e}")
    with contextlib.suppress(ReelflowError):  # the failure itself is already the scene's outcome
        run.ledger.save(entry)
    return _result(scene, entry, warnings, reuse.from_earlier_runs if entry.status == "completed" else 0)


def _log_rendered(scene: ResolvedScene, entry: SceneEntry) -> None:
    """One line for the scene's outcome, naming its jobs and files (each log line costs the Prefect server a
    write: the downloads do not log one of their own)."""
    outputs = [name for name in FILENAMES.values() if name in entry.files]
    get_run_logger().info("scene %r: rendered by %s (%s: %d bytes)", scene.id,
                          ", ".join(job.id for job in entry.chain() if job.id), ", ".join(outputs),
                          sum(entry.files[name].bytes for name in outputs))


async def render_concurrently(scenes: list[ResolvedScene], run: SceneRun, limit: int) -> list[SceneResult]:
    """At most `limit` scenes in flight; a provider that cannot be used (its key rejected, or not reached at all)
    cancels the rest at once."""
    slots = asyncio.Semaphore(limit)
    stopping = False

    async def one(scene: ResolvedScene) -> SceneResult:
        nonlocal stopping
        async with slots:
            if stopping:  # the slot was handed over by the scene that stops the run: start nothing more
                raise asyncio.CancelledError
            try:
                return await run_scene(scene, run)
            except ProviderUnusableError:
                stopping = True
                raise

    try:
        async with asyncio.TaskGroup() as group:
            pending = [group.create_task(one(scene)) for scene in scenes]
    except* ProviderUnusableError as raised:
        raise raised.exceptions[0] from None
    return [task.result() for task in pending]


@dataclass(frozen=True)
class Chain:
    """A scene being rendered: what it starts from, its ledger entry, and the warnings gathered on the way."""

    scene: ResolvedScene
    images: SceneImages
    entry: SceneEntry
    warnings: list[str]


async def _rendered(chain: Chain, run: SceneRun, reuse: Reuse) -> Reuse:
    """The scene's video and pictures, taking from earlier runs what `reuse` says. A reused video the provider
    no longer has (deleted before the expiry it announced, or never kept) makes the scene render once more,
    from what is kept here."""
    try:
        await _render_chain(chain, run)
        return reuse
    except AssetsExpiredError as e:
        if not reuse.from_earlier_runs:
            raise
        get_run_logger().warning("scene %r: %s; making again what is not kept here", chain.scene.id, e)
        _forget_videos(chain.entry)
        reuse = _reuse(chain.scene, chain.entry, run)
        await _render_chain(chain, run)
        return reuse


async def _render_chain(chain: Chain, run: SceneRun) -> None:
    scene, entry = chain.scene, chain.entry
    video: JobState | None = None
    for number, segment in enumerate(scene.segments):
        request = _request_of(number, segment, video, scene, chain.images, entry, run, chain.warnings)
        video = await _step(Step(number, scene, entry, run), request)
    assert video is not None  # a chain has at least its create
    await _revised(video, scene, entry, run)
    if scene.stitched_locally:
        report(scene.id, "stitching")
        clips = [clip_name(step) for step in range(len(scene.segments))]
        entry.files.update(await tuned(stitch, run.settings)(run.storage, scene, clips, run.settings.crossfade_seconds))
    if scene.revisions:
        _keep_copy(VIDEO, revision_name(len(scene.revisions)), scene.id, entry, run)


def _reuse(scene: ResolvedScene, entry: SceneEntry, run: SceneRun) -> Reuse:
    """What this run takes from earlier runs' jobs; an unchanged step after it whose video is gone is made
    again (its job marked expired), and so is every step after that."""
    reuse = reuse_of(scene, entry, kept_in(entry, run.storage), time.time())
    for step in reuse.paid:
        record = entry.current(step)
        if record is not None and record.status == "completed":
            record.status = "expired"
        for name in _made_from(step, scene):  # kept from the step's earlier job: made again from the new one
            entry.files.pop(name, None)
    logger = get_run_logger()
    if reuse.from_earlier_runs:
        logger.info("scene %r: %d of %d jobs taken from earlier runs, %d to pay", scene.id,
                    reuse.from_earlier_runs, reuse.steps, len(reuse.paid))
    for note in reuse.notes:
        logger.info("scene %r: %s", scene.id, note)
    return reuse


def _made_from(step: int, scene: ResolvedScene) -> list[str]:
    """The files of the scene's folder kept from the video of `step`: its clip, or the video a revision
    starts from."""
    names, after = [], step - len(scene.segments) + 1
    if scene.stitched_locally and after <= 0:
        names.append(clip_name(step))
    if after >= 0:
        names.append(revision_name(after))
    return names


def _forget_videos(entry: SceneEntry) -> None:
    """The provider no longer has the chain's videos: what is not kept here is made again."""
    gone = time.time()
    for job in entry.chain():
        job.expires_at = gone


async def images_of(scene: ResolvedScene, run: SceneRun) -> SceneImages:
    read = tuned(validate_dimensions, run.settings)
    return SceneImages(
        first=await read(scene.image, f"scene {scene.id!r}: image") if scene.image else None,
        last=await read(scene.last_image, f"scene {scene.id!r}: last_image") if scene.last_image else None,
        subjects=tuple([await read(url, f"scene {scene.id!r}: subjects[{n}]") for n, url in enumerate(scene.subjects)]))


def entry_of(scene: ResolvedScene, images: SceneImages, run: SceneRun) -> SceneEntry:
    """The ledger's entry for the scene as it is now: a changed scene renders again, keeping the jobs of
    the steps that did not change."""
    inputs = SceneInputs.of(images, run.gateway.profile.name, run.settings.reference_format,
                            [run.character_ids[name] for name in scene.characters])
    expected, steps = fingerprint(scene, inputs), step_fingerprints(scene, inputs)
    entry = run.ledger.load(scene.id)
    if entry is None:
        return SceneEntry(scene=scene.id, fingerprint=expected, steps=steps)
    return entry.restamped(expected, steps)


@dataclass(frozen=True)
class Step:
    """One paid step of a scene's chain in this run: its clip, an extension or continuation, or a revision."""

    number: int
    scene: ResolvedScene
    entry: SceneEntry
    run: SceneRun

    @property
    def signature(self) -> Signature:
        return request_signatures(self.scene)[self.number]

    @property
    def usd(self) -> float:
        segments = self.scene.segments
        seconds = segments[self.number].seconds if self.number < len(segments) else self.scene.total_seconds
        return self.run.estimate.cost_of(self.scene.id).segment_usd(seconds)

    @property
    def revision(self) -> int:
        """The revisions made before this step's video (negative while the chain is still being extended)."""
        return self.number - len(self.scene.segments) + 1

    @property
    def watch(self) -> Watch:
        if self.revision > 0:
            return Watch(self.scene.id, f"revising {self.revision}/{len(self.scene.revisions)}")
        extensions = len(self.scene.segments) - 1
        return Watch(self.scene.id, f"extending {self.number}/{extensions}" if self.number else "rendering")

    def delivery(self) -> Delivery | None:
        """What the step's video leaves in the scene's folder, if anything: a clip to stitch, the video a revision
        starts from (when that revision is to be made), or, from the last step, the scene's files."""
        scene, run, revision = self.scene, self.run, self.revision
        if scene.stitched_locally:
            return self._kept_video(clip_name(self.number), scene.segments[self.number].seconds)
        if revision == len(scene.revisions):
            offered = run.gateway.profile.variants
            return Delivery(scene.id, run.storage, {FILENAMES[variant]: variant for variant in offered},
                            Expected(scene.dimensions, scene.total_seconds),
                            tuple(variant for variant in PICTURES if variant not in offered))
        if revision >= 0 and needs_new_job(self.entry.current(self.number + 1), run.retry_failed):
            return self._kept_video(revision_name(revision), scene.total_seconds)
        return None

    def _kept_video(self, name: str, seconds: int) -> Delivery | None:
        """A video of the chain kept in the scene's folder (a clip to stitch, a video before a revision), once."""
        if kept_in(self.entry, self.run.storage)(name):
            return None
        return Delivery(self.scene.id, self.run.storage, {name: "video"}, Expected(self.scene.dimensions, seconds))


async def _step(step: Step, request: Callable[[], Awaitable[JobSpec]]) -> JobState:
    """One paid job of the chain: reuse the ledger's job when there is one, else create and record it; then
    what its video leaves in the scene's folder.

    The intent to create is recorded first, so a crash between the create and its record is found
    again (by listing the provider's recent jobs) instead of being paid for twice. Each new job is
    committed against the budget before that."""
    entry, run, delivery = step.entry, step.run, step.delivery()
    attempts_left = run.settings.generation_attempts
    while True:
        record = entry.current(step.number)
        if record is not None and record.status == "completed" and record.id:
            try:
                return await _fetched(record.id, delivery, step)
            except JobGoneError as e:
                _gone(record, e, step)
                continue
        if record is None or needs_new_job(record, run.retry_failed):
            run.spend.commit(step.usd, f"scene {entry.scene!r}: " + (
                f"job {step.number + 1} of its chain" if step.number else "the clip"))
            record, fresh = entry.intend(step.number, step.usd), True
            run.made.append(record)
            run.ledger.save(entry)
        elif record.status == "failed":
            raise VideoFailedError(record.error or f"{record.id} failed")
        elif record.status == "unknown":
            raise UnknownJobError(record.error or "its create's answer was lost")
        elif record.status == "gone":
            raise JobGoneError(_way_out(record.error or f"the provider no longer knows job {record.id}", step))
        else:
            fresh = False
        outgoing = await request() if record.id is None else None
        order = Order(outgoing, Booked(record, entry, run), run.attempt(record, step.signature, not fresh),
                      step.watch, delivery)
        try:
            made = await tuned(generate, run.settings)(run.gateway, unexamined(order), run.policy, run.fleet)
        except JobGoneError as e:
            _gone(record, e, step)
            continue
        except VideoFailedError as e:
            record.status, record.error, record.transient = "failed", str(e), e.cause_may_pass
            run.ledger.save(entry)
            attempts_left -= 1
            if not e.cause_may_pass or attempts_left == 0:
                raise
            continue
        except UnknownJobError as e:
            record.status, record.error = "unknown", str(e)
            run.ledger.save(entry)
            raise
        _delivered(made.files, entry, run)
        return made.job


async def _fetched(job_id: str, delivery: Delivery | None, step: Step) -> JobState:
    """A job finished in an earlier run (or try): what it leaves in the scene's folder, fetched again. Files that
    cannot be fetched are no verdict on the job unless the provider no longer knows it (then JobGoneError)."""
    job, run = JobState(id=job_id, status="completed"), step.run
    if delivery is None:
        return job
    try:
        _delivered(await tuned(download, run.settings)(run.gateway, job, delivery), step.entry, run)
    except DeliveryError:
        await run.gateway.retrieve(job_id)  # gone: JobGoneError; else the fetch itself failed, and says so
        raise
    return job


def _gone(record: JobRecord, error: JobGoneError, step: Step) -> None:
    """The provider no longer knows the step's job: on the embedded sandbox (which forgets its jobs when it stops,
    and costs nothing) it is made again; elsewhere only when the user says so (`--retry-failed`), as it is paid."""
    record.status, record.error = ("expired" if step.run.embedded_sandbox else "gone"), str(error)
    step.run.ledger.save(step.entry)
    if record.status == "gone" and not step.run.retry_failed:
        raise JobGoneError(_way_out(str(error), step), status=404) from error


def _way_out(cause: str, step: Step) -> str:
    return (f"{cause}; `reelflow run --retry-failed` makes it again (${step.usd:.2f} at list price), or "
            f"`reelflow jobs PLAN --adopt {step.entry.scene}=JOB_ID` attaches the job it should be")


def _delivered(files: dict[str, FileRecord], entry: SceneEntry, run: SceneRun) -> None:
    entry.files.update(files)
    run.ledger.save(entry)


@dataclass(frozen=True)
class Booked:
    """A job's ledger record, written as the job goes (see `JobBook`)."""

    record: JobRecord
    entry: SceneEntry
    run: SceneRun

    def recorded_id(self) -> str | None:
        return self.record.id

    def created(self, job: JobState) -> None:
        """Record a new job's id before any waiting: it is paid for. One that cannot be recorded (a full disk) is
        said at once, with the way to attach it later, and the scene stops: its job is not lost, nor paid twice."""
        self.record.id, self.record.status = job.id, "created"
        self.run.known_ids.add(job.id)
        try:
            self.run.ledger.save(self.entry)
        except StorageError as e:
            said = (f"{e}: job {job.id} was made (and is paid for) but is not in the ledger; once the ledger can be "
                    f"written, `reelflow jobs PLAN --adopt {self.entry.scene}={job.id}` attaches it")
            get_run_logger().error("scene %r: %s", self.entry.scene, said)
            report(self.entry.scene, f"failed: {said}")
            raise StorageError(said, transient=e.transient) from e

    def withdrawn(self) -> None:
        self.entry.jobs.remove(self.record)
        self.run.ledger.save(self.entry)

    def finished(self, job: JobState) -> None:
        """Kept with what the job leaves here, in one write (a run that stops before it asks the provider once
        more, and is told the job is finished), with what the provider says it billed."""
        self.record.status, self.record.expires_at = "completed", job.expires_at
        self.record.billed_usd = job.billed_usd


def needs_new_job(record: JobRecord | None, retry_failed: bool) -> bool:
    """No job yet, its job's files are gone, or it failed for a reason that may pass (or the user asked to pay
    again, also for a job the provider no longer knows)."""
    return record is None or record.status == "expired" or (
        record.status == "failed" and (record.transient or retry_failed)) or (record.status == "gone" and retry_failed)


def _request_of(step: int, segment: Segment, previous: JobState | None, scene: ResolvedScene,
                images: SceneImages, entry: SceneEntry, run: SceneRun,
                warnings: list[str]) -> Callable[[], Awaitable[JobSpec]]:
    """How to build the step's job, called only when it is about to be created."""
    if segment.via == "create":
        return partial(scene_request, scene, images, entry, run, warnings)
    if segment.via == "extension":
        assert previous is not None
        job = ExtensionJob(source=previous.id, prompt=segment.prompt, seconds=segment.seconds, size=scene.size,
                           total_seconds=sum(s.seconds for s in scene.segments[:step + 1]), model=scene.model)
        return partial(_ready, job)
    return partial(_continuation_request, scene, step, images, entry, run, warnings)


async def _ready(job: JobSpec) -> JobSpec:
    return job


async def scene_request(scene: ResolvedScene, images: SceneImages, entry: SceneEntry, run: SceneRun,
                        warnings: list[str]) -> ClipJob:
    """The scene's create, its reference images prepared only now that a job is about to be created."""
    first = await _reference(scene, images, FIRST, entry, run, warnings)
    return await _create(scene, 0, first, images, entry, run, warnings)


async def _create(scene: ResolvedScene, step: int, first: Reference | None, images: SceneImages, entry: SceneEntry,
                  run: SceneRun, warnings: list[str]) -> ClipJob:
    """A clip of the scene's model and size, carrying its characters; the scene's last clip lands on its
    last image, if it has one."""
    last = await _reference(scene, images, LAST, entry, run, warnings) if step == len(scene.segments) - 1 else None
    segment = scene.segments[step]
    subjects = tuple(_subjects(scene, images, entry, run)) if step == 0 else ()
    return ClipJob(prompt=segment.prompt, model=scene.model, size=scene.size, seconds=segment.seconds,
                   first_frame=first, last_frame=last, audio=scene.audio, seed=scene.seed, negative=scene.negative,
                   subjects=subjects, characters=tuple(run.character_ids[name] for name in scene.characters))


def _subjects(scene: ResolvedScene, images: SceneImages, entry: SceneEntry, run: SceneRun) -> list[Reference]:
    """The scene's subject images as they are sent (in an accepted format, at their own size), kept beside it."""
    kept = []
    for number, source in enumerate(images.subjects, start=1):
        reference = subject_reference(source, run.gateway.profile.reference_formats, run.settings.reference_format)
        kept.append(_kept(reference, f"subject-{number}.{reference.filename.rpartition('.')[2]}", scene.id, entry,
                          run))
    return kept


async def _continuation_request(scene: ResolvedScene, step: int, images: SceneImages, entry: SceneEntry,
                                run: SceneRun, warnings: list[str]) -> ClipJob:
    """A new clip that starts where the previous one ended: its last frame is this create's reference."""
    report(scene.id, "preparing")
    frame = await tuned(last_frame_of, run.settings)(run.storage, scene, clip_name(step - 1),
                                                     run.settings.reference_format)
    first = _kept(as_reference(frame), f"segments/{step}.first-frame.{frame.extension}", scene.id, entry, run)
    return await _create(scene, step, first, images, entry, run, warnings)


async def _reference(scene: ResolvedScene, images: SceneImages, role: Role, entry: SceneEntry, run: SceneRun,
                     warnings: list[str]) -> Reference | None:
    """The scene's first (or last) image as it is sent: the user's file when it fits, else prepared."""
    source = images.of(role)
    if source is None:
        return None
    if usable_as_is(source, scene, run.gateway.profile.reference_formats, role):
        reference = unchanged_reference(source, role)
    else:
        report(scene.id, "preparing")
        prepared = await tuned(transform, run.settings)(source, scene, run.settings.reference_format, role)
        warnings += prepared.warnings
        reference = as_reference(prepared, role)
    return _kept(reference, reference.filename, scene.id, entry, run)


def _kept(reference: Reference, name: str, scene_id: str, entry: SceneEntry, run: SceneRun) -> Reference:
    """An image a create sends, kept beside the scene's outputs (and recorded); for a provider that fetches
    images itself, with a presigned URL of that copy when the storage can sign one (else the dialect sends
    the image inline)."""
    _keep(reference.data, name, scene_id, entry, run)
    if run.gateway.provider.capabilities.images == "bytes":
        return reference
    url = run.storage.signed_url(scene_id, name, seconds=run.settings.reference_url_seconds)
    return replace(reference, url=url) if url else reference


def _keep(data: bytes, name: str, scene_id: str, entry: SceneEntry, run: SceneRun) -> None:
    """Store an image sent with a create next to the scene's outputs, and record it."""
    run.storage.write_bytes(data, scene_id, name)
    entry.files[name] = FileRecord(url=run.storage.location(scene_id, name), bytes=len(data),
                                   sha256=hashlib.sha256(data).hexdigest())


async def _revised(video: JobState, scene: ResolvedScene, entry: SceneEntry, run: SceneRun) -> None:
    """Each revision made by the provider from the video before it, which is kept (video.rev<k>.mp4)."""
    for number, revision in enumerate(scene.revisions, start=len(scene.segments)):
        request = partial(_ready, RevisionJob(kind=revision.kind, source=video.id, prompt=revision.prompt,
                                              size=scene.size, total_seconds=scene.total_seconds))
        video = await _step(Step(number, scene, entry, run), request)


def _keep_copy(source: str, name: str, scene_id: str, entry: SceneEntry, run: SceneRun) -> None:
    run.storage.copy((scene_id, source), (scene_id, name))
    entry.files[name] = entry.files[source].model_copy(update={"url": run.storage.location(scene_id, name)})


def _result(scene: ResolvedScene, entry: SceneEntry, warnings: list[str] | None = None,
            reused: int = 0) -> SceneResult:
    return SceneResult(
        id=scene.id, status="completed" if entry.status == "completed" else "failed",
        job_ids=[j.id for j in entry.jobs if j.id and j.fingerprint in entry.steps], size=scene.size,
        seconds=scene.total_seconds, files=entry.files, warnings=warnings or [], error=entry.error,
        reused_jobs=reused,
    )


@flow(name="render-scene")
def render_scene(scene: Scene, output: str, plan_name: str = "scenes", retry_failed: bool = False,
                 defaults: SceneDefaults | None = None, style: StyleBlock | None = None,
                 fleet: bool = False, provider: str | None = None) -> SceneResult:
    """Render a single scene into `<output>/<plan_name>/<scene id>/`.

    Args:
        scene: The scene: prompt, image, size, seconds, extensions.
        output: Where the plan's folder is (an fsspec URL every worker can reach, e.g. s3://...).
        plan_name: The plan's folder under `output`, and its ledger.
        retry_failed: Render again a scene that failed permanently in an earlier run.
        defaults: The plan's defaults (model, size, seconds, fit) for what the scene does not set.
        style: The plan-wide style its prompt inherits.
        fleet: Hold the fleet's Prefect global limits (set up by the plan run that started this one).
        provider: The plan's provider profile (REELFLOW_PROVIDER, where set, names another).
    """
    settings = Settings()
    plan = Plan(name=plan_name, output=output, scenes=[scene], defaults=defaults or SceneDefaults(), style=style,
                provider=provider)
    profile = active_profile(settings, provider)
    check_settings(settings, profile)
    with connect_provider(settings, profile) as connection:
        (resolved,) = validate_plan(plan, connection.profile)
        costs = estimate(plan, [resolved], connection.profile, settings)
        costs.check()
        storage = Storage(output, settings.storage_options).child(plan_name)
        check_images(connection.profile, storage, [resolved])

        async def render() -> SceneResult:
            async with SceneRun.open(connection, storage, settings, [resolved], costs, retry_failed) as run:
                run.fleet = Fleet() if fleet else None
                return await run_scene(resolved, run)

        return run_stoppable(render())


def recorded_result(scene: ResolvedScene, storage: Storage) -> SceneResult | None:
    """A scene's outcome as its ledger has it (a scene rendered by another process), if any."""
    entry = Ledger(storage).load(scene.id)
    return None if entry is None or entry.status == "rendering" else _result(scene, entry)

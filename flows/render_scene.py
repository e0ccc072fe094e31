"""One scene, start to finish: reference image, job, extensions, downloads, resumable from the ledger."""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from prefect import flow, get_run_logger

from reelflow import (
    ApiError,
    AuthenticationError,
    ReelflowError,
    ResolvedScene,
    Scene,
    SceneDefaults,
    Settings,
    StorageError,
    StyleBlock,
    VideoFailedError,
    is_transient,
)
from reelflow.costs import BudgetExceeded, Estimate, Spend, estimate
from reelflow.ledger import JobRecord, Ledger, SceneEntry, fingerprint
from reelflow.media.references import SourceImage, as_reference, unchanged_reference, usable_as_is
from reelflow.plans import Plan, Revision, Segment, validate_plan
from reelflow.progress import Watch, report
from reelflow.providers._connect import Connection, check_settings, connect_provider
from reelflow.providers._gateway import (
    Gateway,
    JobState,
    Reference,
    Request,
    Variant,
    connect,
    create_request,
    edit_request,
    extension_request,
    remix_request,
)
from reelflow.results import FileRecord, SceneResult
from reelflow.storage import Storage
from tasks._retry import tuned
from tasks.fleet import Fleet
from tasks.images import last_frame_of, transform, validate_dimensions
from tasks.reel import make_pictures, stitch
from tasks.videos import FILENAMES, VIDEO, Attempt, Expected, Fetched, WaitPolicy, download, generate

from ._stoppable import run_stoppable

Signature = tuple[str, str, int]
ASSETS_EXPIRED = "video_expired"  # the content of a finished job is gone (about an hour after completion)


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


def clip_name(step: int) -> str:
    """Where a chain stitched here keeps the clip of each step, in the scene's folder."""
    return f"segments/{step}.mp4"


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

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, connection: Connection, storage: Storage, settings: Settings, scenes: list[ResolvedScene],
                   costs: Estimate, retry_failed: bool = False) -> AsyncIterator[SceneRun]:
        """A gateway to the provider for the life of the block (inside the run's event loop)."""
        gateway = connect(connection.base_url, connection.api_key.get_secret_value(), connection.profile, settings)
        try:
            yield cls(gateway, storage, settings, costs, retry_failed,
                      Counter(signature for scene in scenes for signature in request_signatures(scene)),
                      spend=Spend(costs.budget_usd))
        finally:
            await gateway.close()

    def attempt(self, record: JobRecord, signature: Signature, answer_may_be_lost: bool) -> Attempt:
        return Attempt(looks_like=signature, since=record.recorded_at, answer_may_be_lost=answer_may_be_lost,
                       adoptable=self.requests[signature] == 1, known_ids=frozenset(self.known_ids))

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.storage)

    @property
    def policy(self) -> WaitPolicy:
        return WaitPolicy.of(self.settings)


async def run_scene(scene: ResolvedScene, run: SceneRun) -> SceneResult:
    """Render one scene, resuming whatever the ledger says was already paid for.

    The scene's own failure becomes a failed result; a rejected API key stops the whole run."""
    source = await source_of(scene, run)
    entry = entry_of(scene, source, run)
    if entry.status == "completed" and _files_verify(entry, run.storage):
        get_run_logger().info("scene %r: already rendered, files verified", scene.id)
        report(scene.id, "done (rendered earlier)")
        return _result(scene, entry)
    if entry.status == "failed" and not entry.transient and not run.retry_failed:
        entry.error = f"{entry.error} (in an earlier run; --retry-failed renders it again)"
        report(scene.id, "failed in an earlier run")
        return _result(scene, entry)
    entry.status, entry.error, entry.transient = "rendering", None, False
    run.known_ids.update(j.id for j in entry.jobs if j.id)
    warnings = run.warnings.pop(scene.id, [])
    signatures = request_signatures(scene)
    cost, chain = run.estimate.cost_of(scene.id), len(scene.segments) - 1
    try:
        video: JobState | None = None
        for step, segment in enumerate(scene.segments):
            request = _request_of(step, segment, video, scene, source, entry, run, warnings)
            video = await _step(step, signatures[step], entry, run, request, cost.segment_usd(segment.seconds),
                                Watch(scene.id, f"extending {step}/{chain}" if step else "rendering"))
            if scene.stitched_locally:
                await _keep_video(clip_name(step), segment.seconds, video, scene, entry, run)
        assert video is not None  # a chain has at least its create
        video = await _revised(video, scene, signatures, entry, run)
        entry.files.update(await _finished_files(scene, video, run))
        if scene.revisions:
            _keep_copy(VIDEO, revision_name(len(scene.revisions)), scene.id, entry, run)
        entry.status = "completed"
        report(scene.id, "done")
    except AuthenticationError:
        raise
    except ReelflowError as e:
        # A budget refusal or a storage failure (a full disk) is no verdict on the scene: a later run with more
        # budget, or room, renders it (its paid jobs are in the ledger, so only their files are fetched again).
        entry.status, entry.error = "failed", str(e)
        entry.transient = is_transient(e) or isinstance(e, BudgetExceeded | StorageError)
        if isinstance(e, ApiError) and e.code == ASSETS_EXPIRED:
            _forget_jobs(entry)
        get_run_logger().error("scene %r failed: %s", scene.id, e)
        report(scene.id, f"failed: {e}")
    with contextlib.suppress(ReelflowError):  # the failure itself is already the scene's outcome
        run.ledger.save(entry)
    return _result(scene, entry, warnings)


def _forget_jobs(entry: SceneEntry) -> None:
    """The provider deleted the finished videos' files before they were fetched: only new jobs can
    bring them back, so the next run creates them (the error says so)."""
    for job in entry.jobs:
        job.status, job.transient = "failed", True
    entry.transient = True
    entry.error = f"{entry.error} (the next run renders the scene again)"


async def source_of(scene: ResolvedScene, run: SceneRun) -> SourceImage | None:
    if scene.image is None:
        return None
    return await tuned(validate_dimensions, run.settings)(scene.image, f"scene {scene.id!r}: image")


def entry_of(scene: ResolvedScene, source: SourceImage | None, run: SceneRun) -> SceneEntry:
    """The ledger's entry for this exact scene; a changed scene starts afresh."""
    expected = fingerprint(scene, source.data if source else None, run.settings.reference_format,
                           run.gateway.profile.name, [run.character_ids[name] for name in scene.characters])
    entry = run.ledger.load(scene.id)
    if entry is None or entry.fingerprint != expected:
        return SceneEntry(scene=scene.id, fingerprint=expected)
    return entry


def _files_verify(entry: SceneEntry, storage: Storage) -> bool:
    """Every recorded output is present with its recorded size and sha256."""
    return bool(entry.files) and all(_verifies(record, storage, entry.scene, name)
                                     for name, record in entry.files.items())


def _verifies(record: FileRecord, storage: Storage, scene_id: str, name: str) -> bool:
    if not storage.exists(scene_id, name):
        return False
    data = storage.read_bytes(scene_id, name)
    return len(data) == record.bytes and hashlib.sha256(data).hexdigest() == record.sha256


async def _step(step: int, signature: Signature, entry: SceneEntry, run: SceneRun,
                request: Callable[[], Awaitable[Request]], usd: float, watch: Watch) -> JobState:
    """One paid job of the chain: reuse the ledger's job when there is one, else create and record it.

    The intent to create is recorded first, so a crash between the create and its record is found
    again (by listing the provider's recent jobs) instead of being paid for twice. Each new job is
    committed against the budget before that."""
    attempts_left = run.settings.generation_attempts
    while True:
        record = entry.current(step)
        if record is not None and record.status == "completed" and record.id:
            return JobState(id=record.id, status="completed")
        if record is None or needs_new_job(record, run.retry_failed):
            run.spend.commit(usd, f"scene {entry.scene!r}: " + (f"job {step + 1} of its chain" if step else "the clip"))
            record, fresh = JobRecord(step=step), True
            entry.jobs.append(record)
            run.ledger.save(entry)
        elif record.status == "failed":
            raise VideoFailedError(record.error or f"{record.id} failed")
        else:
            fresh = False
        outgoing = await request() if record.id is None else None
        try:
            done = await tuned(generate, run.settings)(
                run.gateway, outgoing, lambda job=record: job.id, partial(_created, record, entry, run),
                run.attempt(record, signature, answer_may_be_lost=not fresh), run.policy, watch, run.fleet)
        except VideoFailedError as e:
            record.status, record.error, record.transient = "failed", str(e), e.cause_may_pass
            run.ledger.save(entry)
            attempts_left -= 1
            if not e.cause_may_pass or attempts_left == 0:
                raise
            continue
        record.status = "completed"
        run.ledger.save(entry)
        return done


def needs_new_job(record: JobRecord | None, retry_failed: bool) -> bool:
    """No job yet, or its job failed for a reason that may pass (or the user asked to pay again)."""
    return record is None or (record.status == "failed" and (record.transient or retry_failed))


def _created(record: JobRecord, entry: SceneEntry, run: SceneRun, job: JobState) -> None:
    """Record a new job's id before any waiting: it is paid for."""
    record.id, record.status = job.id, "created"
    run.known_ids.add(job.id)
    run.ledger.save(entry)


def _request_of(step: int, segment: Segment, previous: JobState | None, scene: ResolvedScene,
                source: SourceImage | None, entry: SceneEntry, run: SceneRun,
                warnings: list[str]) -> Callable[[], Awaitable[Request]]:
    """How to build the step's request, called only when a job is about to be created."""
    if segment.via == "create":
        return partial(scene_request, scene, source, entry, run, warnings)
    if segment.via == "extension":
        assert previous is not None
        return partial(_extension_request, previous.id, segment.prompt, segment.seconds)
    return partial(_continuation_request, scene, step, segment, entry, run)


async def scene_request(scene: ResolvedScene, source: SourceImage | None, entry: SceneEntry, run: SceneRun,
                         warnings: list[str]) -> Request:
    """The scene's create, its reference image prepared only now that a job is about to be created."""
    reference = await _reference(scene, source, entry, run, warnings)
    return _create(scene, scene.segments[0], reference, run)


def _create(scene: ResolvedScene, segment: Segment, reference: Reference | None, run: SceneRun) -> Request:
    """A create of the scene's model and size, carrying its characters."""
    return create_request(prompt=segment.prompt, model=scene.model, size=scene.size, seconds=segment.seconds,
                          reference=reference, characters=[run.character_ids[name] for name in scene.characters])


async def _extension_request(video_id: str, prompt: str, seconds: int) -> Request:
    return extension_request(video_id=video_id, prompt=prompt, seconds=seconds)


async def _continuation_request(scene: ResolvedScene, step: int, segment: Segment, entry: SceneEntry,
                                run: SceneRun) -> Request:
    """A new clip that starts where the previous one ended: its last frame is this create's reference."""
    report(scene.id, "preparing")
    frame = await tuned(last_frame_of, run.settings)(run.storage, scene, clip_name(step - 1),
                                                     run.settings.reference_format)
    reference = as_reference(frame)
    _keep(reference.data, f"segments/{step}.first-frame.{frame.extension}", scene.id, entry, run)
    return _create(scene, segment, reference, run)


async def _reference(scene: ResolvedScene, source: SourceImage | None, entry: SceneEntry, run: SceneRun,
                     warnings: list[str]) -> Reference | None:
    if source is None:
        return None
    if usable_as_is(source, scene, run.gateway.profile.reference_formats):
        reference = unchanged_reference(source)
    else:
        report(scene.id, "preparing")
        prepared = await tuned(transform, run.settings)(source, scene, run.settings.reference_format)
        warnings += prepared.warnings
        reference = as_reference(prepared)
    _keep(reference.data, reference.filename, scene.id, entry, run)
    return reference


def _keep(data: bytes, name: str, scene_id: str, entry: SceneEntry, run: SceneRun) -> None:
    """Store an image sent with a create next to the scene's outputs, and record it."""
    run.storage.write_bytes(data, scene_id, name)
    entry.files[name] = FileRecord(url=run.storage.location(scene_id, name), bytes=len(data),
                                   sha256=hashlib.sha256(data).hexdigest())


async def _revised(video: JobState, scene: ResolvedScene, signatures: list[Signature], entry: SceneEntry,
                   run: SceneRun) -> JobState:
    """Each revision made by the provider from the video before it, which is kept (video.rev<k>.mp4)."""
    usd = run.estimate.cost_of(scene.id).segment_usd(scene.total_seconds)
    for number, revision in enumerate(scene.revisions, start=1):
        await _keep_video(revision_name(number - 1), scene.total_seconds, video, scene, entry, run)
        step = len(scene.segments) + number - 1
        request = partial(_revision_request, revision, video.id)
        video = await _step(step, signatures[step], entry, run, request, usd,
                            Watch(scene.id, f"revising {number}/{len(scene.revisions)}"))
    return video


async def _revision_request(revision: Revision, video_id: str) -> Request:
    make = edit_request if revision.kind == "edit" else remix_request
    return make(video_id=video_id, prompt=revision.prompt)


async def _keep_video(name: str, seconds: int, video: JobState, scene: ResolvedScene, entry: SceneEntry,
                      run: SceneRun) -> None:
    """Keep a video of the chain in the scene's folder (a clip to stitch, a video before a revision), once."""
    if name in entry.files and _verifies(entry.files[name], run.storage, scene.id, name):
        return
    entry.files.update(await tuned(download, run.settings)(
        run.gateway, video, {name: "video"}, scene.id, run.storage, Expected(scene.dimensions, seconds), Fetched()))
    run.ledger.save(entry)


def _keep_copy(source: str, name: str, scene_id: str, entry: SceneEntry, run: SceneRun) -> None:
    run.storage.copy((scene_id, source), (scene_id, name))
    entry.files[name] = entry.files[source].model_copy(update={"url": run.storage.location(scene_id, name)})


async def _finished_files(scene: ResolvedScene, video: JobState, run: SceneRun) -> dict[str, FileRecord]:
    """The scene's video, thumbnail and spritesheet: from the provider, or made here from its clips."""
    if scene.stitched_locally:
        report(scene.id, "stitching")
        return await tuned(stitch, run.settings)(run.storage, scene, [clip_name(step)
                                                                     for step in range(len(scene.segments))])
    report(scene.id, "downloading")
    offered = run.gateway.profile.variants
    files = await tuned(download, run.settings)(
        run.gateway, video, {FILENAMES[variant]: variant for variant in offered}, scene.id, run.storage,
        Expected(scene.dimensions, scene.total_seconds), Fetched())
    missing: list[Variant] = [variant for variant in ("thumbnail", "spritesheet") if variant not in offered]
    if missing:
        files.update(await tuned(make_pictures, run.settings)(run.storage, scene.id, missing))
    return files


def _result(scene: ResolvedScene, entry: SceneEntry, warnings: list[str] | None = None) -> SceneResult:
    return SceneResult(
        id=scene.id, status="completed" if entry.status == "completed" else "failed",
        job_ids=[j.id for j in entry.jobs if j.id], size=scene.size, seconds=scene.total_seconds,
        files=entry.files, warnings=warnings or [], error=entry.error,
    )


@flow(name="render-scene")
def render_scene(scene: Scene, output: str, plan_name: str = "scenes", retry_failed: bool = False,
                 defaults: SceneDefaults | None = None, style: StyleBlock | None = None,
                 fleet: bool = False) -> SceneResult:
    """Render a single scene into `<output>/<plan_name>/<scene id>/`.

    Args:
        scene: The scene: prompt, image, size, seconds, extensions.
        output: Where the plan's folder is (an fsspec URL every worker can reach, e.g. s3://...).
        plan_name: The plan's folder under `output`, and its ledger.
        retry_failed: Render again a scene that failed permanently in an earlier run.
        defaults: The plan's defaults (model, size, seconds, fit) for what the scene does not set.
        style: The plan-wide style its prompt inherits.
        fleet: Hold the fleet's Prefect global limits (set up by the plan run that started this one).
    """
    settings = Settings()
    plan = Plan(name=plan_name, output=output, scenes=[scene], defaults=defaults or SceneDefaults(), style=style)
    with connect_provider(settings) as connection:
        check_settings(settings, connection.profile)
        (resolved,) = validate_plan(plan, connection.profile)
        costs = estimate(plan, [resolved], connection.profile, settings)
        costs.check()
        storage = Storage(output, settings.storage_options).child(plan_name)

        async def render() -> SceneResult:
            async with SceneRun.open(connection, storage, settings, [resolved], costs, retry_failed) as run:
                run.fleet = Fleet() if fleet else None
                return await run_scene(resolved, run)

        return run_stoppable(render())


def recorded_result(scene: ResolvedScene, storage: Storage) -> SceneResult | None:
    """A scene's outcome as its ledger has it (a scene rendered by another process), if any."""
    entry = Ledger(storage).load(scene.id)
    return None if entry is None or entry.status == "rendering" else _result(scene, entry)

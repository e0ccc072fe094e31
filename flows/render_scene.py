"""One scene, start to finish, resumable from the ledger: `run_scene` is the pipeline (check, prepare references,
make the clip, extend, revise, deliver), `_paid` one paid step of it, `render_scene` the flow of a single scene."""

from __future__ import annotations

import asyncio
import contextlib
import time

from prefect import flow, get_run_logger

from reelflow import (
    AssetsExpiredError,
    DeliveryError,
    ImageError,
    JobGoneError,
    Plan,
    ProviderUnusableError,
    ReelflowError,
    ResolvedScene,
    Settings,
    StorageError,
    UnknownJobError,
    UserError,
    VideoFailedError,
    is_transient,
)
from reelflow.costs import BudgetExceeded, estimate
from reelflow.ledger import JobRecord, Ledger, SceneEntry, needs_new_job
from reelflow.progress import report
from reelflow.providers import JobState, connect_providers
from reelflow.results import FileRecord, RejectedTake, SceneResult, rejected_name
from reelflow.reuse import Reuse, clip_name, kept_in, reuse_of
from reelflow.routes import check_route_images, checked_plan, moves_on
from reelflow.storage import Storage
from tasks._retry import tuned, unexamined
from tasks.reel import stitch
from tasks.videos import FILENAMES, VIDEO, Delivery, Order, download, generate

from ._requests import prepare_references, request_of
from ._scene_run import Chain, SceneRun, Step, revision_name
from ._stoppable import run_stoppable


async def run_scene(scene: ResolvedScene, run: SceneRun) -> SceneResult:
    """Render one scene, resuming whatever the ledger says was already paid for: check it (its images read whole,
    its ledger entry, what earlier runs made), then make what is left of its chain and deliver its files; on a
    route that cannot make it after all (see `moves_on`), on its next route.

    The scene's own failure becomes a failed result; a provider that cannot be used (its key rejected, or not
    reached at all) stops the whole run, unless the plan has other routes."""
    try:
        chain = await Chain.of(scene, run)
    except ImageError as e:  # missing, unreadable, damaged: nothing is sent, nothing paid
        return _refused(scene, e)
    reuse = _reuse(chain)
    earlier = _as_before(chain, reuse)
    if earlier is not None:
        return earlier
    chain.entry.rendering()
    chain.entry.on_route(scene.made_on)
    run.known_ids.update(j.id for j in chain.entry.jobs if j.id)
    try:
        reuse = await _retaken(chain, await _rendered(chain, reuse))
        chain.entry.completed()
        _log_rendered(chain)
        report(scene.id, "done")
    except ReelflowError as e:
        following = _moved(chain, e)
        if following is not None:
            return await run_scene(following, run)
        if isinstance(e, ProviderUnusableError) and not run.has_routes:
            raise
        _failed(chain, e)
    with contextlib.suppress(ReelflowError):  # the failure itself is already the scene's outcome
        chain.save()
    return _result(chain.entry, scene, chain.warnings, reuse.from_earlier_runs if chain.entry.status == "completed"
                   else 0)


def _moved(chain: Chain, error: ReelflowError) -> ResolvedScene | None:
    """The scene on its next route, moved there (in the ledger, with the reason), when `error` is a reason to leave
    its route (see `moves_on`), it has a next one, and no job of it may still be made on this one."""
    reason, following = moves_on(error), chain.run.next_route(chain.scene)
    if reason is None or following is None or chain.entry.making():
        return None
    chain.entry.moved(reason)
    chain.save()
    chain.run.expect([following])  # (its jobs there, told apart from the plan's others should a create be lost)
    said = f"{chain.entry.route} {reason}; moving to {following.made_on}"
    get_run_logger().warning("scene %r: %s", chain.scene.id, said)
    report(chain.scene.id, said)
    return following


async def _render_chain(chain: Chain, reuse: Reuse) -> None:
    """The scene's life, step by step: its references prepared (for the clips to be made), its clip made, each
    extension or continuation, each revision, then what it leaves delivered in its folder."""
    await prepare_references(chain, [step for step in reuse.paid if step < len(chain.scene.segments)])
    video = await _make_clip(chain)
    video = await _extended(chain, video)
    video = await _revised(chain, video)
    await _deliver(chain)


async def _make_clip(chain: Chain) -> JobState:
    return await _paid(Step(chain, 0))


async def _extended(chain: Chain, video: JobState) -> JobState:
    """Each extension of the provider's own video, or continuation from the last frame (stitched here)."""
    for number in range(1, len(chain.scene.segments)):
        video = await _paid(Step(chain, number, video))
    return video


async def _revised(chain: Chain, video: JobState) -> JobState:
    """Each revision, made by the provider from the video before it, which is kept (video.rev<k>.mp4)."""
    for number in range(len(chain.scene.segments), chain.steps):
        video = await _paid(Step(chain, number, video))
    return video


async def _deliver(chain: Chain) -> None:
    """What the chain leaves besides its steps' files: the clips stitched here, the revised video kept by name."""
    scene, run, entry = chain.scene, chain.run, chain.entry
    if scene.stitched_locally:
        report(scene.id, "stitching")
        clips = [clip_name(step) for step in range(len(scene.segments))]
        entry.files.update(await tuned(stitch, run.settings)(run.storage, scene, clips, run.settings.crossfade_seconds,
                                                             chain.checked()))
    if scene.revisions:
        name = revision_name(len(scene.revisions))
        run.storage.copy((scene.id, VIDEO), (scene.id, name))
        entry.files[name] = entry.files[VIDEO].model_copy(update={"url": run.storage.location(scene.id, name)})


async def _rendered(chain: Chain, reuse: Reuse) -> Reuse:
    """The scene's video and pictures, taking from earlier runs what `reuse` says. A reused video the provider
    no longer has (deleted before the expiry it announced, or never kept) makes the scene render once more,
    from what is kept here."""
    try:
        await _render_chain(chain, reuse)
        return reuse
    except AssetsExpiredError as e:
        if not reuse.from_earlier_runs:
            raise
        get_run_logger().warning("scene %r: %s; making again what is not kept here", chain.scene.id, e)
        _forget_videos(chain.entry)
        reuse = _reuse(chain)
        await _render_chain(chain, reuse)
        return reuse


async def _retaken(chain: Chain, reuse: Reuse) -> Reuse:
    """The scene made again while its take fails the checks, as often as the plan's `qa: retake` allows and the
    budget lets (see `_retake_due`): the failed take's files kept beside it (video.rejected1.mp4, ...), its jobs
    rejected in the ledger, and each step made anew, a new job recorded before it is sent, as any."""
    while _retake_due(chain):
        take = _set_aside(chain)
        found = take.checks.summary if take.checks else "no checks"
        said = f"its take failed the checks ({found}); making it again ({take.number} of {chain.run.qa.retake})"
        get_run_logger().warning("scene %r: %s", chain.scene.id, said)
        report(chain.scene.id, said)
        reuse = _reuse(chain)
        await _render_chain(chain, reuse)
    return reuse


def _retake_due(chain: Chain) -> bool:
    """Whether the scene's take failed its checks and is to be made again: retakes left, and the budget allows them
    (the estimate with every retake within it, and the whole take within what is left); a take left as it is
    says why in the scene's warnings."""
    video, run, entry = chain.entry.files.get(VIDEO), chain.run, chain.entry
    if video is None or video.checks is None or video.checks.verdict != "fail" or len(entry.rejected) >= run.qa.retake:
        return False
    usd = sum(Step(chain, number).usd for number in range(chain.steps))
    if run.estimate.retakes_allowed and run.spend.fits(usd):
        return True
    why = (run.estimate.retakes_note() if not run.estimate.retakes_allowed else
           f"a retake (${usd:.2f}) would take this run's spend past the budget ${run.spend.budget_usd or 0:.2f}")
    chain.warnings.append(f"its take failed the checks and is not made again: {why}")
    return False


def _set_aside(chain: Chain) -> RejectedTake:
    """The failed take's files kept under their own names (video.rejected1.mp4, ...), its jobs rejected: recorded
    in the ledger before anything is made again."""
    scene, storage, entry = chain.scene, chain.run.storage, chain.entry
    number, kept = len(entry.rejected) + 1, {}
    for name in [*FILENAMES.values(), *(revision_name(n) for n in range(len(scene.revisions) + 1))]:
        record = entry.files.pop(name, None)
        if record is not None:
            kept_as = rejected_name(name, number)
            storage.copy((scene.id, name), (scene.id, kept_as))
            kept[kept_as] = record.model_copy(update={"url": storage.location(scene.id, kept_as)})
    take = entry.retaken(kept)
    chain.save()
    return take


def _refused(scene: ResolvedScene, error: ImageError) -> SceneResult:
    get_run_logger().error("scene %r failed: %s", scene.id, error)
    report(scene.id, f"failed: {error}")
    return SceneResult(id=scene.id, status="failed", size=scene.size, seconds=scene.total_seconds, error=str(error))


def _as_before(chain: Chain, reuse: Reuse) -> SceneResult | None:
    """The scene's outcome when an earlier run decided it: rendered (its files verified), or failed for a reason a
    new run does not change unless asked (`--retry-failed`)."""
    scene, entry = chain.scene, chain.entry
    if reuse.rendered:
        get_run_logger().info("scene %r: already rendered, files verified", scene.id)
        report(scene.id, "done (rendered earlier)")
        return _result(entry, scene, reused=reuse.steps)
    if entry.status == "failed" and not entry.transient and not chain.run.retry_failed:
        said = any(job.status in ("unknown", "gone") for job in entry.chain())  # its error says the way out
        report(scene.id, "failed in an earlier run")
        result = _result(entry, scene)
        hint = "" if said else "; --retry-failed renders it again"
        return result.model_copy(update={"error": f"{entry.error} (in an earlier run{hint})"})
    return None


def _failed(chain: Chain, error: ReelflowError) -> None:
    """The scene's failure as its entry keeps it. A budget refusal or a storage failure (a full disk) is no verdict
    on the scene: a later run with more budget, or room, renders it (its paid jobs are in the ledger, so only
    their files are fetched again); nor is a provider that lost a video it said it kept, or one that could not be
    used at all (its key refused, or not reached: a plan with routes goes on without it)."""
    transient = is_transient(error) or isinstance(error, BudgetExceeded | StorageError | ProviderUnusableError)
    said = str(error)
    if isinstance(error, AssetsExpiredError):
        _forget_videos(chain.entry)
        transient, said = True, f"{said} (the next run makes again only what is not kept here)"
    chain.entry.failed(said, transient)
    get_run_logger().error("scene %r failed: %s", chain.scene.id, error)
    report(chain.scene.id, f"failed: {error}")


def _log_rendered(chain: Chain) -> None:
    """One line for the scene's outcome, naming its jobs and files (each log line costs the Prefect server a
    write: the downloads do not log one of their own)."""
    entry = chain.entry
    outputs = [name for name in FILENAMES.values() if name in entry.files]
    get_run_logger().info("scene %r: rendered by %s (%s: %d bytes)", chain.scene.id,
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


def _reuse(chain: Chain) -> Reuse:
    """What this run takes from earlier runs' jobs; an unchanged step after it whose video is gone is made
    again (its job's files expired), and so is every step after that."""
    scene, entry = chain.scene, chain.entry
    reuse = reuse_of(scene, entry, kept_in(entry, chain.run.storage), time.time())
    for step in reuse.paid:
        record = entry.current(step)
        if record is not None and record.status == "completed":
            record.expired()
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
        job.files_gone(gone)


async def _paid(step: Step) -> JobState:
    """One paid job of the chain: the ledger's job when there is one, else a new one, created and recorded; then
    what its video leaves in the scene's folder.

    The intent to create is recorded first, so a crash between the create and its record is found
    again (by listing the provider's recent jobs) instead of being paid for twice. Each new job is
    committed against the budget before that."""
    chain, run, delivery = step.chain, step.run, step.delivery()
    attempts_left = run.settings.generation_attempts
    while True:
        record = step.record
        if record is not None and record.status == "completed" and record.id:
            try:
                return await _fetched(record.id, delivery, step)
            except JobGoneError as e:
                _gone(record, e, step)
                continue
        if needs_new_job(record, run.retry_failed):
            chain.check_outage()
            run.spend.commit(step.usd, step.what)
            record, fresh = chain.entry.intend(step.number, step.usd), True
            run.made.append(record)
            chain.save()
        else:
            assert record is not None
            _refuse_unresolved(record, step)
            fresh = False
        outgoing = await request_of(step) if record.id is None else None
        order = Order(outgoing, Booked(record, chain), run.attempt(record, step.signature, not fresh), step.watch,
                      delivery)
        try:
            made = await tuned(generate, run.settings)(chain.gateway, unexamined(order), run.policy,
                                                       run.fleet_of(chain.scene))
        except JobGoneError as e:
            _gone(record, e, step)
            continue
        except VideoFailedError as e:
            record.failed(str(e), e.cause_may_pass)
            chain.save()
            attempts_left -= 1
            if not e.cause_may_pass or attempts_left == 0:
                raise
            continue
        except UnknownJobError as e:
            record.lost(str(e))
            chain.save()
            raise
        _delivered(made.files, chain)
        return made.job


def _refuse_unresolved(record: JobRecord, step: Step) -> None:
    """A step whose job failed for good, was left unknown or is gone from the provider gets no new job unasked."""
    if record.status == "failed":
        raise VideoFailedError(record.error or f"{record.id} failed")
    if record.status == "unknown":
        raise UnknownJobError(record.error or "its create's answer was lost")
    if record.status == "gone":
        raise JobGoneError(_way_out(record.error or f"the provider no longer knows job {record.id}", step))


async def _fetched(job_id: str, delivery: Delivery | None, step: Step) -> JobState:
    """A job finished in an earlier run (or try): what it leaves in the scene's folder, fetched again. Files that
    cannot be fetched are no verdict on the job unless the provider no longer knows it (then JobGoneError)."""
    job, run = JobState(id=job_id, status="completed"), step.run
    if delivery is None:
        return job
    try:
        _delivered(await tuned(download, run.settings)(step.chain.gateway, job, delivery), step.chain)
    except DeliveryError:
        await step.chain.gateway.retrieve(job_id)  # gone: JobGoneError; else the fetch itself failed, and says so
        raise
    return job


def _gone(record: JobRecord, error: JobGoneError, step: Step) -> None:
    """The provider no longer knows the step's job: on the embedded sandbox (which forgets its jobs when it stops,
    and costs nothing) it is made again; elsewhere only when the user says so (`--retry-failed`), as it is paid."""
    record.forgotten(str(error), free=step.run.embedded_sandbox)
    step.chain.save()
    if record.status == "gone" and not step.run.retry_failed:
        raise JobGoneError(_way_out(str(error), step), status=404) from error


def _way_out(cause: str, step: Step) -> str:
    return (f"{cause}; `reelflow run --retry-failed` makes it again (${step.usd:.2f} at list price), or "
            f"`reelflow jobs PLAN --adopt {step.scene.id}=JOB_ID` attaches the job it should be")


def _delivered(files: dict[str, FileRecord], chain: Chain) -> None:
    chain.entry.files.update(files)
    chain.save()


class Booked:
    """A job's ledger record, written as the job goes (see `JobBook`)."""

    def __init__(self, record: JobRecord, chain: Chain) -> None:
        self.record, self.chain = record, chain

    def recorded_id(self) -> str | None:
        return self.record.id

    def created(self, job: JobState) -> None:
        """Record a new job's id before any waiting: it is paid for. One that cannot be recorded (a full disk) is
        said at once, with the way to attach it later, and the scene stops: its job is not lost, nor paid twice."""
        self.record.created(job.id)
        scene = self.chain.scene.id
        self.chain.run.known_ids.add(job.id)
        try:
            self.chain.save()
        except StorageError as e:
            said = (f"{e}: job {job.id} was made (and is paid for) but is not in the ledger; once the ledger can be "
                    f"written, `reelflow jobs PLAN --adopt {scene}={job.id}` attaches it")
            get_run_logger().error("scene %r: %s", scene, said)
            report(scene, f"failed: {said}")
            raise StorageError(said, transient=e.transient) from e

    def withdrawn(self) -> None:
        self.chain.entry.withdraw(self.record)
        self.chain.save()

    def finished(self, job: JobState) -> None:
        """Kept with what the job leaves here, in one write (a run that stops before it asks the provider once
        more, and is told the job is finished), with what the provider says it billed."""
        self.record.finished(job.expires_at, job.billed_usd)


def _result(entry: SceneEntry, scene: ResolvedScene, warnings: list[str] | None = None,
            reused: int = 0) -> SceneResult:
    video = entry.files.get(VIDEO)
    return SceneResult(
        id=scene.id, status="completed" if entry.status == "completed" else "failed",
        job_ids=[j.id for j in entry.jobs if j.id and j.fingerprint in entry.steps and j.status != "rejected"],
        size=scene.size, seconds=scene.total_seconds, files=entry.files, warnings=warnings or [], error=entry.error,
        reused_jobs=reused, route=entry.route or scene.made_on, moves=[m.describe() for m in entry.moves],
        qa=video.checks.verdict if video and video.checks else None, rejected=entry.rejected,
    )


@flow(name="render-scene")
def render_scene(plan: Plan, retry_failed: bool = False, fleet: bool = False) -> SceneResult:
    """Render the one scene of `plan` into `<output>/<plan name>/<scene id>/`.

    Args:
        plan: A plan of one scene: the scene, with the plan's name (its folder and ledger under `output`), output
            (an fsspec URL every worker can reach, e.g. s3://...), defaults, style and provider.
        retry_failed: Render again a scene that failed permanently in an earlier run.
        fleet: Hold the fleet's Prefect global limits (set up by the plan run that started this one).
    """
    if len(plan.scenes) != 1 or plan.output is None:
        raise UserError(f"render-scene renders a plan of one scene, with its output: {plan.name!r} has "
                        f"{len(plan.scenes)} scenes{'' if plan.output else ' and no output'}")
    settings = Settings()
    routed = checked_plan(plan, settings)
    (resolved,) = routed.scenes
    costs = estimate(plan, [resolved], routed.profiles, settings)
    costs.check()
    storage = Storage(plan.output, settings.storage_options).child(plan.name)
    check_route_images(routed, storage)
    with connect_providers(settings, routed.profiles) as connections:

        async def render() -> SceneResult:
            async with SceneRun.open(connections, storage, settings, costs, retry_failed) as run:
                run.routes, run.qa = routed, plan.qa
                run.expect([resolved])
                run.fleet = fleet
                return await run_scene(resolved, run)

        return run_stoppable(render())


def recorded_result(scene: ResolvedScene, storage: Storage) -> SceneResult | None:
    """A scene's outcome as its ledger has it (a scene rendered by another process), if any."""
    entry = Ledger(storage).load(scene.id)
    return None if entry is None or entry.status == "rendering" else _result(entry, scene)

"""`mode: batch`: every scene's first job created through one Batch API batch. Each result goes into its
scene's ledger entry, so the scenes then wait, continue and download as in any run, and a run that dies
mid-way resumes the same batch."""

from __future__ import annotations

from reelflow.costs import BudgetExceeded
from reelflow.ledger import BatchRecord, SceneEntry, needs_new_job
from reelflow.plans import ResolvedScene
from reelflow.providers import ClipJob, JobState
from tasks._retry import tuned
from tasks.batch import BatchProgress, run_batch

from ._requests import request_of
from ._scene_run import Chain, SceneRun, Step


async def batched(scenes: list[ResolvedScene], run: SceneRun) -> None:
    """Create the first job of every scene that needs one in one batch (or finish the recorded batch)."""
    record = run.ledger.batch()
    if record is None or record.done:
        record = await _new_batch(scenes, run)
        if record is None:
            return
    progress = BatchProgress(run.ledger, record)
    results = await tuned(run_batch, run.settings)(run.gateway, progress, run.ledger.batch_input(), run.policy)
    for scene_id in record.scenes:
        _record(scene_id, results.get(scene_id), run)
    progress.update(done=True)


async def _new_batch(scenes: list[ResolvedScene], run: SceneRun) -> BatchRecord | None:
    """Each scene's create as a line; the intent recorded in its entry, the whole input in the ledger."""
    jobs: dict[str, ClipJob] = {}
    for scene in scenes:
        chain = await Chain.of(scene, run)
        run.warnings[scene.id] = chain.warnings  # (the scene's own run reports them)
        if not _wants_first_job(chain.entry, run.retry_failed):
            continue
        first = Step(chain, 0)
        try:
            run.spend.commit(first.usd, first.what)
        except BudgetExceeded:
            continue  # its own run reports the refusal
        job = await request_of(first)
        assert isinstance(job, ClipJob)
        chain.entry.rendering()
        run.made.append(chain.entry.intend(0, first.usd))
        chain.save()
        jobs[scene.id] = job
    if not jobs:
        return None
    record = BatchRecord(scenes=list(jobs))
    run.ledger.save_batch(record, run.gateway.batches().batch_input(jobs))
    return record


def _wants_first_job(entry: SceneEntry, retry_failed: bool) -> bool:
    if entry.status == "completed":
        return False  # verified, or fetched again from its recorded jobs, when the scene runs
    return needs_new_job(entry.current(0), retry_failed)


def _record(scene_id: str, outcome: JobState | str | None, run: SceneRun) -> None:
    """The scene's first job as the batch made it; refused lines fail the scene, lines the batch never
    ran (it expired or was cancelled) are created again by a later run."""
    entry = run.ledger.load(scene_id)
    job = entry.current(0) if entry else None
    if entry is None or job is None:
        return
    if isinstance(outcome, JobState):
        job.created(outcome.id)
        run.known_ids.add(outcome.id)
    else:
        job.failed(f"refused in the batch: {outcome}" if outcome else "the batch ended without running it",
                   may_pass=outcome is None)
    run.ledger.save(entry)

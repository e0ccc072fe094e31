"""The Batch API task: one batch of creates, from upload to results, each step recorded before the next."""

from __future__ import annotations

import asyncio
import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from reelflow.errors import TransientApiError
from reelflow.ledger import BatchRecord, Ledger
from reelflow.providers import BatchState, Gateway, JobState

from ._retry import DEFAULT_RETRIES, transient_only
from .videos import WaitPolicy

BATCH_WINDOW_SECONDS = 25 * 3600  # the 24 h completion window, and some


class BatchProgress:
    """The plan's batch record, written to the ledger whenever it advances (a plain object, so the task
    that advances it shares it with the flow)."""

    def __init__(self, ledger: Ledger, record: BatchRecord) -> None:
        self.ledger = ledger
        self.record = record

    def update(self, **changes: object) -> None:
        self.record = self.record.model_copy(update=changes)
        self.ledger.save_batch(self.record)


@task(name="batch", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def run_batch(gateway: Gateway, progress: BatchProgress, jsonl: bytes,
                    policy: WaitPolicy) -> dict[str, JobState | str]:
    """Upload the requests and create the batch (or pick up the recorded one; a create whose answer was
    lost is found by its input file), wait until it finishes, and return each request's job, or why it
    was refused, by its custom_id."""
    batches = gateway.batches()
    if progress.record.batch_id is None:
        if progress.record.input_file_id is None:
            progress.update(input_file_id=await gateway.watched(batches.upload_batch(jsonl)))
        file_id = progress.record.input_file_id
        assert file_id is not None
        batch = await gateway.watched(batches.find_batch(file_id)) if progress.record.create_sent else None
        if batch is None:
            progress.update(create_sent=True)
            batch = await gateway.creating(lambda: batches.create_batch(file_id))
            get_run_logger().info("created batch %s of %d scenes", batch.id, len(progress.record.scenes))
        progress.update(batch_id=batch.id)
    assert progress.record.batch_id is not None
    finished = await _finished(gateway, progress.record.batch_id, policy)
    if finished.status != "completed":
        get_run_logger().warning("batch %s ended %s", finished.id, finished.status)
    return await gateway.watched(batches.batch_results(finished))


async def _finished(gateway: Gateway, batch_id: str, policy: WaitPolicy) -> BatchState:
    deadline = time.monotonic() + BATCH_WINDOW_SECONDS
    pause = policy.min_seconds
    check = gateway.batches().poll_batch
    batch = await gateway.watched(check(batch_id))
    while not batch.finished:
        if time.monotonic() > deadline:
            raise TransientApiError(f"batch {batch_id} did not finish within its window")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, policy.max_seconds)
        batch = await gateway.watched(check(batch_id))
    return batch

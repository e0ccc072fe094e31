"""Limits shared by every process that renders against one Prefect server (several workers, several
runs): Prefect's global concurrency limits, so that the fleet as a whole stays under the provider's
unfinished-job and request-rate limits. Within one process the gateway's pacer still spaces requests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency, rate_limit

JOBS, CREATES = "reelflow-jobs", "reelflow-creates"


@dataclass(frozen=True)
class Fleet:
    """The names of the fleet's limits. They must exist (`set_up_fleet`): a limit that does not exist
    would limit nothing, silently, so they are used strictly."""

    jobs: str = JOBS
    creates: str = CREATES


async def set_up_fleet(max_jobs: int, requests_per_minute: int) -> Fleet:
    """Create or update the limits: `max_jobs` unfinished jobs, and creates at the provider's rate with
    one request of headroom (see the gateway's pacer)."""
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(JOBS, max_jobs)
        await client.upsert_global_concurrency_limit_by_name(
            CREATES, max(1, requests_per_minute - 1), slot_decay_per_second=requests_per_minute / 60)
    return Fleet()


@contextlib.asynccontextmanager
async def job_slot(fleet: Fleet | None) -> AsyncIterator[None]:
    """Hold one of the fleet's unfinished-job slots for the life of a job."""
    if fleet is None:
        yield
        return
    async with concurrency(fleet.jobs, strict=True):
        yield


async def turn_to_create(fleet: Fleet | None) -> None:
    if fleet is not None:
        await rate_limit(fleet.creates, strict=True)

"""Limits shared by every process that renders against one Prefect server (several workers, several
runs): Prefect's global concurrency limits, so that the fleet as a whole stays under the provider's
unfinished-job and request-rate limits. Within one process the gateway's pacer still spaces requests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency, rate_limit

from reelflow import Settings, UserError
from reelflow.profiles import ProviderProfile


@dataclass(frozen=True)
class Fleet:
    """The names of one provider's fleet limits (a plan with routes holds each provider's own). They must exist
    (`set_up_fleet`): a limit that does not exist would limit nothing, silently, so they are used strictly."""

    provider: str

    @property
    def jobs(self) -> str:
        return f"reelflow-jobs-{self.provider}"

    @property
    def creates(self) -> str:
        return f"reelflow-creates-{self.provider}"


async def set_up_fleet(profiles: list[ProviderProfile], settings: Settings) -> None:
    """Create or update the limits of each provider of a run: `REELFLOW_MAX_CONCURRENT` unfinished jobs, and
    creates at the provider's rate (`REELFLOW_REQUESTS_PER_MINUTE`, else its profile's) with one request of
    headroom (see the gateway's pacer). UserError, before any is set up, when a provider's rate is unknown."""
    rates = {profile.name: settings.requests_per_minute or profile.requests_per_minute for profile in profiles}
    known = {name: per_minute for name, per_minute in rates.items() if per_minute is not None}
    if unknown := [name for name in rates if name not in known]:
        raise UserError(f"rendering on a fleet needs each provider's request rate ({', '.join(unknown)}'s is not in "
                        "its profile): set REELFLOW_REQUESTS_PER_MINUTE")
    async with get_client() as client:
        for name, per_minute in known.items():
            fleet = Fleet(name)
            await client.upsert_global_concurrency_limit_by_name(fleet.jobs, settings.max_concurrent)
            await client.upsert_global_concurrency_limit_by_name(
                fleet.creates, max(1, per_minute - 1), slot_decay_per_second=per_minute / 60)


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

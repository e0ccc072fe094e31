"""The provider as the pipeline uses it, whatever its dialect: requests paced to the provider's limit,
creates sent once (a 429 waited out: nothing was created), outages reported while retries go on, and
downloads streamed to a file, hashed as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from .._bucket import TokenBucket
from ..errors import (
    ApiError,
    JobGoneError,
    NoAnswerError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from ..profiles import ProviderProfile, Variant
from ..progress import ProviderHealth
from ..storage import storage_error
from ._base import ClipJob, JobSpec, JobState, Reference, VideoProvider

Created = TypeVar("Created")
# A job just made may not be found for a moment, and a gateway may lose its way once: a 404 for a recorded job is
# asked again after these pauses (seconds) before it counts as gone.
GONE_AFTER = (0.5, 1.5, 3.0)


@dataclass(frozen=True)
class Downloaded:
    bytes: int
    sha256: str
    declared_bytes: int | None  # the Content-Length: of the body as sent, compressed or not
    received_bytes: int  # of the body as sent (a gateway may gzip it; `bytes` counts it decoded)

    @property
    def truncated(self) -> bool:
        return self.declared_bytes is not None and self.received_bytes != self.declared_bytes


def ambiguous(error: TransientApiError) -> bool:
    """Whether a create that failed so may still have made its job: a 5xx or a 408 comes after the request reached
    the provider or a gateway in front of it, which may have passed it on before failing (a gateway's 502 or 504
    says nothing of what the provider did). A refused connection, a rate limit or a 409 made nothing (and a
    `NoAnswerError` says so itself)."""
    return error.status is not None and (error.status >= 500 or error.status == 408)


class BatchState(Protocol):
    """A batch as its dialect reports it: its id, the provider's word for its status, whether it ended."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def finished(self) -> bool: ...


@runtime_checkable
class Batching(Protocol):
    """A dialect with a batch API for creates (an offline queue): one input of many creates, run as one batch."""

    def batch_input(self, jobs: dict[str, ClipJob]) -> bytes: ...

    async def upload_batch(self, data: bytes) -> str: ...

    async def create_batch(self, input_id: str) -> BatchState: ...

    async def find_batch(self, input_id: str) -> BatchState | None: ...

    async def poll_batch(self, batch_id: str) -> BatchState: ...

    async def batch_results(self, batch: Any) -> dict[str, JobState | str]: ...


class Pacer:
    """The provider's request limit kept on this side, with the provider's own bucket, so its 429s are
    never earned. Callers wait their turn in order.

    One request of headroom: the provider counts a request when it arrives, this side when it leaves, and
    the delay between varies (the first request also opens the connection)."""

    def __init__(self, per_minute: int) -> None:
        self.bucket = TokenBucket(per_minute, burst=max(1, per_minute - 1))
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            while wait := self.bucket.try_take():
                await asyncio.sleep(wait)


class Gateway:
    """A provider of any dialect: create, check, download, find a lost job, create a character, batch."""

    def __init__(self, provider: VideoProvider, profile: ProviderProfile, pacer: Pacer | None = None,
                 create_retries: int = 3) -> None:
        self.provider = provider
        self.profile = profile
        self.pacer = pacer
        self.create_retries = create_retries
        self.health = ProviderHealth()

    async def send(self, job: JobSpec) -> JobState:
        """Create a job (see `ClipJob`, `ExtensionJob`, `RevisionJob`)."""
        return await self.creating(lambda: self.provider.submit(job))

    async def retrieve(self, job_id: str) -> JobState:
        """The job as the provider reports it; one it answers 404 for (again after `GONE_AFTER`) is gone."""
        for pause in (*GONE_AFTER, None):
            try:
                async with self._watched():
                    return await self.provider.poll(job_id)
            except PermanentApiError as e:
                if e.status != 404:
                    raise
                if pause is None:
                    raise JobGoneError(f"the provider no longer knows job {job_id} (404: it expired, or was made with "
                                       f"another account or on another server): {e}", status=404) from e
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # (the last pause raises)

    async def find_job(self, job: JobSpec, since: float, exclude: frozenset[str] = frozenset()) -> JobState | None:
        """The job a create whose answer never arrived made, if the provider can say (see `find_lost`)."""
        async with self._watched():
            return await self.provider.find_lost(job, since, exclude)

    async def create_character(self, name: str, clip: Reference) -> str:
        async with self._watched():
            return await self.provider.create_character(name, clip)

    async def check_access(self, models: list[str]) -> set[str] | None:
        """Whether the provider answers and accepts the key, and which of `models` it offers (see `check_access`
        of `VideoProvider`)."""
        return await self.provider.check_access(models)

    async def download(self, job: JobState, variant: Variant, target: Path) -> Downloaded:
        """Stream one file of a finished job to a local file, hashing as it goes (memory stays flat)."""
        digest = hashlib.sha256()
        written = 0
        async with self._watched(), self.provider.download(job, variant) as body:
            try:
                with target.open("wb") as sink:
                    async for chunk in body.chunks:
                        sink.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            except OSError as e:  # this machine's disk (full, say), not the provider
                raise storage_error(f"download the {variant} of {job.id}: cannot keep it in {target.parent}",
                                    e) from e
            received = body.received_bytes()
        return Downloaded(written, digest.hexdigest(), body.declared_bytes, received)

    def batches(self) -> Batching:
        if not isinstance(self.provider, Batching):
            raise PermanentApiError(f"provider {self.profile.name!r} ({self.provider.dialect}) has no batch API")
        return self.provider

    async def creating(self, create: Callable[[], Awaitable[Created]]) -> Created:
        """A job-creating request, sent without blind retries: a retried create whose first answer was lost
        pays twice. A rate-limit refusal is safe to repeat (nothing was created), so it is, after the
        provider's wait; anything else is left to the caller, who looks for the lost job first. A create
        answered 5xx or 408 is one whose answer was lost (see `ambiguous`)."""
        refusals = 0
        while True:
            if self.pacer is not None:
                await self.pacer.wait()
            try:
                async with self._watched():
                    return await create()
            except RateLimitedError as e:
                refusals += 1
                if refusals > self.create_retries:
                    raise
                await asyncio.sleep(e.retry_after)
            except TransientApiError as e:
                if not ambiguous(e):
                    raise
                raise NoAnswerError(f"{e} (answered after the request reached the provider, or a gateway before "
                                    "it: the job may have been made)", status=e.status, code=e.code) from e

    async def watched(self, call: Awaitable[Created]) -> Created:
        """Any other call to the provider, its outages reported like the rest."""
        async with self._watched():
            return await call

    @contextlib.asynccontextmanager
    async def _watched(self) -> AsyncIterator[None]:
        """A failure that may pass (a 5xx, a timeout, a dropped connection) is the provider's health: reported
        once while retries go on, until it answers again. Its rate limits are no outage."""
        started = time.time()
        try:
            yield
        except RateLimitedError:
            raise
        except ApiError as e:
            if e.transient:
                self.health.failed(started, str(e))
            raise
        self.health.answered()

    async def close(self) -> None:
        await self.provider.close()

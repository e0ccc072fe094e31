"""What every dialect speaks: dialect-neutral jobs and states, and the small interface a dialect implements.

A *dialect* is one provider API's wire format (OpenAI's `/v1/videos`, OpenRouter's `/api/v1/videos`, ...),
in one module; a *profile* says which dialect a provider speaks and everything about its limits and prices.
Above this line nothing knows a route, a field name or a status word of any provider."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import SecretStr

from ..profiles import Capabilities as Capabilities  # one vocabulary of capabilities, the profiles'
from ..profiles import ImageTransport as ImageTransport
from ..profiles import Variant as Variant

if TYPE_CHECKING:
    from ..profiles import ProviderProfile

Status = Literal["queued", "running", "completed", "failed"]


@dataclass(frozen=True)
class Reference:
    """An image a job starts from (or lands on): its bytes, and, for providers that fetch images themselves,
    a URL they can fetch it from (a presigned object-store URL)."""

    filename: str
    data: bytes
    media_type: str
    url: str | None = None


@dataclass(frozen=True)
class ClipJob:
    """A new video from a prompt, optionally starting on `first_frame` and landing on `last_frame`."""

    prompt: str
    model: str
    size: str
    seconds: int
    first_frame: Reference | None = None
    last_frame: Reference | None = None
    characters: tuple[str, ...] = ()
    audio: bool | None = None  # None: the provider's default
    seed: int | None = None
    negative: str | None = None  # what to avoid, for a dialect that takes it apart from the prompt
    subjects: tuple[Reference, ...] = ()  # images of what the video keeps consistent (a person, a product)
    provider_options: Mapping[str, Any] = field(default_factory=dict)  # the upstream provider's own, passed through
    @property
    def shows_seconds(self) -> int:
        return self.seconds


@dataclass(frozen=True)
class ExtensionJob:
    """`seconds` more of the provider's own video `source` (which is `size`, and `total_seconds` long after),
    by the model that made it."""

    source: str
    prompt: str
    seconds: int
    size: str
    total_seconds: int
    model: str = ""

    @property
    def shows_seconds(self) -> int:
        return self.total_seconds


@dataclass(frozen=True)
class RevisionJob:
    """The provider's video `source` changed as `prompt` says: edited in place, or made again (remixed)."""

    kind: Literal["edit", "remix"]
    source: str
    prompt: str
    size: str
    total_seconds: int
    model: str = ""  # the model that made `source`

    @property
    def shows_seconds(self) -> int:
        return self.total_seconds


JobSpec = ClipJob | ExtensionJob | RevisionJob


def id_shaped(given: str, pattern: re.Pattern[str], shape: str) -> str:
    """`given`, stripped, when the whole of it has the shape of a provider's job id; else ValueError naming the shape
    (an id goes into the provider's URLs: no slash, dot-dot or space may slip in where the shape has none)."""
    candidate = given.strip()
    if len(candidate) > 512 or not pattern.fullmatch(candidate):
        raise ValueError(f"{given[:80]!r} is not a job id of this provider ({shape})")
    return candidate


def action_of(job: JobSpec) -> str:
    """What the job does, in a few words, for messages."""
    if isinstance(job, ExtensionJob):
        return f"extend {job.source}"
    if isinstance(job, RevisionJob):
        return f"{job.kind} {job.source}"
    return "create a video"


@dataclass(frozen=True)
class JobState:
    """A job as the provider last reported it, in reelflow's words (the dialect translates)."""

    id: str
    status: Status
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None
    transient: bool = False  # a failure whose cause may pass: a new job may succeed (the dialect's verdict)
    poll_after: float | None = None  # the provider's hint: seconds until the next status check is worth it
    outputs: tuple[str, ...] = ()  # URLs of the finished job's files, when the provider hands them out
    queue_position: int | None = None  # a queued job's place: how many jobs are ahead of it, when the provider says
    expires_at: float | None = None  # when the provider deletes a finished job's files (Unix time), if it says
    billed_usd: float | None = None  # what the provider says it billed for the job, once finished, if it says

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass
class Body:
    """A download as it streams in: its chunks, the length it declared, and the bytes received on the wire
    so far (a gateway may compress the body: the declared length counts those)."""

    chunks: AsyncIterator[bytes]
    declared_bytes: int | None
    received_bytes: Callable[[], int]


@dataclass(frozen=True)
class WireRequest:
    """A job-creating request exactly as a dialect sends it, for the dry run: its route, its fields (as the
    wire has them), and the files it carries."""

    route: str
    fields: Mapping[str, Any]  # a Reference where the body carries an image (as a URL, or inline)
    files: Mapping[str, Reference] = field(default_factory=dict)  # uploaded as multipart parts


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a dialect needs to connect: where, with which key, for which profile, and the HTTP
    settings (`retries`: of requests safe to repeat; job-creating requests are sent once)."""

    base_url: str | None  # None: the SDK's own default (one per region, say)
    api_key: SecretStr | None  # None: the SDK finds its own credentials (for a cloud project)
    profile: ProviderProfile
    timeout_seconds: float = 120
    retries: int = 3
    project: str | None = None  # a cloud project and its region, for dialects that are reached through one
    location: str | None = None
    output: str | None = None  # where the run writes its videos (a URL): a provider that can write there itself
    # (Google's, to gs://) may deliver to it
    callback_url: str | None = None  # where the provider posts a job's end (`reelflow webhooks`), for a dialect
    # that names it per request (OpenRouter's `callback_url`)


class VideoProvider(Protocol):
    """One provider API, as reelflow drives it. Every method maps the provider's failures to reelflow's own
    errors (`TransientApiError`, `RateLimitedError`, `PermanentApiError`, `AuthenticationError`,
    `AssetsExpiredError`), once, here at the boundary."""

    dialect: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, config: ProviderConfig) -> None: ...

    async def submit(self, job: JobSpec) -> JobState:
        """Create the job, sent once: never retried blindly (a retried create whose answer was lost pays twice)."""
        ...

    async def poll(self, job_id: str) -> JobState: ...

    def download(self, job: JobState, variant: Variant) -> contextlib.AbstractAsyncContextManager[Body]:
        """A finished job's file, streamed."""
        ...

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        """The job `job` describes, created since `since` (this machine's clock) by a create whose answer never
        arrived, if the provider can say; None when it cannot (then it may be paid twice)."""
        ...

    async def create_character(self, name: str, clip: Reference) -> str: ...

    async def check_access(self, models: list[str]) -> set[str] | None:
        """One cheap authenticated call, or a few (nothing created, nothing paid), for `reelflow doctor`: raises
        `AuthenticationError` when the key is refused and `ProviderUnreachableError` when no connection can be made;
        returns which of `models` the provider offers today, or None when it lists no models."""
        ...

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        """The request that creates `job` on the provider of `profile`, as it goes out (images as `Reference`s
        where the body carries them)."""
        ...

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        """How a run waits for a job and fetches its files, in the dialect's routes (the dry run's last line)."""
        ...

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        """The provider's id of the job that `request` (its route tells the model or endpoint) made, from what a user
        gives as its id (what the provider's dashboard shows); raises ValueError saying what an id looks like."""
        ...

    async def close(self) -> None: ...

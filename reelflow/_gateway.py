"""The one place that talks to the video API. SDK errors become reelflow's own errors here, once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2
import openai
from openai import AsyncOpenAI

from ._bucket import TokenBucket
from ._errors import ApiError, AuthenticationError, PermanentApiError, TransientApiError
from ._profiles import ProviderProfile
from ._settings import Settings

Variant = Literal["video", "thumbnail", "spritesheet"]
# Every client.videos.* call carries this notice in openai 3.x: expected, so not shown to users.
warnings.filterwarnings("ignore", message="The Sora API is scheduled to permanently shut down",
                        category=DeprecationWarning, module=__name__)
_TRANSIENT_STATUS = {408, 409, 429}
CLOCK_SKEW_SECONDS = 120  # between this machine's clock and the provider's `created_at`
_RUNNING = ("queued", "in_progress")
_TRANSIENT_FAILURES = {"internal_error", "server_error", "timeout", "rate_limit_exceeded", "service_unavailable"}


@dataclass(frozen=True)
class JobState:
    """A video job as the provider last reported it."""

    id: str
    status: str
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None
    poll_after: float | None = None

    @property
    def finished(self) -> bool:
        """Any state but queued/in_progress ends the job (gateways add e.g. `expired`, `cancelled`)."""
        return self.status not in _RUNNING

    @property
    def failure_is_transient(self) -> bool:
        return self.error_code in _TRANSIENT_FAILURES


@dataclass(frozen=True)
class Reference:
    filename: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Downloaded:
    bytes: int
    sha256: str
    declared_bytes: int | None


CREATE, EXTENSIONS = "POST /v1/videos", "POST /v1/videos/extensions"


@dataclass(frozen=True)
class Request:
    """A job-creating request exactly as it goes out: its endpoint and body fields (what a dry run shows)."""

    endpoint: str
    fields: dict[str, Any]
    reference: Reference | None = None

    @property
    def action(self) -> str:
        return f"extend {self.fields['video']['id']}" if self.endpoint == EXTENSIONS else "create a video"


def create_request(*, prompt: str, model: str, size: str, seconds: int, reference: Reference | None = None,
                   characters: list[str] | None = None) -> Request:
    fields: dict[str, Any] = {"prompt": prompt, "model": model, "size": size, "seconds": str(seconds)}
    if characters:
        fields["characters"] = [{"id": character} for character in characters]
    return Request(CREATE, fields, reference)


def extension_request(*, video_id: str, prompt: str, seconds: int) -> Request:
    return Request(EXTENSIONS, {"prompt": prompt, "seconds": str(seconds), "video": {"id": video_id}})


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
    """The video API as reelflow uses it: create, extend, retrieve, download."""

    def __init__(self, client: AsyncOpenAI, profile: ProviderProfile, pacer: Pacer | None = None,
                 create_retries: int = 3) -> None:
        self.client = client
        self.profile = profile
        self.pacer = pacer
        self.create_retries = create_retries

    async def send(self, request: Request) -> JobState:
        """Send a job-creating request (see `create_request`, `extension_request`)."""
        async with self._translated(request.action):
            video = await self._creating(lambda client: _call(client, request))
        return _state(video)

    async def create_character(self, name: str, clip: Reference) -> str:
        """Upload a character's clip; its id goes into the `characters` of later creates."""
        async with self._translated(f"create character {name!r}"):
            character = await self.client.videos.create_character(
                name=name, video=(clip.filename, clip.data, clip.media_type))
        if not character.id:
            raise PermanentApiError(f"create character {name!r}: the provider returned no id")
        return character.id

    async def find_job(self, *, prompt: str, size: str, seconds: int, since: float,
                       exclude: frozenset[str] = frozenset()) -> JobState | None:
        """A job created since `since` (unix time) with exactly these fields: one whose create answer
        never arrived (a crash or a lost connection), to adopt instead of paying for it again."""
        earliest = since - CLOCK_SKEW_SECONDS
        async with self._translated("look for a job whose answer was lost"):
            async for video in self.client.videos.list(order="desc", limit=50):
                if video.created_at < earliest:
                    break
                if (video.prompt, video.size, video.seconds) == (prompt, size, str(seconds)) and (
                        video.id not in exclude):
                    return _state(video)
        return None

    async def retrieve(self, video_id: str) -> JobState:
        async with self._translated(f"check {video_id}"):
            raw = await self.client.videos.with_raw_response.retrieve(video_id)
            video = raw.parse()
        hint = raw.headers.get("openai-poll-after-ms")
        return _state(video, poll_after=int(hint) / 1000 if hint and hint.isdigit() else None)

    async def download(self, video_id: str, variant: Variant, target: Path) -> Downloaded:
        """Stream one content variant to a local file, hashing as it goes (memory stays flat)."""
        digest = hashlib.sha256()
        written = 0
        streamed = self.client.videos.with_streaming_response.download_content(video_id, variant=variant)
        async with self._translated(f"download the {variant} of {video_id}"), streamed as response:
            declared = response.headers.get("content-length")
            with target.open("wb") as sink:
                async for chunk in response.iter_bytes():
                    sink.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
        return Downloaded(written, digest.hexdigest(), int(declared) if declared else None)

    async def close(self) -> None:
        await self.client.close()

    async def _creating(self, call: Callable[[AsyncOpenAI], Awaitable[openai.types.Video]]) -> openai.types.Video:
        """A job-creating request, sent without the SDK's blind retries: a retried POST whose first
        answer was lost pays twice. A 429 is safe to repeat (nothing was created), so it is, after the
        provider's `retry-after-ms`; anything else is left to the caller, who looks for the lost job first."""
        once = self.client.with_options(max_retries=0)
        refusals = 0
        while True:
            if self.pacer is not None:
                await self.pacer.wait()
            try:
                return await call(once)
            except openai.RateLimitError as e:
                refusals += 1
                if refusals > self.create_retries or e.code == "insufficient_quota":
                    raise
                await asyncio.sleep(_retry_after(e.response.headers))

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except openai.APIError as e:
            raise self._translate(action, e) from e
        except httpx2.HTTPError as e:  # raised while a streamed body is being read
            raise TransientApiError(f"{action}: the connection broke ({type(e).__name__})") from e

    def _translate(self, action: str, error: openai.APIError) -> ApiError:
        if isinstance(error, openai.AuthenticationError):
            return AuthenticationError(f"{action}: the provider rejected the API key (401); check OPENAI_API_KEY",
                                       status=401, code=error.code)
        if isinstance(error, openai.APIConnectionError):
            kind = "timed out" if isinstance(error, openai.APITimeoutError) else "could not connect"
            return TransientApiError(f"{action}: {kind} ({self.client.base_url})")
        status = error.status_code if isinstance(error, openai.APIStatusError) else None
        said = error.body.get("message", error.message) if isinstance(error.body, dict) else error.message
        message = f"{action}: {status} {said}" if status else f"{action}: {said}"
        if error.code == "insufficient_quota":
            return PermanentApiError(message, status=status, code=error.code)
        if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
            return TransientApiError(message, status=status, code=error.code)
        return PermanentApiError(message, status=status, code=error.code)


def _call(client: AsyncOpenAI, request: Request) -> Awaitable[openai.types.Video]:
    fields = dict(request.fields)
    if request.reference is not None:
        reference = request.reference
        fields["input_reference"] = (reference.filename, reference.data, reference.media_type)
    if request.endpoint == EXTENSIONS:
        video = fields.pop("video")  # a {id} reference goes in the body: the SDK only types uploads
        return client.videos.extend(**fields, video=openai.omit, extra_body={"video": video})  # type: ignore[arg-type]
    untyped = {"characters": fields.pop("characters")} if "characters" in fields else None  # not in the SDK's types
    return client.videos.create(**fields, extra_body=untyped)


def _retry_after(headers: Mapping[str, str]) -> float:
    """The provider's wait before a retry, as the SDK reads it: `retry-after-ms`, else `retry-after`, else 1 s."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            with contextlib.suppress(ValueError):
                return min(max(float(value) * scale, 0.0), 60.0)
    return 1.0


def _state(video: openai.types.Video, poll_after: float | None = None) -> JobState:
    error = video.error
    return JobState(
        id=video.id, status=str(video.status), progress=video.progress or 0,
        error_code=error.code if error else None, error_message=error.message if error else None,
        poll_after=poll_after,
    )


def connect(base_url: str, api_key: str, profile: ProviderProfile, settings: Settings) -> Gateway:
    """A gateway with the settings' retries, timeout and request pacing."""
    retries, per_minute = settings.request_retries, settings.requests_per_minute
    client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=retries,
                         timeout=settings.request_timeout_seconds)
    return Gateway(client, profile, Pacer(per_minute) if per_minute else None, retries)

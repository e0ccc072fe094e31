"""What Google's two video dialects share (`google-genai`: Veo; `google-interactions`: Gemini Omni), both through
google-genai's own client: its clients over HTTP clients of reelflow's own, a finished video's bytes (inline, or an
object at a `gs://` URI read through fsspec), and the verdict on Google's errors."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import fsspec
import google.auth.exceptions
import httpx2
from google import genai
from google.genai import errors, types

from ..errors import ApiError, AuthenticationError, PermanentApiError, RateLimitedError, TransientApiError
from ..profiles import ASPECT_RATIOS, RESOLUTION_LINES, frame_of
from ._base import Body, JobSpec, JobState, ProviderConfig, Reference, Variant
from ._http import transport_error

if TYPE_CHECKING:
    from ..profiles import ProviderProfile

# google.rpc.Code words of a cause that may pass (unavailable, past its deadline, out of quota, aborted, internal).
PASSING_STATUS = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"})


class GoogleDialect(abc.ABC):
    """What Google's dialects do alike: their clients (`client`, made by the dialect on `clients`), a finished
    job's video kept until it is downloaded (asked again by a run that resumes), no job list, no characters, and
    the key check of `reelflow doctor`."""

    product: ClassVar[str]  # the provider's video model, for messages ("Veo")
    client: genai.Client

    def __init__(self, config: ProviderConfig) -> None:
        self.clients = GoogleClients(config)
        self.profile: ProviderProfile = config.profile
        self.key_variable = config.profile.credentials.api_key
        self.videos: dict[str, Any] = {}  # finished jobs' videos, until they are downloaded
        self.output = config.output

    def _delivered_to(self, vertex: bool) -> str | None:
        """Where Vertex writes the videos when the run's output is on Cloud Storage (then read from there through
        fsspec, gcsfs installed); None: they come inline."""
        if not vertex or not (self.output or "").startswith("gs://"):
            return None
        return f"{str(self.output).rstrip('/')}/.google-deliveries/"

    @abc.abstractmethod
    async def poll(self, job_id: str) -> JobState: ...

    @abc.abstractmethod
    def _translated(self, action: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    @abc.abstractmethod
    def _video_parts(self, video: Any) -> tuple[bytes | None, str | None]:
        """A kept video's bytes (when it came inline) and its URI (when it is stored)."""

    def _kept(self, job_id: str, video: Any, uri: str | None) -> JobState:
        """A finished job whose `video` (at `uri`, if stored) is kept until it is downloaded."""
        self.videos[job_id] = video
        return JobState(id=job_id, status="completed", progress=100, outputs=(uri,) if uri else ())

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        """The finished job's video: its bytes (inline), or the object at its URI (`gs://`, read through fsspec)."""
        data, uri = self._video_parts(self.videos.pop(job.id, None) or await self._video_of(job.id))
        if data is not None:
            async with inline_body(data) as body:
                yield body
            return
        if uri is None:
            raise PermanentApiError(f"download {job.id}: the job's video has neither bytes nor a URI")
        async with stored_body(uri) as body:
            yield body

    async def _video_of(self, job_id: str) -> Any:
        """The video of a finished job: asked again (a run that resumes has none kept)."""
        state = await self.poll(job_id)
        if state.status != "completed":
            raise PermanentApiError(f"{job_id} has no video ({state.status}: {state.error_message})")
        return self.videos.pop(job_id)

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        return None  # jobs are not listed, and a create carries no client reference

    async def create_character(self, name: str, clip: Reference) -> str:
        raise PermanentApiError(f"create character {name!r}: {self.product} has no characters (use subjects)")

    async def check_access(self, models: list[str]) -> set[str] | None:
        """Each model asked for by name: `client.aio.models.get`, which google-genai 3.6.1 sends as
        `GET {version}/models/{model}` on the Gemini API and `GET {version}/publishers/google/models/{model}` on
        Vertex (`_api_client._build_request` leaves GETs of `publishers/...` without projects/.../locations/...:
        Vertex's publisher model), authenticated as every call; NOT_FOUND: not offered."""
        offered = set()
        for model in models or [self.profile.default_model]:
            try:
                async with self._translated(f"look up model {model}"):
                    await self.client.aio.models.get(model=model)
            except PermanentApiError as e:
                if e.status != 404:
                    raise
                continue
            offered.add(model)
        return offered

    async def close(self) -> None:
        await self.clients.close()


class GoogleClients:
    """A dialect's google-genai clients, over HTTP clients of our own (httpx2 throughout: the SDK would take aiohttp
    for async calls where it is installed, and its errors are not mapped here), closed together."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.http = httpx2.AsyncClient(timeout=config.timeout_seconds, follow_redirects=True)
        self.unused_sync = httpx2.Client()
        self.made: list[genai.Client] = []

    def client(self, attempts: int, **where: Any) -> genai.Client:
        """A client reaching `where` (an API key, Vertex, a project and region: `genai.Client`'s own arguments),
        each request tried `attempts` times."""
        options = types.HttpOptions(
            base_url=self.config.base_url, timeout=int(self.config.timeout_seconds * 1000),
            httpx_async_client=self.http, httpx_client=self.unused_sync,
            retry_options=types.HttpRetryOptions(attempts=attempts, initial_delay=0.5, max_delay=8))
        made = genai.Client(http_options=options, **where)
        self.made.append(made)
        return made

    async def close(self) -> None:
        for made in self.made:
            await made.aio.aclose()
        await self.http.aclose()
        self.unused_sync.close()


@contextlib.asynccontextmanager
async def translated(action: str, where: str, key_variable: str | None) -> AsyncIterator[None]:
    """google-genai's failures (its errors, Google's credentials, the transport) in reelflow's terms."""
    try:
        yield
    except ApiError:
        raise
    except errors.APIError as e:
        raise google_error(action, e.code, str(e.status or ""), str(e.message), key_variable) from e
    except google.auth.exceptions.GoogleAuthError as e:
        raise AuthenticationError(f"{action}: Google credentials: {e} (set GOOGLE_APPLICATION_CREDENTIALS, or "
                                  f"run `gcloud auth application-default login`)") from e
    except httpx2.TransportError as e:  # timeouts too
        raise transported(action, where, e) from e


def transported(action: str, where: str, error: Exception) -> ApiError:
    """A transport failure (`error`, or the httpx2 error that caused it): one that made no connection reached
    nothing."""
    cause = error if isinstance(error, httpx2.TransportError) else error.__cause__
    unreached = isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout)
    return transport_error(action, where, error, reached=not unreached)


@contextlib.asynccontextmanager
async def inline_body(data: bytes) -> AsyncIterator[Body]:
    async def whole() -> AsyncIterator[bytes]:
        yield data

    yield Body(whole(), len(data), lambda: len(data))


@contextlib.asynccontextmanager
async def stored_body(uri: str) -> AsyncIterator[Body]:
    """The object at `uri`, streamed through fsspec (`gs://` with gcsfs installed: `pip install reelflow[gcs]`)."""
    try:
        handle = fsspec.open(uri, "rb").open()
    except (ImportError, ValueError) as e:
        raise PermanentApiError(f"download {uri}: {e} (pip install 'reelflow[gcs]' for gs:// outputs)") from e
    except OSError as e:
        raise TransientApiError(f"download {uri}: {e}") from e
    received = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal received
        while chunk := handle.read(2**20):
            received += len(chunk)
            yield chunk

    try:
        yield Body(chunks(), handle.size if hasattr(handle, "size") else None, lambda: received)
    finally:
        handle.close()


def filtered(job_id: str, why: str) -> JobState:
    """A job that ended without a video, filtered for safety: final."""
    return JobState(id=job_id, status="failed", error_code="filtered", error_message=f"the video was filtered: {why}")


def google_frame(size: str, product: str) -> tuple[str, str]:
    """The aspect ratio and resolution word (`720p`, `4k`: Google's, lower case) of a size."""
    frame = frame_of(size, list(ASPECT_RATIOS), list(RESOLUTION_LINES))
    if frame is None:
        raise PermanentApiError(f"{size} is no aspect ratio and resolution {product} makes")
    return frame[0], frame[1].lower()


def google_error(action: str, status: int | None, word: str, message: str, key_variable: str | None) -> ApiError:
    """An error answer of Google's (`status`, its status word, its message) in reelflow's terms."""
    said = f"{action}: {status} {word}: {message}"
    if status == 401 or word.upper() == "UNAUTHENTICATED" or "API key not valid" in message:
        # (Google answers a bad API key with 400 INVALID_ARGUMENT, not 401: known by its words)
        check = f"; check {key_variable}" if key_variable else ""
        return AuthenticationError(f"{action}: the provider rejected the credentials (401){check}", status=401)
    if status == 429 or word.upper() == "RESOURCE_EXHAUSTED":
        return RateLimitedError(said, retry_after=2.0, status=429, code="RESOURCE_EXHAUSTED")
    if status in (408, 500, 502, 503, 504) or word.upper() in PASSING_STATUS:
        return TransientApiError(said, status=status, code=word)
    return PermanentApiError(said, status=status, code=word)

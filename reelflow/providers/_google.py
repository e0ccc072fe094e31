"""What Google's two video dialects share (`google-genai`: Veo; `google-interactions`: Gemini Omni), both through
google-genai's own client: its HTTP options on clients of reelflow's own, a finished video's bytes (inline, or an
object at a `gs://` URI read through fsspec), and the verdict on Google's errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import fsspec
import httpx2
from google.genai import types

from ..errors import ApiError, AuthenticationError, PermanentApiError, RateLimitedError, TransientApiError
from ._base import Body, ProviderConfig

# google.rpc.Code words of a cause that may pass (unavailable, past its deadline, out of quota, aborted, internal).
PASSING_STATUS = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"})


def http_options(config: ProviderConfig, http: httpx2.AsyncClient, unused_sync: httpx2.Client,
                 attempts: int) -> types.HttpOptions:
    """google-genai's options for clients of our own (httpx2 throughout: the SDK would take aiohttp for async
    calls where it is installed, and its errors are not mapped here), each request tried `attempts` times."""
    return types.HttpOptions(base_url=config.base_url, timeout=int(config.timeout_seconds * 1000),
                             httpx_async_client=http, httpx_client=unused_sync,
                             retry_options=types.HttpRetryOptions(attempts=attempts, initial_delay=0.5, max_delay=8))


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

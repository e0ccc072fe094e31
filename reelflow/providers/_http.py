"""What dialects that speak HTTP themselves share: a streamed response as a download, the provider's retry
hint, and the verdict on an error status (each dialect adds the statuses its provider words its own way)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import (
    ApiError,
    AuthenticationError,
    NoAnswerError,
    PermanentApiError,
    ProviderUnreachableError,
    RateLimitedError,
    TransientApiError,
)
from ._base import Body

if TYPE_CHECKING:
    import httpx

MAY_PASS = frozenset({408, 409})  # a timeout, a conflict (not ready yet)


def streamed(response: httpx.Response) -> Body:
    declared = response.headers.get("content-length")
    return Body(response.aiter_bytes(), int(declared) if declared else None, lambda: response.num_bytes_downloaded)


def retry_after(headers: Mapping[str, str]) -> float:
    """The provider's wait before a retry, as the SDK reads it: `retry-after-ms`, else `retry-after`, else 1 s."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            with contextlib.suppress(ValueError):
                return min(max(float(value) * scale, 0.0), 60.0)
    return 1.0


def status_error(action: str, status: int, said: str, headers: Mapping[str, str], key_variable: str | None,
                 may_pass: frozenset[int] = MAY_PASS) -> ApiError:
    """An error answer in reelflow's terms: the key refused, rate limited, a cause that may pass (`may_pass`,
    any 5xx), else permanent."""
    message = f"{action}: {status} {said}"
    if status == 401:
        check = f"; check {key_variable}" if key_variable else ""
        return AuthenticationError(f"{action}: the provider rejected the API key (401){check}", status=401)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after(headers), status=status)
    if status in may_pass or status >= 500:
        return TransientApiError(message, status=status)
    return PermanentApiError(message, status=status)


def transport_error(action: str, where: str, error: Exception, reached: bool) -> ApiError:
    """A request that failed in transport, in reelflow's terms. One that never `reached` the provider (no
    connection could be made: refused, no such host, no route) sent nothing, and the provider cannot be used:
    the run stops at once rather than waiting it out like a 5xx. One whose answer never came may have been
    done."""
    if not reached:
        reason = str(error) or type(error).__name__
        return ProviderUnreachableError(f"{action}: could not connect to {where} ({reason}); nothing was sent: "
                                        "check the network and the provider's base URL")
    kind = "timed out" if "Timeout" in type(error).__name__ else "the connection broke"
    return NoAnswerError(f"{action}: {kind} before the answer came ({where})")

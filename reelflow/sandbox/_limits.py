"""Rate limits as the provider applies them: requests per minute and unfinished jobs."""

from __future__ import annotations

import math

from .._bucket import TokenBucket
from ._problems import ApiProblem


class RequestBucket:
    """The provider's requests-per-minute limit, answered with its 429 and `x-ratelimit-*` headers."""

    def __init__(self, per_minute: int) -> None:
        self.bucket = TokenBucket(per_minute)

    def take(self) -> None:
        """Spend one request, or raise the API's 429."""
        wait = self.bucket.try_take()
        if wait:
            limit = self.bucket.per_minute
            raise rate_limited(
                f"Rate limit reached for requests per minute (RPM): Limit {limit}, "
                f"Used {limit}, Requested 1. Please try again in {wait:.3g}s.",
                wait, self.headers(),
            )

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.bucket.per_minute),
            "x-ratelimit-remaining-requests": str(self.bucket.remaining),
            "x-ratelimit-reset-requests": f"{self.bucket.seconds_to_full:.3g}s",
        }


def rate_limited(message: str, wait_seconds: float, headers: dict[str, str] | None = None) -> ApiProblem:
    wait_ms = max(1, math.ceil(wait_seconds * 1000))
    return ApiProblem(
        429, message, type="requests", code="rate_limit_exceeded",
        headers={**(headers or {}), "retry-after-ms": str(wait_ms), "retry-after": str(math.ceil(wait_ms / 1000))},
    )


def check_concurrency(limit: int, finishing_times: list[float], now: float) -> None:
    """Raise 429 when `limit` jobs are still unfinished; the wait is until the first one ends."""
    running = sorted(t for t in finishing_times if t > now)
    if len(running) >= limit:
        wait = running[len(running) - limit] - now
        raise rate_limited(
            f"Too many concurrent video jobs: Limit {limit}, Running {len(running)}. "
            f"Please try again in {wait:.3g}s.", wait,
        )

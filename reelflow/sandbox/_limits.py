"""Rate limits as the provider applies them: requests per minute and unfinished jobs."""

from __future__ import annotations

import math
import time

from ._problems import ApiProblem


class RequestBucket:
    """A token bucket of `per_minute` requests, refilled continuously (as OpenAI's limiter is)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = per_minute
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> None:
        """Spend one request, or raise the API's 429."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return
        wait = (1 - self.tokens) / self.rate
        raise rate_limited(
            f"Rate limit reached for requests per minute (RPM): Limit {self.capacity}, "
            f"Used {self.capacity}, Requested 1. Please try again in {wait:.3g}s.",
            wait, self.headers(),
        )

    def headers(self) -> dict[str, str]:
        self._refill()
        reset = (self.capacity - self.tokens) / self.rate
        return {
            "x-ratelimit-limit-requests": str(self.capacity),
            "x-ratelimit-remaining-requests": str(int(self.tokens)),
            "x-ratelimit-reset-requests": f"{reset:.3g}s",
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

"""A request-rate limit as OpenAI's limiter applies it, shared by the sandbox (which enforces it) and
the gateway (which keeps to it)."""

from __future__ import annotations

import time


class TokenBucket:
    """`per_minute` requests, bursting up to `burst` (default: that many), refilled continuously."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.per_minute = per_minute
        self.burst = burst or per_minute
        self.tokens = float(self.burst)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def try_take(self) -> float:
        """Spend one request and return 0, or spend nothing and return the seconds until one is free."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    @property
    def remaining(self) -> int:
        self._refill()
        return int(self.tokens)

    @property
    def seconds_to_full(self) -> float:
        self._refill()
        return (self.burst - self.tokens) / self.rate

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

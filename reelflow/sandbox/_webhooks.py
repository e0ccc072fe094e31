"""Signed `video.completed` / `video.failed` events (Standard Webhooks), retried until accepted."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from ._state import new_id

log = logging.getLogger("reelflow.sandbox")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class WebhookSender:
    def __init__(self, url: str, secret: str, stats: dict[str, int]) -> None:
        self.url = url
        self.signer = Webhook(secret)
        self.stats = stats
        self.client = httpx.AsyncClient(timeout=10)

    def envelope(self, event_type: str, video_id: str) -> tuple[str, dict[str, str]]:
        """The event body and its signed headers."""
        stamp = datetime.now(UTC)
        event_id = new_id("evt_")
        body = json.dumps({
            "id": event_id, "object": "event", "created_at": int(stamp.timestamp()),
            "type": event_type, "data": {"id": video_id},
        })
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": self.signer.sign(event_id, stamp, body),
            "content-type": "application/json",
        }
        return body, headers

    async def deliver(self, event_type: str, video_id: str) -> bool:
        """POST the event; retry non-2xx answers and connection errors with backoff."""
        body, headers = self.envelope(event_type, video_id)
        for delay in (0.0, *RETRY_DELAYS):
            await asyncio.sleep(delay)
            self.stats["attempts"] += 1
            try:
                answer = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as e:
                log.debug("webhook to %s failed: %s", self.url, e)
                continue
            if answer.is_success:
                self.stats["delivered"] += 1
                return True
        self.stats["abandoned"] += 1
        return False

    async def close(self) -> None:
        await self.client.aclose()

"""Signed video events, retried until accepted: Standard Webhooks' `video.completed` / `video.failed` (the OpenAI
pose), and OpenRouter's `video.generation.*` callbacks (the OpenRouter pose)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from ._state import new_id

log = logging.getLogger("reelflow.sandbox")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class Deliveries:
    """POSTs of events, each retried with backoff on a non-2xx answer or a connection error; counted in `stats`."""

    def __init__(self, stats: dict[str, int]) -> None:
        self.stats = stats
        self.client = httpx.AsyncClient(timeout=10)

    async def post(self, url: str, body: str, headers: Mapping[str, str]) -> bool:
        for delay in (0.0, *RETRY_DELAYS):
            await asyncio.sleep(delay)
            self.stats["attempts"] += 1
            try:
                answer = await self.client.post(url, content=body, headers=dict(headers))
            except httpx.HTTPError as e:
                log.debug("webhook to %s failed: %s", url, e)
                continue
            if answer.is_success:
                self.stats["delivered"] += 1
                return True
        self.stats["abandoned"] += 1
        return False

    async def close(self) -> None:
        await self.client.aclose()


class WebhookSender(Deliveries):
    """Standard Webhooks events to one URL."""

    def __init__(self, url: str, secret: str, stats: dict[str, int]) -> None:
        super().__init__(stats)
        self.url = url
        self.signer = Webhook(secret)

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
        return await self.post(self.url, *self.envelope(event_type, video_id))


def openrouter_callback(data: dict[str, Any], secret: str | None) -> tuple[str, dict[str, str]]:
    """OpenRouter's callback for a finished job (`data`: its id, status, generation_id, model, unsigned_urls,
    usage, error): the body `{type: video.generation.<status>, created_at: ISO 8601, data}`, the header
    `X-OpenRouter-Idempotency-Key: <id>-<status>`, and, with the workspace's signing secret,
    `X-OpenRouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t," + body>` (OpenRouter's sender example and
    Webhook.site delivery: openrouter.ai/docs/cookbook/video-generation/video-generation-webhooks)."""
    stamp = datetime.now(UTC)
    body = json.dumps({"type": f"video.generation.{data['status']}", "created_at": stamp.isoformat(), "data": data})
    headers = {"content-type": "application/json", "x-openrouter-idempotency-key": f"{data['id']}-{data['status']}"}
    if secret is not None:
        seconds = str(int(stamp.timestamp()))
        signature = hmac.new(secret.encode(), f"{seconds},{body}".encode(), hashlib.sha256).hexdigest()
        headers["x-openrouter-signature"] = f"t={seconds},v1={signature}"
    return body, headers

"""Video events the provider pushes (Standard Webhooks: `video.completed`, `video.failed`), verified and kept
in the job ledger's webhook inbox, where waiting jobs look before they ask the provider.

The inbox is a folder on any fsspec storage (one small JSON file per video), so the receiver and every
process that waits (several workers, say) share it without a server of their own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._errors import StorageError
from ._storage import Storage

VIDEO_EVENTS = ("video.completed", "video.failed")
log = logging.getLogger("reelflow.webhooks")


class VideoEvent(BaseModel):
    """One verified event about one video."""

    id: str = Field(description="The event's id (`evt_...`); a retried delivery repeats it.")
    type: str = Field(description="video.completed or video.failed.")
    video_id: str = Field(description="The job the event is about.")
    received_at: float = Field(default_factory=time.time, description="When the receiver verified it (unix time).")


class Inbox:
    """The events received so far, by video id."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def record(self, event: VideoEvent) -> None:
        self.storage.write_json(event.model_dump(), f"{event.video_id}.json")

    def arrived(self, video_id: str) -> VideoEvent | None:
        try:
            if not self.storage.exists(f"{video_id}.json"):
                return None
            return VideoEvent.model_validate_json(self.storage.read_bytes(f"{video_id}.json"))
        except (StorageError, ValidationError):
            return None  # unreadable for now: the waiter looks again, and polls as a fallback


def receiver(secret: str, inbox: Inbox, announce: Callable[[VideoEvent], None] | None = None) -> Starlette:
    """The ASGI app for `POST /`: 200 for a verified event (recorded when it is about a video), 400 for
    anything forged, re-signed with another secret, stale (over 5 minutes off), or malformed."""
    verifier = Webhook(secret)

    async def accept(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            payload = verifier.verify(body, dict(request.headers))
            event = _video_event(payload)
        except (WebhookVerificationError, ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
            log.warning("refused a webhook: %s", e)
            return JSONResponse({"error": f"refused: {e}"}, status_code=400)
        if event is not None:
            try:
                await asyncio.to_thread(inbox.record, event)
            except StorageError as e:  # not recorded: 500, so the provider delivers it again later
                log.error("could not record %s: %s", event.id, e)
                return JSONResponse({"error": "could not record the event"}, status_code=500)
            if announce is not None:
                _announce(announce, event)
        return JSONResponse({"received": True})

    return Starlette(routes=[Route("/", accept, methods=["POST"])])


def _announce(announce: Callable[[VideoEvent], None], event: VideoEvent) -> None:
    """Best effort: the event is recorded already, which is what waiting jobs read."""
    try:
        announce(event)
    except Exception as e:  # whatever the announcer's own failure, the delivery succeeded
        log.warning("could not announce %s: %s", event.id, e)


def _video_event(payload: Any) -> VideoEvent | None:
    """The video event in a verified payload; None for other event types (accepted, not recorded)."""
    if not isinstance(payload, dict):
        raise ValueError("the event is not a JSON object")
    if payload.get("type") not in VIDEO_EVENTS:
        return None
    return VideoEvent(id=str(payload["id"]), type=str(payload["type"]), video_id=str(payload["data"]["id"]))


def emit_prefect_event(event: VideoEvent) -> None:
    """The event as a Prefect event (`reelflow.video.completed` on resource `reelflow.video.<id>`), for
    automations and the UI's event feed."""
    from prefect.events import emit_event

    emit_event(event=f"reelflow.{event.type}", resource={"prefect.resource.id": f"reelflow.video.{event.video_id}"},
               payload={"event_id": event.id, "video_id": event.video_id})

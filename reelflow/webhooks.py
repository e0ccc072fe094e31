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

from ._names import file_name_for_id
from .errors import StorageError
from .storage import Storage

VIDEO_EVENTS = ("video.completed", "video.failed")
MAX_BODY_BYTES = 64 * 1024  # a video event is a few hundred bytes; anything this large is not one
log = logging.getLogger("reelflow.webhooks")


class VideoEvent(BaseModel):
    """One verified event about one video."""

    id: str = Field(description="The delivery's `webhook-id` (the event's id); a retried delivery repeats it.")
    type: str = Field(description="video.completed or video.failed.")
    video_id: str = Field(description="The job the event is about.")
    received_at: float = Field(default_factory=time.time, description="When the receiver verified it (unix time).")


class Inbox:
    """The events received so far, one file per video, named from its id (`file_name_for_id`: no id, however
    crafted, names a file outside the inbox)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def record(self, event: VideoEvent) -> None:
        self.storage.write_json(event.model_dump(), file_name_for_id(event.video_id))

    def arrived(self, video_id: str) -> VideoEvent | None:
        name = file_name_for_id(video_id)
        try:
            if not self.storage.exists(name):
                return None
            return VideoEvent.model_validate_json(self.storage.read_bytes(name))
        except (StorageError, ValidationError):
            return None  # unreadable for now: the waiter looks again, and polls as a fallback


def receiver(secret: str, inbox: Inbox, announce: Callable[[VideoEvent], None] | None = None) -> Starlette:
    """The ASGI app for `POST /`: 200 for a verified event (recorded when it is about a video, once: a
    delivery repeated with the same `webhook-id` is acknowledged and not recorded or announced again), 400 for
    anything forged, re-signed with another secret, stale (over 5 minutes off), or malformed, 413 for a body
    over MAX_BODY_BYTES (refused before it is read whole)."""
    verifier = Webhook(secret)

    async def accept(request: Request) -> JSONResponse:
        body = await _bounded_body(request)
        if body is None:
            log.warning("refused a webhook: its body is over %d bytes", MAX_BODY_BYTES)
            return JSONResponse({"error": f"refused: over {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            payload = verifier.verify(body, dict(request.headers))
            event = _video_event(payload, request.headers["webhook-id"])
        except (WebhookVerificationError, ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
            log.warning("refused a webhook: %s", e)
            return JSONResponse({"error": f"refused: {e}"}, status_code=400)
        if event is not None and await asyncio.to_thread(_already_recorded, inbox, event):
            return JSONResponse({"received": True, "duplicate": True})
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


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None as soon as it is known to be over MAX_BODY_BYTES (by its Content-Length, or while
    it streams in), so a flood of large posts costs no memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _already_recorded(inbox: Inbox, event: VideoEvent) -> bool:
    """A retried delivery of an event already in the inbox (the same `webhook-id`)."""
    known = inbox.arrived(event.video_id)
    return known is not None and known.id == event.id


def _announce(announce: Callable[[VideoEvent], None], event: VideoEvent) -> None:
    """Best effort: the event is recorded already, which is what waiting jobs read."""
    try:
        announce(event)
    except Exception as e:  # whatever the announcer's own failure, the delivery succeeded
        log.warning("could not announce %s: %s", event.id, e)


def _video_event(payload: Any, webhook_id: str) -> VideoEvent | None:
    """The video event in a verified payload, known by its delivery's `webhook-id` (signed with it, and the
    same on every retry); None for other event types (accepted, not recorded)."""
    if not isinstance(payload, dict):
        raise ValueError("the event is not a JSON object")
    if payload.get("type") not in VIDEO_EVENTS:
        return None
    return VideoEvent(id=webhook_id, type=str(payload["type"]), video_id=str(payload["data"]["id"]))


def emit_prefect_event(event: VideoEvent) -> None:
    """The event as a Prefect event (`reelflow.video.completed` on resource `reelflow.video.<id>`), for
    automations and the UI's event feed."""
    from prefect.events import emit_event

    emit_event(event=f"reelflow.{event.type}", resource={"prefect.resource.id": f"reelflow.video.{event.video_id}"},
               payload={"event_id": event.id, "video_id": event.video_id})

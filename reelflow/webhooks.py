"""Video events the provider pushes, verified and kept in the job ledger's webhook inbox, where waiting jobs look
before they ask the provider: Standard Webhooks' `video.completed` / `video.failed` (OpenAI's), and OpenRouter's
`video.generation.*` callbacks, signed its own way (`X-OpenRouter-Signature`, see `verify_openrouter`).

The inbox is a folder on any fsspec storage (one small JSON file per video), so the receiver and every
process that waits (several workers, say) share it without a server of their own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
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

# OpenRouter's four callback events, one per terminal status (openrouter.ai/docs/cookbook/video-generation/
# video-generation-webhooks, `VideoWebhookEvent.type`; OpenRouterTeam/docs cookbook/video-generation/
# video-generation-webhooks.mdx)
OPENROUTER_EVENTS = tuple(f"video.generation.{status}" for status in ("completed", "failed", "cancelled", "expired"))
VIDEO_EVENTS = ("video.completed", "video.failed", *OPENROUTER_EVENTS)
TOLERANCE_SECONDS = 300  # how far a signature's time may be off ours: Standard Webhooks' 5 minutes, and the
# `Math.abs(age) > 300` of OpenRouter's own receiver example (same page)
MAX_BODY_BYTES = 64 * 1024  # a video event is a few hundred bytes; anything this large is not one
log = logging.getLogger("reelflow.webhooks")


class VideoEvent(BaseModel):
    """One verified event about one video."""

    id: str = Field(description="The delivery's id (`webhook-id`; OpenRouter's `X-OpenRouter-Idempotency-Key`); a "
                    "retried delivery repeats it.")
    type: str = Field(description="video.completed or video.failed; on OpenRouter video.generation.completed, "
                      "failed, cancelled or expired.")
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


class SignatureError(ValueError):
    """A delivery whose signature is missing, malformed, stale or wrong."""


def verify_openrouter(body: bytes, header: str, secret: str, now: float | None = None) -> None:
    """OpenRouter's callback signature, or SignatureError: `X-OpenRouter-Signature: t=<unix seconds>,v1=<hex>`,
    where v1 is the hex HMAC-SHA256, keyed with the workspace's signing secret (its UTF-8 bytes), of `t`, a comma
    and the raw body, and `t` is at most TOLERANCE_SECONDS off now (OpenRouter's receiver and sender examples:
    openrouter.ai/docs/cookbook/video-generation/video-generation-webhooks, `verifyOpenRouterSignature`; the SDK
    1.3.84 only names `callback_url`, `VideoGenerationRequest.callback_url`)."""
    parts = dict(part.strip().partition("=")[::2] for part in header.split(","))
    stamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not signature:
        raise SignatureError("X-OpenRouter-Signature is not t=<unix seconds>,v1=<hex>")
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureError(f"stale: signed over {TOLERANCE_SECONDS} s from now")
    expected = hmac.new(secret.encode(), stamp.encode() + b"," + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("the signature does not match")


class Signatures:
    """The two ways providers sign video events, told apart by their headers: OpenRouter's
    `X-OpenRouter-Signature`, else Standard Webhooks' `webhook-id`, `webhook-timestamp`, `webhook-signature`
    (OpenAI's). One secret: a `whsec_...` one, or OpenRouter's workspace signing secret (any text)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.standard = standard_verifier(secret)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[Any, str]:
        """The verified payload and its delivery's id (the same on every retry of the delivery)."""
        signature = headers.get("x-openrouter-signature")
        if signature is not None:
            verify_openrouter(body, signature, self.secret)
            payload = json.loads(body)
            return payload, headers.get("x-openrouter-idempotency-key") or _openrouter_delivery(payload)
        if self.standard is None:
            raise SignatureError("not signed as OpenRouter signs, and the secret is not a Standard Webhooks one")
        return self.standard.verify(body, dict(headers)), headers["webhook-id"]


def standard_verifier(secret: str) -> Webhook | None:
    """The Standard Webhooks verifier of a `whsec_...` secret (None for another kind, OpenRouter's); ValueError for
    a `whsec_` secret that is not base64."""
    try:
        return Webhook(secret)
    except (ValueError, TypeError) as e:
        if secret.startswith("whsec_"):
            raise ValueError(f"not a Standard Webhooks secret (whsec_ and base64): {e}") from e
        return None


def _openrouter_delivery(payload: Any) -> str:
    """A delivery's id without its `X-OpenRouter-Idempotency-Key`: the key's documented shape, `<job id>-<status>`
    (`job_test-completed` in OpenRouter's sender example, page above)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the event has no data object")
    return f"{data.get('id')}-{data.get('status')}"


def receiver(secret: str, inbox: Inbox, announce: Callable[[VideoEvent], None] | None = None) -> Starlette:
    """The ASGI app for `POST /`: 200 for a verified event (recorded when it is about a video, once: a
    delivery repeated with the same id is acknowledged and not recorded or announced again), 400 for
    anything forged, re-signed with another secret, stale (over 5 minutes off), or malformed, 413 for a body
    over MAX_BODY_BYTES (refused before it is read whole). Either signature scheme (`Signatures`)."""
    verifier = Signatures(secret)

    async def accept(request: Request) -> JSONResponse:
        body = await _bounded_body(request)
        if body is None:
            log.warning("refused a webhook: its body is over %d bytes", MAX_BODY_BYTES)
            return JSONResponse({"error": f"refused: over {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            payload, delivery = verifier.verify(body, request.headers)
            event = _video_event(payload, delivery)
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
    """The video event in a verified payload, known by its delivery's id (the same on every retry); None for
    other event types (accepted, not recorded)."""
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

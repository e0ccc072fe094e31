"""The sandbox's HTTP API: the OpenAI Video API's routes, validation, limits and faults."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import io
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..media.video import probe
from ..profiles import ProviderProfile, load_profile
from ._batches import Batches
from ._config import SandboxConfig
from ._limits import RequestBucket, check_concurrency
from ._media import FPS, Recipe, Segment, render
from ._problems import (
    ApiProblem,
    Upload,
    check_known,
    invalid_type,
    invalid_value,
    missing_parameter,
    not_found,
    optional_text,
    quoted_list,
    read_fields,
    required_text,
)
from ._state import Job, JobKind, SandboxState, new_id, now
from ._webhooks import WebhookSender

log = logging.getLogger("reelflow.sandbox")
Handler = Callable[[Request], Awaitable[Response]]
BLOCKED_MARKER = "[blocked]"
MODERATION = {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}
FAILS_ONCE_MARKER = "[fails-once]"  # the first job with this prompt fails as a server-side error would
SERVER_ERROR = {"code": "internal_error", "message": "The video could not be generated. Please try again."}
VARIANT_FILES = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.webp", "image/webp"),
                 "spritesheet": ("spritesheet.jpg", "image/jpeg")}


class ConnectionDropped(Exception):
    """Raised after sending headers, so the server closes the connection mid-answer."""


class _DropConnection(Response):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        raise ConnectionDropped


class Sandbox:
    """One sandbox server's behaviour and state; `asgi()` is the application to serve."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.profile: ProviderProfile = load_profile(config.profile)
        self.state = SandboxState(config.state_dir)
        self.bucket = RequestBucket(config.rpm) if config.rpm else None
        self.rng = random.Random(config.seed)
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.jobs_created: Counter[str] = Counter()
        self.character_uses: Counter[str] = Counter()  # character id -> creates that referenced it
        self.started = time.monotonic()
        self.limited_at: list[float] = []  # seconds after start when a create was refused for a limit
        self.webhook_stats: dict[str, int] = Counter()
        self.webhooks = (
            WebhookSender(config.webhook_url, config.webhook_secret, self.webhook_stats)
            if config.webhook_url and config.webhook_secret else None
        )
        self.batches = Batches(self.state, self._created, self._as_submitted, max(0.2, config.job_seconds / 2))
        self._renders: dict[str, asyncio.Task[None]] = {}
        self._failed_once: set[str] = set()
        self._timers: set[asyncio.Task[None]] = set()

    # -- application -------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        p = self.profile
        routes = [
            self._route("GET", "/_sandbox/stats", self.stats_endpoint, public=False),
            self._route("POST", "/v1/videos", self.create, creates_job=True),
            self._route("GET", "/v1/videos/{id}", self.retrieve),
            self._route("DELETE", "/v1/videos/{id}", self.delete),
            self._route("GET", "/v1/videos/{id}/content", self.content),
            self._route("POST", "/v1/files", self.upload_file),
            self._route("GET", "/v1/files/{id}", self.file_info),
            self._route("GET", "/v1/files/{id}/content", self.file_content),
        ]
        if p.list_jobs:
            routes.append(self._route("GET", "/v1/videos", self.list_videos))
        if p.extensions:
            routes.append(self._route("POST", "/v1/videos/extensions", self.extend, creates_job=True))
        if p.edits:
            routes.append(self._route("POST", "/v1/videos/edits", self.edit, creates_job=True))
        if p.remix:
            routes.append(self._route("POST", "/v1/videos/{id}/remix", self.remix, creates_job=True))
        if p.batch:
            routes += [self._route("POST", "/v1/batches", self.batches.create),
                       self._route("GET", "/v1/batches", self.batches.list_batches),
                       self._route("GET", "/v1/batches/{id}", self.batches.retrieve),
                       self._route("POST", "/v1/batches/{id}/cancel", self.batches.cancel)]
        if p.max_characters:
            routes += [self._route("POST", "/v1/videos/characters", self.create_character),
                       self._route("GET", "/v1/videos/characters/{id}", self.get_character)]
        # Literal paths must win over `/v1/videos/{id}`.
        routes.sort(key=lambda r: "{" in r.path)
        return Starlette(routes=routes, lifespan=self._lifespan,
                         exception_handlers={404: self._no_route, 405: self._no_route})

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        for job in self.state.jobs.values():
            self._schedule_webhook(job)
        yield
        for task in [*self._timers, *self._renders.values()]:
            task.cancel()
        if self.webhooks:
            await self.webhooks.close()

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        self.requests[f"{request.method} (unrouted)"] += 1
        self.responses["404"] += 1
        return ApiProblem(404, f"Invalid URL ({request.method} {request.url.path})").response()

    def _route(self, method: str, path: str, handler: Handler, *, creates_job: bool = False,
               public: bool = True) -> Route:
        name = f"{method} {path}"

        async def endpoint(request: Request) -> Response:
            self.requests[name] += 1
            started = time.perf_counter()
            try:
                response = await self._guarded(request, handler, creates_job) if public else await handler(request)
            except ApiProblem as problem:
                response = problem.response()
            self.responses[str(response.status_code)] += 1
            response.headers["x-request-id"] = new_id("req_")
            response.headers["openai-processing-ms"] = str(int((time.perf_counter() - started) * 1000))
            return response

        return Route(path, endpoint, methods=[method])

    async def _guarded(self, request: Request, handler: Handler, creates_job: bool) -> Response:
        self._authenticate(request)
        in_scope = creates_job or self.config.fault_scope == "all"
        fault = self.config.faults.pick(self.rng.random()) if self.config.faults.rates and in_scope else None
        if fault == "truncate" and not request.url.path.endswith("/content"):
            fault = None
        if fault:
            self.faults[fault] += 1
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        elif fault == "5xx":
            raise ApiProblem(500, "The server had an error while processing your request. Sorry about that!",
                             type="server_error")
        elif fault == "429":
            raise ApiProblem(429, "Rate limit reached (injected fault). Please try again in 1s.", type="requests",
                             code="rate_limit_exceeded", headers={"retry-after-ms": "1000"})
        elif fault == "drop":
            return _DropConnection()
        request.state.truncate = fault == "truncate"
        limit_headers = self._admit(request) if creates_job else {}
        response = await handler(request)
        response.headers.update(limit_headers)
        return _DropConnection() if fault == "lost" else response

    def _authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiProblem(
                401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code="missing_api_key")
        if self.config.api_keys is not None and key.strip() not in self.config.api_keys:
            raise ApiProblem(401, "Incorrect API key provided.", code="invalid_api_key")

    def _admit(self, request: Request) -> dict[str, str]:
        """Apply the request-rate and unfinished-job limits to a job-creating request."""
        try:
            if self.config.max_concurrent:
                check_concurrency(self.config.max_concurrent,
                                  [j.finishes_at for j in self.state.jobs.values()], now())
            if self.bucket is None:
                return {}
            self.bucket.take()
        except ApiProblem:
            self.limited_at.append(round(time.monotonic() - self.started, 3))
            raise
        return self.bucket.headers()

    # -- jobs --------------------------------------------------------------------------------

    def _failure_of(self, prompt: str) -> dict[str, str] | None:
        if BLOCKED_MARKER in prompt:
            return MODERATION
        if FAILS_ONCE_MARKER in prompt and prompt not in self._failed_once:
            self._failed_once.add(prompt)
            return SERVER_ERROR
        return None

    def _new_job(self, kind: JobKind, model: str, prompt: str, recipe: Recipe, **extra: Any) -> Response:
        return JSONResponse(self._as_submitted(self._started(kind, model, prompt, recipe, **extra)),
                            headers=self._poll_hint())

    def _started(self, kind: JobKind, model: str, prompt: str, recipe: Recipe, **extra: Any) -> Job:
        created = now()
        job = Job(
            id=new_id("video_"), kind=kind, seq=self.state.next_seq(), created_at=created,
            finishes_at=created + self.config.job_seconds, model=model, prompt=prompt, recipe=recipe,
            failure=self._failure_of(prompt), **extra,
        )
        self.state.save_job(job)
        self.jobs_created[kind] += 1
        self._schedule_webhook(job)
        return job

    def _as_submitted(self, job: Job) -> dict[str, Any]:
        """The create answer: the job as submitted, queued, whatever the clock says."""
        body = job.resource(job.created_at, self.config.asset_ttl_seconds)
        body.update(status="queued", progress=0, completed_at=None, expires_at=None, error=None)
        return body

    def _poll_hint(self) -> dict[str, str]:
        if not self.profile.poll_hint:
            return {}
        return {"openai-poll-after-ms": str(max(100, min(10_000, int(self.config.job_seconds * 100))))}

    def _schedule_webhook(self, job: Job) -> None:
        """At the job's finishing time, send its `video.completed` or `video.failed` event."""
        if self.webhooks is None or job.webhook_sent:
            return
        sender = self.webhooks

        async def finish() -> None:
            await asyncio.sleep(max(0.0, job.finishes_at - now()))
            if job.id not in self.state.jobs:
                return
            self.webhook_stats["sent"] += 1
            if await sender.deliver("video.failed" if job.failure else "video.completed", job.id):
                self.state.save_job(job.model_copy(update={"webhook_sent": True}))

        task = asyncio.get_running_loop().create_task(finish())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _rendered(self, job: Job) -> None:
        """Render the job's media on first download, in a worker thread; concurrent callers share it.

        Rendering lazily keeps never-downloaded jobs (the links of an extension chain) free."""
        if self.state.has(f"media/{job.id}/video.mp4"):
            return
        if job.id not in self._renders:
            self._renders[job.id] = asyncio.create_task(self._render(job))
        await asyncio.shield(self._renders[job.id])

    async def _render(self, job: Job) -> None:
        media = await anyio.to_thread.run_sync(render, job.recipe, self.state.get)
        for variant, (filename, _) in VARIANT_FILES.items():
            self.state.put(f"media/{job.id}/{filename}", getattr(media, variant))

    def _job(self, video_id: str, param: str | None = None) -> Job:
        job = self.state.jobs.get(video_id)
        if job is None:
            raise not_found("video", video_id, param)
        return job

    def _completed_source(self, video_id: str, param: str = "video") -> Job:
        job = self._job(video_id, param)
        status, _ = job.status(now())
        if status != "completed":
            raise ApiProblem(400, f"Video '{video_id}' is not completed (status: '{status}').", param=param,
                             code="invalid_video_state")
        return job

    # -- endpoints: videos -------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        return JSONResponse(self._as_submitted(await self._created(await read_fields(request))),
                            headers=self._poll_hint())

    async def _created(self, fields: dict[str, Any]) -> Job:
        """A create's fields validated as the real API does (a direct create, or a line of a batch)."""
        check_known(fields, ("prompt", "model", "seconds", "size", "input_reference", "characters"))
        prompt = required_text(fields, "prompt", self.profile.prompt_max_chars)
        model, limits = self._model(fields)
        size = self._size(fields, model, limits.sizes)
        seconds = self._seconds(fields, "seconds", limits.seconds, str(self.profile.default_seconds))
        for character in self._characters(fields.get("characters")):
            self.character_uses[character] += 1
        reference = await self._reference(fields.get("input_reference"), size)
        recipe = Recipe(size=_dimensions(size), segments=[Segment(seconds=seconds, seed=prompt, reference=reference)])
        return self._started("create", model, prompt, recipe)

    def _model(self, fields: dict[str, Any]) -> tuple[str, Any]:
        model = optional_text(fields, "model", self.profile.default_model)
        limits = self.profile.model_limits(model)
        if limits is None:
            raise invalid_value("model", model, self.profile.models)
        return model, limits

    def _size(self, fields: dict[str, Any], model: str, sizes: list[str]) -> str:
        size = optional_text(fields, "size", self.profile.default_size)
        if size not in self.profile.all_sizes:
            raise invalid_value("size", size, self.profile.all_sizes)
        if size not in sizes:
            raise ApiProblem(400, f"Invalid value: '{size}'. Model '{model}' supports sizes: "
                             f"{', '.join(repr(s) for s in sizes)}.", param="size", code="invalid_value")
        return size

    def _seconds(self, fields: dict[str, Any], name: str, allowed: list[int], default: str) -> int:
        value = optional_text(fields, name, default)
        if value not in {str(s) for s in allowed}:
            raise invalid_value(name, value, allowed)
        return int(value)

    def _characters(self, value: Any) -> list[str]:
        """The character ids of a create, each checked to exist."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid_type("characters", "an array", value)
        if len(value) > self.profile.max_characters:
            raise ApiProblem(400, f"Invalid 'characters': array too long. Expected an array with maximum length "
                             f"{self.profile.max_characters}, but got an array with length {len(value)} instead.",
                             param="characters", code="array_above_max_length")
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise missing_parameter(f"characters[{index}].id")
            check_known(item, ("id",))
            if item["id"] not in self.state.characters:
                raise not_found("character", item["id"], f"characters[{index}].id")
        return [item["id"] for item in value]

    async def _reference(self, value: Any, size: str) -> str | None:
        """Validate the reference image and store it; returns its blob key."""
        if value is None:
            return None
        if isinstance(value, Upload):
            data = value.data
        elif isinstance(value, dict):
            data = await self._referenced_image(value)
        else:
            raise invalid_type("input_reference", "a file", value)
        _check_image(data, size, self.profile.reference_formats)
        key = f"refs/{hashlib.sha256(data).hexdigest()}"
        if not self.state.has(key):
            self.state.put(key, data)
        return key

    async def _referenced_image(self, value: dict[str, Any]) -> bytes:
        check_known(value, ("image_url", "file_id"))
        if len(value) != 1:
            raise ApiProblem(400, "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'.",
                             param="input_reference", code="invalid_value")
        if "file_id" in value:
            file_id = value["file_id"]
            if file_id not in self.state.files:
                raise ApiProblem(400, f"No such File object: {file_id}", param="input_reference.file_id")
            return self.state.get(f"files/{file_id}.bin")
        return await _fetch_image_url(value["image_url"])

    async def retrieve(self, request: Request) -> Response:
        job = self._job(request.path_params["id"])
        hint = {} if job.is_terminal(now()) else self._poll_hint()
        return JSONResponse(job.resource(now(), self.config.asset_ttl_seconds), headers=hint)

    async def list_videos(self, request: Request) -> Response:
        query = request.query_params
        check_known(query, ("limit", "order", "after"))
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or not 0 <= int(limit_text) <= 100:
            raise ApiProblem(400, f"Invalid 'limit': integer out of range. Expected a value between 0 and 100, "
                             f"but got {limit_text} instead.", param="limit", code="integer_out_of_range")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_value("order", order, ("asc", "desc"))
        jobs = sorted(self.state.jobs.values(), key=lambda j: j.seq, reverse=order == "desc")
        if "after" in query:
            cursor = self._job(query["after"], "after")
            jobs = [j for j in jobs if (j.seq > cursor.seq if order == "asc" else j.seq < cursor.seq)]
        page = jobs[: int(limit_text)]
        data = [j.resource(now(), self.config.asset_ttl_seconds) for j in page]
        return JSONResponse({
            "object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": len(jobs) > len(page),
        })

    async def delete(self, request: Request) -> Response:
        job = self._job(request.path_params["id"])
        status, _ = job.status(now())
        if not job.is_terminal(now()):
            raise ApiProblem(400, f"Video '{job.id}' cannot be deleted while it is '{status}'; "
                             "only completed or failed videos can be deleted.", param="video_id")
        self.state.delete_job(job.id)
        return JSONResponse({"id": job.id, "object": "video.deleted", "deleted": True})

    async def content(self, request: Request) -> Response:
        check_known(request.query_params, ("variant",))
        variant = request.query_params.get("variant", "video")
        if variant not in self.profile.variants:
            raise invalid_value("variant", variant, self.profile.variants)
        job = self._job(request.path_params["id"])
        status, _ = job.status(now())
        if status != "completed":
            raise ApiProblem(400, f"Video '{job.id}' has no content: its status is '{status}'.",
                             param="video_id", code="video_not_ready")
        if now() > job.finishes_at + self.config.asset_ttl_seconds:
            raise ApiProblem(404, f"The assets of video '{job.id}' have expired.", code="video_expired")
        await self._rendered(job)
        filename, media_type = VARIANT_FILES[variant]
        data = self.state.get(f"media/{job.id}/{filename}")
        if request.state.truncate:
            return StreamingResponse(_chunks(data[: len(data) // 2]), media_type=media_type)
        return Response(data, media_type=media_type)

    async def extend(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("prompt", "seconds", "video"))
        prompt = required_text(fields, "prompt", self.profile.prompt_max_chars)
        limits = self.profile.extensions
        assert limits is not None
        if "seconds" not in fields:
            raise missing_parameter("seconds")
        seconds = self._seconds(fields, "seconds", limits.seconds, "")
        source = self._completed_source(_video_id(fields))
        if source.extension_count >= limits.max_count:
            raise ApiProblem(400, f"Invalid 'video': video '{source.id}' has already been extended "
                             f"{source.extension_count} times; at most {limits.max_count} extensions are "
                             "allowed in one chain.", param="video", code="extension_limit_exceeded")
        total = source.recipe.seconds + seconds
        if total > limits.max_total_seconds:
            raise ApiProblem(400, f"Invalid 'seconds': the extended video would be {total} seconds long; "
                             f"extended videos can be at most {limits.max_total_seconds} seconds.",
                             param="seconds", code="extension_limit_exceeded")
        recipe = source.recipe.model_copy(
            update={"segments": [*source.recipe.segments, Segment(seconds=seconds, seed=prompt)]})
        return self._new_job("extension", source.model, prompt, recipe, extension_count=source.extension_count + 1)

    async def edit(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("prompt", "video"))
        prompt = required_text(fields, "prompt", self.profile.prompt_max_chars)
        video = fields.get("video")
        if isinstance(video, Upload):
            recipe = self._uploaded_recipe(video.data)
            model = self.profile.default_model
        else:
            source = self._completed_source(_video_id(fields))
            recipe, model = source.recipe, source.model
        return self._new_job("edit", model, prompt, _tinted(recipe, prompt))

    def _uploaded_recipe(self, data: bytes) -> Recipe:
        clip = probe(data)
        if clip is None:
            raise ApiProblem(400, "Invalid file 'video': the file could not be decoded as a video.", param="video")
        size = "{}x{}".format(*clip.size)
        if size not in self.profile.all_sizes:
            raise invalid_value("video", size, self.profile.all_sizes)
        key = f"uploads/{hashlib.sha256(data).hexdigest()}"
        self.state.put(key, data)
        segment = Segment(kind="upload", seconds=max(1, round(clip.seconds)), seed=key, reference=key)
        return Recipe(size=clip.size, segments=[segment])

    async def remix(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("prompt",))
        prompt = required_text(fields, "prompt", self.profile.prompt_max_chars)
        source = self._completed_source(request.path_params["id"], "video_id")
        return self._new_job("remix", source.model, prompt, _tinted(source.recipe, prompt),
                             remixed_from_video_id=source.id)

    # -- endpoints: characters and files -----------------------------------------------------

    async def create_character(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("name", "video"))
        name = required_text(fields, "name", 80)
        upload = fields.get("video")
        if upload is None:
            raise missing_parameter("video")
        if not isinstance(upload, Upload):
            raise invalid_type("video", "a file", upload)
        clip = probe(upload.data)
        if clip is None:
            raise ApiProblem(400, "Invalid file 'video': the file could not be decoded as a video.", param="video")
        low, high = self.profile.character_clip_seconds
        if not low - 1 / FPS <= clip.seconds <= high + 1 / FPS:
            raise ApiProblem(400, f"Invalid 'video': character clips must be {low:g} to {high:g} seconds long, "
                             f"but this one is {clip.seconds:.2f} seconds.", param="video")
        record = {"id": new_id("char_"), "name": name, "created_at": int(now())}
        self.state.save_record("characters", record)
        return JSONResponse(record)

    async def get_character(self, request: Request) -> Response:
        record = self.state.characters.get(request.path_params["id"])
        if record is None:
            raise not_found("character", request.path_params["id"])
        return JSONResponse(record)

    async def upload_file(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("file", "purpose", "expires_after"))
        purpose = required_text(fields, "purpose", 64)
        upload = fields.get("file")
        if not isinstance(upload, Upload):
            raise missing_parameter("file")
        data = upload.data
        record = {"id": new_id("file-"), "object": "file", "bytes": len(data), "created_at": int(now()),
                  "filename": upload.filename, "purpose": purpose, "status": "processed",
                  "expires_at": None, "status_details": None}
        self.state.put(f"files/{record['id']}.bin", data)
        self.state.save_record("files", record)
        return JSONResponse(record)

    async def file_info(self, request: Request) -> Response:
        record = self.state.files.get(request.path_params["id"])
        if record is None:
            raise ApiProblem(404, f"No such File object: {request.path_params['id']}", param="id")
        return JSONResponse(record)

    async def file_content(self, request: Request) -> Response:
        await self.file_info(request)
        return Response(self.state.get(f"files/{request.path_params['id']}.bin"),
                        media_type="application/octet-stream")

    # -- introspection -----------------------------------------------------------------------

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "responses": dict(self.responses),
            "faults": dict(self.faults),
            "jobs": sum(self.jobs_created.values()),
            "jobs_by_kind": dict(self.jobs_created),
            "batches": self.batches.created,
            "webhooks": dict(self.webhook_stats),
            "limited_at_seconds": list(self.limited_at),
            "character_uses": dict(self.character_uses),
            "uptime_seconds": round(time.monotonic() - self.started, 3),
        }


def _dimensions(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def _video_id(fields: dict[str, Any]) -> str:
    video = fields.get("video")
    if video is None:
        raise missing_parameter("video")
    if not isinstance(video, dict) or not isinstance(video.get("id"), str):
        raise invalid_type("video", "an object with an 'id'", video)
    check_known(video, ("id",))
    return str(video["id"])


def _tinted(recipe: Recipe, prompt: str) -> Recipe:
    segments = [s.model_copy(update={"tint": [*s.tint, prompt]}) for s in recipe.segments]
    return recipe.model_copy(update={"segments": segments})


def _check_image(data: bytes, size: str, formats: list[str]) -> None:
    """The real API's checks, in its order: a decodable image, an accepted format, the exact size."""
    Image.init()  # registers every plugin's MIME type (WebP's among them)
    accepted = quoted_list(Image.MIME.get(f, f.lower()) for f in formats)
    try:
        image = Image.open(io.BytesIO(data))
        image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ApiProblem(400, f"Invalid file 'input_reference': the file could not be read as an image. "
                         f"Supported file formats are {accepted}.",
                         param="input_reference", code="invalid_image") from e
    if image.format not in formats:
        mime = Image.MIME.get(image.format or "", "application/octet-stream")
        raise ApiProblem(400, f"Invalid file 'input_reference': unsupported mimetype ('{mime}'). "
                         f"Supported file formats are {accepted}.",
                         param="input_reference", code="unsupported_file")
    if "{}x{}".format(*image.size) != size:
        raise ApiProblem(400, "Inpaint image must match the requested width and height")


async def _fetch_image_url(url: Any) -> bytes:
    if not isinstance(url, str):
        raise invalid_type("input_reference.image_url", "a string", url)
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise ApiProblem(400, "Invalid 'input_reference.image_url': expected a base64-encoded data URL.",
                             param="input_reference.image_url", code="invalid_value")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as e:
            raise ApiProblem(400, "Invalid 'input_reference.image_url': the data URL is not valid base64.",
                             param="input_reference.image_url", code="invalid_value") from e
    if not url.startswith(("http://", "https://")):
        raise ApiProblem(400, "Invalid 'input_reference.image_url': expected an http(s) URL or a data URL.",
                         param="input_reference.image_url", code="invalid_value")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(url)
            answer.raise_for_status()
            return answer.content
    except httpx.HTTPError as e:
        raise ApiProblem(400, f"Invalid 'input_reference.image_url': could not download {url}.",
                         param="input_reference.image_url", code="invalid_image_url") from e


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start:start + 64 * 1024]

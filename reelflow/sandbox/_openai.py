"""The `openai-videos` pose: OpenAI's Video API (`/v1/videos`, `/v1/files`, `/v1/batches`, characters), with
its validation and wording, its video objects and error envelope, and signed Standard Webhooks events."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image, UnidentifiedImageError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..media.video import probe
from ..profiles import ProviderProfile
from ._batches import Batches
from ._config import SandboxConfig
from ._fetch import FetchFailed
from ._media import FPS, Recipe, Segment, tinted
from ._problems import (
    ApiProblem,
    Upload,
    bearer_key,
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
from ._routes import Routes
from ._state import Job, JobKind, SandboxState, new_id, now
from ._webhooks import WebhookSender

if TYPE_CHECKING:
    from ._app import Sandbox

VARIANT_FILES = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.webp", "image/webp"),
                 "spritesheet": ("spritesheet.jpg", "image/jpeg")}


class OpenAIPose:
    """OpenAI's routes on the sandbox's engine."""

    dialect: ClassVar[str] = "openai-videos"
    base_path: ClassVar[str] = "/v1"
    fault_routes: ClassVar[Routes] = Routes(
        create=("POST", r"^/v1/videos$"), status=("GET", r"^/v1/videos/video_[^/?]+$"),
        finished=b'"status":"completed"', download=("GET", r"^/v1/videos/video_[^/]+/content"))

    def __init__(self, engine: Sandbox) -> None:
        self.engine = engine
        config = engine.config
        self.webhooks = (WebhookSender(config.webhook_url, config.webhook_secret, engine.webhook_stats)
                         if config.webhook_url and config.webhook_secret else None)
        self.batches = Batches(engine, self._created, self._as_submitted, max(0.2, config.job_seconds / 2))

    @property
    def config(self) -> SandboxConfig:
        return self.engine.config

    @property
    def profile(self) -> ProviderProfile:
        return self.engine.profile

    @property
    def state(self) -> SandboxState:
        return self.engine.state

    def routes(self) -> list[Route]:
        p, route = self.profile, self.engine.route
        routes = [
            route("POST", "/v1/videos", self.create, creates_job=True),
            route("GET", "/v1/videos/{id}", self.retrieve),
            route("DELETE", "/v1/videos/{id}", self.delete),
            route("GET", "/v1/videos/{id}/content", self.content),
            route("POST", "/v1/files", self.upload_file),
            route("GET", "/v1/files/{id}", self.file_info),
            route("GET", "/v1/files/{id}/content", self.file_content),
            route("GET", "/v1/models", self.list_models),
        ]
        if p.list_jobs:
            routes.append(route("GET", "/v1/videos", self.list_videos))
        if p.extensions:
            routes.append(route("POST", "/v1/videos/extensions", self.extend, creates_job=True))
        if p.edits:
            routes.append(route("POST", "/v1/videos/edits", self.edit, creates_job=True))
        if p.remix:
            routes.append(route("POST", "/v1/videos/{id}/remix", self.remix, creates_job=True))
        if p.batch:
            routes += [route("POST", "/v1/batches", self.batches.create),
                       route("GET", "/v1/batches", self.batches.list_batches),
                       route("GET", "/v1/batches/{id}", self.batches.retrieve),
                       route("POST", "/v1/batches/{id}/cancel", self.batches.cancel)]
        if p.max_characters:
            routes += [route("POST", "/v1/videos/characters", self.create_character),
                       route("GET", "/v1/videos/characters/{id}", self.get_character)]
        return routes

    def problem(self, problem: ApiProblem) -> Response:
        return JSONResponse({"error": problem.error}, status_code=problem.status, headers=problem.headers)

    def key_of(self, request: Request) -> str | None:
        return bearer_key(request)

    def unauthenticated(self, key_given: bool) -> ApiProblem:
        if key_given:
            return ApiProblem(401, "Incorrect API key provided.", code="invalid_api_key")
        return ApiProblem(
            401, "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code="missing_api_key")

    async def job_finished(self, job: Job) -> None:
        """Its `video.completed` or `video.failed` event, signed, when webhooks are configured."""
        if self.webhooks is None:
            return
        self.engine.webhook_stats["sent"] += 1
        if await self.webhooks.deliver("video.failed" if job.failure else "video.completed", job.id):
            self.state.save_job(job.model_copy(update={"webhook_sent": True}))

    async def close(self) -> None:
        if self.webhooks:
            await self.webhooks.close()

    # -- jobs --------------------------------------------------------------------------------

    def _new_job(self, kind: JobKind, model: str, prompt: str, recipe: Recipe, fields: dict[str, Any],
                 **extra: Any) -> Response:
        return JSONResponse(self._as_submitted(self.engine.start_job(kind, model, prompt, recipe, request=fields,
                                                                     **extra)),
                            headers=self._poll_hint())

    def _as_submitted(self, job: Job) -> dict[str, Any]:
        """The create answer: the job as submitted, queued, whatever the clock says."""
        body = video_object(job, job.created_at, self.config.asset_ttl_seconds)
        body.update(status="queued", progress=0, completed_at=None, expires_at=None, error=None)
        return body

    def _poll_hint(self) -> dict[str, str]:
        if not self.profile.poll_hint:
            return {}
        return {"openai-poll-after-ms": str(max(100, min(10_000, int(self.config.job_seconds * 100))))}

    def _completed_source(self, video_id: str, param: str = "video") -> Job:
        job = self.engine.job(video_id, param)
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
            self.engine.character_uses[character] += 1
        reference = await self._reference(fields.get("input_reference"), size)
        recipe = Recipe(size=_dimensions(size), segments=[Segment(seconds=seconds, seed=prompt, reference=reference)],
                        audio=limits.audio)
        return self.engine.start_job("create", model, prompt, recipe, request=fields)

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
        return self.state.keep_image(data)

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
        url = value["image_url"]
        if not isinstance(url, str):
            raise invalid_type("input_reference.image_url", "a string", url)
        try:
            return await self.engine.image_at(url)
        except FetchFailed as e:
            code = "invalid_image_url" if url.startswith(("http://", "https://")) else "invalid_value"
            raise ApiProblem(400, f"Invalid 'input_reference.image_url': could not download {url} ({e}).",
                             param="input_reference.image_url", code=code) from e

    async def retrieve(self, request: Request) -> Response:
        job = self.engine.job(request.path_params["id"])
        hint = {} if job.is_terminal(now()) else self._poll_hint()
        return JSONResponse(video_object(job, now(), self.config.asset_ttl_seconds), headers=hint)

    async def list_models(self, request: Request) -> Response:
        """`GET /v1/models`: the profile's models and their dated snapshots, each a model object (openai SDK
        `types.Model`: id, object, created, owned_by), as OpenAI and the gateways that forward to it list theirs."""
        names = [name for name, limits in self.profile.models.items() for name in (name, *limits.snapshots)]
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 1759708800, "owned_by": "system"} for name in names]})

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
            cursor = self.engine.job(query["after"], "after")
            jobs = [j for j in jobs if (j.seq > cursor.seq if order == "asc" else j.seq < cursor.seq)]
        page = jobs[: int(limit_text)]
        data = [video_object(j, now(), self.config.asset_ttl_seconds) for j in page]
        return JSONResponse({
            "object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": len(jobs) > len(page),
        })

    async def delete(self, request: Request) -> Response:
        job = self.engine.job(request.path_params["id"])
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
        job = self.engine.job(request.path_params["id"])
        status, _ = job.status(now())
        if status != "completed":
            raise ApiProblem(400, f"Video '{job.id}' has no content: its status is '{status}'.",
                             param="video_id", code="video_not_ready")
        if self.engine.expired(job):
            raise ApiProblem(404, f"The assets of video '{job.id}' have expired.", code="video_expired")
        data = await self.engine.media(job, variant)
        media_type = VARIANT_FILES[variant][1]
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
        return self._new_job("extension", source.model, prompt, recipe, fields,
                             extension_count=source.extension_count + 1)

    async def edit(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("prompt", "video", "model"))  # the video guide sets `model` on edits
        prompt = required_text(fields, "prompt", self.profile.prompt_max_chars)
        video = fields.get("video")
        if isinstance(video, Upload):
            model, limits = self._model(fields)
            recipe = self._uploaded_recipe(video.data).model_copy(update={"audio": limits.audio})
        else:
            source = self._completed_source(_video_id(fields))
            recipe, model = source.recipe, source.model
        return self._new_job("edit", model, prompt, tinted(recipe, prompt), fields)

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
        return self._new_job("remix", source.model, prompt, tinted(source.recipe, prompt), fields,
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


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start:start + 64 * 1024]


def video_object(job: Job, at: float, asset_ttl: int) -> dict[str, Any]:
    """The job as the API's video object at wall time `at` (every key present)."""
    status, progress = job.status(at)
    terminal = status in ("completed", "failed")
    return {
        "id": job.id,
        "object": "video",
        "created_at": int(job.created_at),
        "status": status,
        "completed_at": int(job.finishes_at) if terminal else None,
        "error": job.failure if status == "failed" else None,
        "expires_at": int(job.finishes_at) + asset_ttl if status == "completed" else None,
        "model": job.model,
        "progress": progress,
        "prompt": job.prompt,
        "remixed_from_video_id": job.remixed_from_video_id,
        "seconds": str(job.recipe.seconds),
        "size": job.size,
    }

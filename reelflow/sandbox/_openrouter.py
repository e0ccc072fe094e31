"""The `openrouter-videos` pose: OpenRouter's video API under `/api/v1`, as its published reference and its
Python SDK describe it (OpenRouterTeam/docs openapi/openapi.yaml, 2026-08-22; `openrouter` 1.3.84).

Create (`POST /api/v1/videos`, JSON, answered 202; the fields of `components/videogenerationrequest.py`), status
(`GET /api/v1/videos/{id}`: pending, in_progress, completed, failed, cancelled, expired), content
(`GET /api/v1/videos/{id}/content?index=0`, `video/mp4`), the model list (`GET /api/v1/videos/models`), and
signed, expiring download URLs in a finished job's `urls`, served here under `/_storage/` (OpenRouter's own
storage is elsewhere). Errors come in OpenRouter's envelope, `{"error": {"code": <status>, "message": ...,
"metadata": ...}}`. A create with `previous_job_id` continues that job's video on its model: with a `duration`, an
extension (the video made longer by it), without, an edit (the video changed as the prompt says). A prompt with
`[cancelled]` or `[expired]` ends its job so.

Where the reference is silent, this says what it assumes: an unknown top-level field is refused (400); a
field of the wrong type or a value the model does not offer is a 400 naming the field and what is offered, and so
is a passthrough option the model's `allowed_passthrough_parameters` lack (options under other providers' slugs
are ignored, as the SDK says); with `previous_job_id`, a `duration` makes an extension and none an edit, and a job
not completed, or of a model that does not continue, is a 400; content before completion is 409, after the files
expired 410 (the SDK maps both, unexplained). A finished job is announced to the create's `callback_url` (else the
workspace's default: `--webhook-url`), signed with the workspace's secret (`--webhook-secret`) as OpenRouter signs
it."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..profiles import (
    ASPECT_RATIOS,
    RESOLUTION_LINES,
    ModelLimits,
    ProviderProfile,
    dimensions_of,
    frame_of,
    tier_of,
    video_tokens_per_second,
)
from ._fetch import FetchFailed, image_format
from ._media import Recipe, Segment, tinted
from ._problems import ApiProblem, bearer_key, read_fields
from ._routes import Routes
from ._state import Job, JobKind, SandboxState, now
from ._webhooks import Deliveries, openrouter_callback

if TYPE_CHECKING:
    from ._app import Sandbox

T = TypeVar("T")
BASE = "/api/v1"
# SDK 1.3.84 `VideoGenerationRequest`: every field it has.
_FIELDS = ("model", "prompt", "duration", "resolution", "aspect_ratio", "size", "generate_audio", "seed",
           "frame_images", "input_references", "callback_url", "provider", "session_id", "user", "trace",
           "previous_job_id", "creativity", "upscale_factor")
_UPSCALING = ("creativity", "upscale_factor")  # "for video upscaling models only" (the same model)
# A callback's `data` keys (OpenRouter's Webhook.site delivery, `data_keys`, and `VideoWebhookEvent`:
# openrouter.ai/docs/cookbook/video-generation/video-generation-webhooks)
_CALLBACK_DATA = ("id", "status", "generation_id", "unsigned_urls", "usage", "error")
_STATUS = {"queued": "pending", "in_progress": "in_progress", "completed": "completed", "failed": "failed"}
# Prompt markers that end a job as OpenRouter's final statuses other than failed (SDK 1.3.84
# `VideoGenerationResponseStatus`), with the `error` the job then says.
_ENDINGS = {"[cancelled]": ("cancelled", "The video generation was cancelled"),
            "[expired]": ("expired", "The video generation expired before it finished")}


@dataclass(frozen=True)
class _Making:
    """What a create makes: a job of `kind` on `model`, rendered by `recipe`, its video extended `extensions`
    times."""

    kind: JobKind
    model: str
    recipe: Recipe
    extensions: int = 0


def bad_request(message: str, param: str | None = None) -> ApiProblem:
    return ApiProblem(400, message, param=param)


class OpenRouterPose:
    dialect: ClassVar[str] = "openrouter-videos"
    base_path: ClassVar[str] = BASE
    fault_routes: ClassVar[Routes] = Routes(
        create=("POST", r"^/api/v1/videos$"), status=("GET", r"^/api/v1/videos/gen-[^/?]+$"),
        finished=b'"status":"completed"', download=("GET", r"^/_storage/videos/"))

    def __init__(self, engine: Sandbox) -> None:
        self.engine = engine
        self.signing_key = secrets.token_bytes(32)
        self.callbacks = Deliveries(engine.webhook_stats)

    @property
    def profile(self) -> ProviderProfile:
        return self.engine.profile

    @property
    def state(self) -> SandboxState:
        return self.engine.state

    def routes(self) -> list[Route]:
        route = self.engine.route
        return [
            route("POST", f"{BASE}/videos", self.create, creates_job=True),
            route("GET", f"{BASE}/videos/models", self.models, public=False),  # listed without a key
            route("GET", f"{BASE}/key", self.current_key),
            route("GET", f"{BASE}/videos/{{id}}", self.retrieve),
            route("GET", f"{BASE}/videos/{{id}}/content", self.content),
            route("GET", "/_storage/videos/{id}/{index}.mp4", self.signed_content, public=False),
        ]

    def problem(self, problem: ApiProblem) -> Response:
        metadata = {key: value for key, value in (("param", problem.error["param"]),
                                                  ("reason", problem.error["code"])) if value}
        return JSONResponse({"error": {"code": problem.status, "message": problem.message,
                                       "metadata": metadata or None}, "user_id": None},
                            status_code=problem.status, headers=problem.headers)

    def key_of(self, request: Request) -> str | None:
        return bearer_key(request)

    def unauthenticated(self, key_given: bool) -> ApiProblem:
        return ApiProblem(401, "User not found." if key_given else "Missing Authentication header")

    async def job_finished(self, job: Job) -> None:
        """Its callback, to the create's `callback_url` or else the workspace's default (the sandbox's
        `webhook_url`), signed with the workspace's secret (the sandbox's `webhook_secret`): `openrouter_callback`."""
        url = job.request.get("callback_url") or self.engine.config.webhook_url
        if not url:
            return
        self.engine.webhook_stats["sent"] += 1
        generation = self._generation(job)
        data: dict[str, Any] = {key: generation[key] for key in _CALLBACK_DATA if key in generation}
        if await self.callbacks.post(url, *openrouter_callback({**data, "model": job.model},
                                                               self.engine.config.webhook_secret)):
            self.state.save_job(job.model_copy(update={"webhook_sent": True}))

    async def close(self) -> None:
        await self.callbacks.close()

    # -- create --------------------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise bad_request("Request body must be JSON")
        fields = await read_fields(request)
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise bad_request(f"Unrecognized field: '{unknown[0]}'", unknown[0])
        upscaling = next((name for name in _UPSCALING if fields.get(name) is not None), None)
        if upscaling is not None:
            raise bad_request(f"{upscaling} is supported by video upscaling models only", upscaling)
        model, limits = self._model(fields)
        prompt = self._prompt(fields)
        self._passthrough(fields.get("provider"), limits)
        if fields.get("previous_job_id") is not None:
            return self._started(self._continued(fields, prompt), prompt, fields)
        seconds = self._duration(fields, model, limits)
        size = self._size(fields, model, limits)
        audio = _typed(fields, "generate_audio", bool, "a boolean")
        if audio and not limits.audio:
            raise bad_request(f"{model} does not generate audio", "generate_audio")
        _typed(fields, "seed", int, "an integer")
        callback = _typed(fields, "callback_url", str, "a string")
        if callback is not None and not _callable(callback):
            raise bad_request("callback_url must be an HTTPS URL", "callback_url")
        first, last = await self._frames(fields.get("frame_images"), size)
        subjects = await self._references(fields.get("input_references"), model, limits)
        look = json.dumps([prompt, subjects]) if subjects else prompt
        segment = Segment(seconds=seconds, seed=look, reference=first, last_reference=last)
        recipe = Recipe(size=_dimensions(size), segments=[segment], audio=limits.audio and audio is not False)
        return self._started(_Making("create", model, recipe), prompt, fields)

    def _started(self, making: _Making, prompt: str, fields: dict[str, Any]) -> Response:
        # "in the `gen-vid-<timestamp>-<20 alphanumerics>` generation ID format" (SDK 1.3.84)
        job = self.engine.start_job(making.kind, making.model, prompt, making.recipe, request=fields,
                                    extension_count=making.extensions,
                                    job_id=f"gen-vid-{int(now())}-{secrets.token_hex(10)}")
        ending = next((ending for marker, ending in _ENDINGS.items() if marker in prompt), None)
        if ending is not None and job.failure is None:
            job.failure = {"code": ending[0], "message": ending[1]}
            self.state.save_job(job)
        return JSONResponse({"id": job.id, "polling_url": f"{BASE}/videos/{job.id}", "status": "pending"},
                            status_code=202)

    def _continued(self, fields: dict[str, Any], prompt: str) -> _Making:
        """A create with `previous_job_id`: "ID of a completed video job to edit or extend ... The new job runs on
        the same model and endpoint that produced the previous one. Only models that support continuation accept
        this field" (SDK 1.3.84 `VideoGenerationRequest.previous_job_id`). With a `duration`, the video made that
        much longer; without, the video edited."""
        previous = _typed(fields, "previous_job_id", str, "a video job id")
        source = self.state.jobs.get(previous or "")
        if source is None:
            raise bad_request(f"previous_job_id: video generation '{previous}' not found", "previous_job_id")
        status, _ = source.status(now())
        if status != "completed":
            raise bad_request(f"previous_job_id: video generation '{previous}' is not completed (status: "
                              f"{self._status_word(source)})", "previous_job_id")
        limits = self._limits(source.model)
        if limits is None or limits.continuation is False:
            raise bad_request(f"{source.model} does not support continuation (previous_job_id)", "previous_job_id")
        seconds = _typed(fields, "duration", int, "an integer number of seconds")
        if seconds is None:
            return _Making("edit", source.model, tinted(source.recipe, prompt))
        extending = self.profile.extensions
        if extending is None or seconds not in extending.seconds:
            offered = ", ".join(map(str, extending.seconds if extending else []))
            raise bad_request(f"duration {seconds} cannot extend a video; supported: {offered}", "duration")
        if source.extension_count >= extending.max_count or source.recipe.seconds + seconds > \
                extending.max_total_seconds:
            raise bad_request(f"previous_job_id: the video cannot be extended further (at most {extending.max_count} "
                              f"extensions, {extending.max_total_seconds} s)", "previous_job_id")
        recipe = source.recipe.model_copy(
            update={"segments": [*source.recipe.segments, Segment(seconds=seconds, seed=prompt)]})
        return _Making("extension", source.model, recipe, source.extension_count + 1)

    def _passthrough(self, value: Any, limits: ModelLimits) -> None:
        """`provider`: `{options: {<provider slug>: {...}}}` (SDK 1.3.84 `VideoGenerationRequestProvider`); "Only
        options for the matched provider are forwarded; the rest are ignored" (`VideoGenerationRequestOptions`).
        The matched provider's (the model's `upstream`) options must be among the model's
        `allowed_passthrough_parameters`."""
        if value is None:
            return
        options = value.get("options", {}) if isinstance(value, dict) else None
        if not isinstance(options, dict) or not all(isinstance(given, dict) for given in options.values()):
            raise bad_request("provider must be {options: {<provider slug>: {...}}}", "provider")
        matched = options.get(limits.upstream, {}) if limits.upstream else {}
        refused = [name for name in matched if name not in limits.passthrough]
        if refused:
            raise bad_request(f"provider.options.{limits.upstream}: '{refused[0]}' is not an allowed passthrough "
                              f"parameter (allowed: {', '.join(limits.passthrough)})", "provider.options")

    async def _references(self, value: Any, model: str, limits: ModelLimits) -> list[str]:
        """`input_references`: image references (`ContentPartImage`, `{type: image_url, image_url: {url}}`), each
        fetched and kept (blob keys); audio and video ones (`audio_url`, `video_url`) are "only honored by
        providers that support them" (SDK 1.3.84 `InputReference`): ignored here."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad_request("input_references must be an array", "input_references")
        images = []
        for index, item in enumerate(value):
            where = f"input_references[{index}]"
            kind = item.get("type") if isinstance(item, dict) else None
            part = item.get(kind) if isinstance(item, dict) and isinstance(kind, str) else None
            if kind not in ("image_url", "audio_url", "video_url") or not isinstance(part, dict) or not isinstance(
                    part.get("url"), str):
                raise bad_request(f"{where} must be {{type: image_url, image_url: {{url}}}} (or audio_url, "
                                  "video_url)", where)
            if kind == "image_url":
                images.append(part["url"])
        subjects = self.profile.subjects
        if images and (subjects is None or limits.references is False):
            raise bad_request(f"{model} does not take reference images", "input_references")
        if subjects is not None and len(images) > subjects.max_count:
            raise bad_request(f"at most {subjects.max_count} reference images", "input_references")
        return [await self._image(url, f"input_references[{index}].image_url.url") for index, url in enumerate(images)]

    def _model(self, fields: dict[str, Any]) -> tuple[str, ModelLimits]:
        model = fields.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("model is required", "model")
        limits = self._limits(model)
        if limits is None:
            raise bad_request(f"Model '{model}' does not exist or does not generate video", "model")
        return model, limits

    def _prompt(self, fields: dict[str, Any]) -> str:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise bad_request("prompt is required", "prompt")
        if len(prompt) > self.profile.prompt_max_chars:
            raise bad_request(f"prompt is {len(prompt)} characters long; at most {self.profile.prompt_max_chars}",
                              "prompt")
        return prompt

    def _duration(self, fields: dict[str, Any], model: str, limits: ModelLimits) -> int:
        duration = fields.get("duration", self.profile.default_seconds)
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise bad_request("duration must be an integer number of seconds", "duration")
        if duration not in limits.seconds:
            raise bad_request(f"duration {duration} is not supported by {model}; supported durations: "
                              f"{', '.join(map(str, limits.seconds))}", "duration")
        return duration

    def _size(self, fields: dict[str, Any], model: str, limits: ModelLimits) -> str:
        """`size`, or `aspect_ratio` with `resolution` (what is not given taken from the model's default frame),
        as a frame the model makes."""
        size = _typed(fields, "size", str, "a string like 1280x720")
        ratio = _typed(fields, "aspect_ratio", str, "a string like 16:9")
        tier = _typed(fields, "resolution", str, "a string like 720p")
        for name, value, offered in (("aspect_ratio", ratio, ASPECT_RATIOS), ("resolution", tier, RESOLUTION_LINES)):
            if value is not None and value not in offered:
                raise bad_request(f"{name} must be one of {', '.join(offered)}", name)
        if size is not None:
            frame = frame_of(size, list(ASPECT_RATIOS), list(RESOLUTION_LINES)) or (None, None)
            if (ratio or frame[0]) != frame[0] or (tier or frame[1]) != frame[1]:
                raise bad_request("size conflicts with aspect_ratio or resolution", "size")
        else:
            default = limits.sizes[0] if self.profile.default_size not in limits.sizes else self.profile.default_size
            inherited = frame_of(default, list(ASPECT_RATIOS), list(RESOLUTION_LINES)) or ("16:9", "720p")
            size = "{}x{}".format(*dimensions_of(ratio or inherited[0], tier or inherited[1]))
        if size not in limits.sizes:
            given = [(name, value) for name, value in (("size", fields.get("size")), ("aspect_ratio", ratio),
                                                       ("resolution", tier)) if value]
            asked = " with ".join(f"{name} {value}" for name, value in given) or f"size {size}"
            raise bad_request(f"{asked} is not supported by {model}; supported sizes: {', '.join(limits.sizes)}",
                              given[0][0] if given else "size")
        return size

    async def _frames(self, value: Any, size: str) -> tuple[str | None, str | None]:
        """The first and last frame images (blob keys), each fetched and checked to be an image."""
        if value is None:
            return None, None
        if not isinstance(value, list):
            raise bad_request("frame_images must be an array", "frame_images")
        frames: dict[str, str] = {}
        for index, item in enumerate(value):
            where = f"frame_images[{index}]"
            url = item.get("image_url", {}).get("url") if isinstance(item, dict) and isinstance(
                item.get("image_url"), dict) else None
            if not isinstance(item, dict) or item.get("type") != "image_url" or not isinstance(url, str):
                raise bad_request(f"{where} must be {{type: image_url, image_url: {{url}}, frame_type}}", where)
            kind = item.get("frame_type")
            if kind not in ("first_frame", "last_frame"):
                raise bad_request(f"{where}.frame_type must be first_frame or last_frame", f"{where}.frame_type")
            if kind == "last_frame" and not self.profile.last_frame:
                raise bad_request("this model does not take a last frame", f"{where}.frame_type")
            if kind in frames:
                raise bad_request(f"{where}: a second {kind}", f"{where}.frame_type")
            frames[kind] = await self._image(url, f"{where}.image_url.url")
        return frames.get("first_frame"), frames.get("last_frame")

    async def _image(self, url: str, param: str) -> str:
        try:
            data = await self.engine.image_at(url)
        except FetchFailed as e:
            raise bad_request(f"Failed to download image from {param}: {e}", param) from e
        if image_format(data) not in self.profile.reference_formats:
            raise bad_request(f"{param} is not an image in a supported format "
                              f"({', '.join(self.profile.reference_formats)})", param)
        return self.state.keep_image(data)

    # -- status, content, models ---------------------------------------------------------------------------

    async def retrieve(self, request: Request) -> Response:
        return JSONResponse(self._generation(self._job(request.path_params["id"])))

    def _job(self, job_id: str) -> Job:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise ApiProblem(404, "Video generation not found")
        return job

    def _status_word(self, job: Job) -> str:
        """The job's status in OpenRouter's words: an ended job's own (failed, cancelled, expired)."""
        status, _ = job.status(now())
        ended = job.failure.get("code") if status == "failed" and job.failure else None
        return ended if ended in ("cancelled", "expired") else _STATUS[status]

    def _generation(self, job: Job) -> dict[str, Any]:
        status, _ = job.status(now())
        body: dict[str, Any] = {"id": job.id, "polling_url": f"{BASE}/videos/{job.id}",
                                "status": self._status_word(job),
                                "generation_id": f"gen-{hashlib.sha256(job.id.encode()).hexdigest()[:20]}"}
        if status == "failed":
            body["error"] = job.failure["message"] if job.failure else "Video generation failed"
        if status == "completed":
            body["unsigned_urls"] = [f"{BASE}/videos/{job.id}/content?index=0"]
            body["usage"] = {"cost": self._cost(job), "is_byok": False}
            if not self.engine.expired(job):
                expires = int(job.finishes_at + self.engine.config.asset_ttl_seconds)
                body["urls"] = [f"/_storage/videos/{job.id}/0.mp4?expires={expires}&signature="
                                f"{self._signature(job.id, expires)}"]
                body["expires_at"] = expires
        return body

    def _cost(self, job: Job) -> float | None:
        """Its price per second times the seconds it made: an extension's own (its `duration`; the source's were
        paid for by the source), a new clip's or an edit's whole video, as reelflow's estimate prices them."""
        limits = self._limits(job.model)
        price = limits.price_per_second.get(job.size) if limits else None
        extension = job.request.get("previous_job_id") is not None and "duration" in job.request
        made = job.recipe.segments[-1].seconds if extension else job.recipe.seconds
        return None if price is None else round(price * made, 4)

    def _signature(self, job_id: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    async def content(self, request: Request) -> Response:
        index = request.query_params.get("index", "0")
        job = self._job(request.path_params["id"])
        if index != "0":
            raise ApiProblem(404, f"No output at index {index}")
        return await self._video(job)

    async def signed_content(self, request: Request) -> Response:
        """A finished job's video by its signed URL (no key; the signature and the expiry are the key)."""
        job_id, expires = request.path_params["id"], request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        if not expires.isdigit() or not hmac.compare_digest(signature, self._signature(job_id, int(expires))):
            return Response("Forbidden: bad signature", status_code=403, media_type="text/plain")
        if time.time() > int(expires):
            return Response("Forbidden: the URL expired", status_code=403, media_type="text/plain")
        return await self._video(self._job(job_id))

    async def _video(self, job: Job) -> Response:
        status, _ = job.status(now())
        if status != "completed":
            raise ApiProblem(409, f"Video generation is not completed (status: {self._status_word(job)})")
        if self.engine.expired(job):
            raise ApiProblem(410, "The video is no longer available")
        return Response(await self.engine.media(job, "video"), media_type="video/mp4")

    async def current_key(self, request: Request) -> Response:
        """`GET /api/v1/key`: the key's own record (the SDK's `GetCurrentKeyResponse`, every required field), for
        a key without limits that has spent nothing."""
        usage = dict.fromkeys(("usage", "usage_daily", "usage_weekly", "usage_monthly", "byok_usage",
                               "byok_usage_daily", "byok_usage_weekly", "byok_usage_monthly"), 0.0)
        return JSONResponse({"data": {
            **usage, "label": "sk-or-v1-san...box", "limit": None, "limit_remaining": None, "limit_reset": None,
            "is_free_tier": False, "is_management_key": False, "is_provisioning_key": False,
            "include_byok_in_limit": False, "allowed_data_regions": [], "budgets": [], "effective_budget": None,
            "creator_user_id": None, "organization_id": None, "workspace_id": None,
            "free_model_daily_requests": {"limit": 50, "remaining": 50, "used": 0},
            "rate_limit": {"interval": "10s", "note": "This field is deprecated and safe to ignore.", "requests": -1}}})

    async def models(self, request: Request) -> Response:
        """The catalog (SDK 1.3.84 `VideoModelsListResponse` of `VideoModel`, every required field): the profile's
        models, then those it lacks (`_NEWER`), each priced by `pricing_skus` as the catalog prices."""
        listed = {**self.profile.models, **{name: limits for name, (limits, _) in _NEWER.items()
                                           if self.profile.model_limits(name) is None}}
        return JSONResponse({"data": [self._model_entry(name, limits) for name, limits in listed.items()]})

    def _limits(self, model: str) -> ModelLimits | None:
        """The model's limits: the profile's, else a catalog model the profile lacks."""
        newer = _NEWER.get(model)
        return self.profile.model_limits(model) or (newer[0] if newer else None)

    def _model_entry(self, name: str, limits: ModelLimits) -> dict[str, Any]:
        frames = limits.frames if limits.frames is not None else (
            ["first_frame", "last_frame"] if self.profile.last_frame else ["first_frame"])
        newer = _NEWER.get(name)
        return {"id": name, "canonical_slug": (limits.snapshots or [name])[0], "name": name, "created": 1774000000,
                "supported_resolutions": limits.resolutions or None,
                "supported_aspect_ratios": limits.aspect_ratios or None,
                "supported_sizes": limits.sizes, "supported_durations": limits.seconds,
                "supported_frame_images": frames, "upscale_factor": None, "creativity": None,
                "generate_audio": limits.audio, "seed": True,  # (it takes a seed for every model)
                "allowed_passthrough_parameters": limits.passthrough,
                "pricing_skus": newer[1] if newer and self.profile.model_limits(name) is None else _skus(limits)}


def _skus(limits: ModelLimits) -> dict[str, str]:
    """A profile model's prices as catalog SKUs, one per resolution tier: per second (`duration_seconds_
    with_audio_720p`, `duration_seconds_720p` for a silent model) where the tier's sizes cost the same, else per
    video token (`video_tokens_720p`, as Seedance is priced), from the tier's first size."""
    by_tier: dict[str, dict[str, float]] = {}
    for size, price in limits.price_per_second.items():
        tier = tier_of(size)
        if tier is not None:
            by_tier.setdefault(tier, {})[size] = price
    skus = {}
    for tier, prices in by_tier.items():
        size, price = next(iter(prices.items()))
        if len(set(prices.values())) == 1:
            skus[f"duration_seconds_{'with_audio_' if limits.audio else ''}{tier.lower()}"] = f"{price:g}"
        else:
            skus[f"video_tokens_{tier.lower()}"] = f"{price / video_tokens_per_second(size):.3g}"
    return skus


# Models the catalog lists that the built-in profile (copied 2026-10-09) lacks, among those OpenRouter's cookbook
# shows it listing (cookbook/video-generation/choose-video-model: google/veo-3.1-lite, alibaba/wan-2.7, ...), with
# SKUs named as the catalog names them; the figures are the sandbox's own.
_NEWER: dict[str, tuple[ModelLimits, dict[str, str]]] = {
    "google/veo-3.1-lite": (
        ModelLimits(snapshots=["google/veo-3.1-lite-20260520"], seconds=[4, 6, 8], aspect_ratios=["16:9", "9:16"],
                    resolutions=["720p", "1080p"], frames=["first_frame", "last_frame"],
                    passthrough=["negativePrompt", "personGeneration"]),
        {"duration_seconds_with_audio_720p": "0.05", "duration_seconds_with_audio_1080p": "0.08",
         "duration_seconds_without_audio_720p": "0.03", "duration_seconds_without_audio_1080p": "0.05"}),
    "alibaba/wan-2.7": (
        ModelLimits(snapshots=["alibaba/wan-2.7-20260601"], seconds=[5, 10, 15], aspect_ratios=["16:9", "9:16", "1:1"],
                    resolutions=["720p", "1080p"], frames=["first_frame"], audio=False),
        {"duration_seconds_720p": "0.10", "duration_seconds_1080p": "0.15", "cents_per_image_input": "1"}),
}


def _typed(fields: dict[str, Any], name: str, kind: type[T], described: str) -> T | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_request(f"{name} must be {described}", name)
    return value


def _callable(url: str) -> bool:
    """"Must be HTTPS" (SDK 1.3.84 `VideoGenerationRequest.callback_url`); the sandbox also calls http:// on this
    machine (a receiver started beside it, in tests and demos)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def _dimensions(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)

"""The `google-interactions` pose: Gemini Omni as google-genai 3.6.1's Interactions client reaches it
(`google/genai/_gaos/interactions.py`), on the Gemini API (`/{version}/interactions`, an `x-goog-api-key`) and on
Vertex AI (`/{version}/projects/{p}/locations/{l}/interactions` with an OAuth token, or without the project in
express mode): `POST .../interactions` (`CreateModelInteraction`), `GET .../interactions/{id}`,
`POST .../interactions/{id}/cancel`, `DELETE .../interactions/{id}`; and the model look-up of `client.models.get`
(`/{version}/models/{model}`, Vertex `/{version}/publishers/google/models/{model}`).

Strict as the SDK's types: a create's field names are `createmodelinteraction.py`'s (another is refused), its
`input` the SDK's normal form (one `user_input` step of `text` and `image` parts) or a plain string, its
`response_format` `videoresponseformat.py`'s (`aspect_ratio`, `resolution`, `duration`, `delivery`, `gcs_uri`), its
task `videoconfig.py`'s; an interaction answers with `interaction.py`'s fields and `InteractionStatus` words, its
video a `video` part of a `model_output` step (`videocontent.py`), an error in the envelope of `error.py`
(`{"error": {"code": a word, "message"}}`, as the live API answers: `{"code": "invalid_request"}`).

Where neither the SDK nor Google's pages say, this says what it assumes: a video interaction must run in the
background (`background: true`); `duration` is a protobuf Duration's JSON ("8s"); images go inline (no Files API:
an image's `uri` is refused); the video comes inline, or with `delivery: uri` and a `gcs_uri` (gs://) it is written
there through fsspec and answered by its `uri`; a blocked prompt ends `failed`
with the error code `safety_blocked`; a server-side failure `failed` with `internal_error`; no webhooks
(`webhook_config` is refused). A first frame (and a last one) is `image_to_video` with one or two images,
references `reference_to_video` with one to six (as Omni infers from the number of images when no task is given);
an extension (`extend`) adds 3-10 s to a finished interaction's video, a refinement (`edit`) redoes it whole."""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..profiles import ModelLimits, dimensions_of
from ._fetch import MAX_IMAGE_BYTES, image_format
from ._google import GoogleFront
from ._media import Recipe, Segment, tinted
from ._problems import ApiProblem, read_fields
from ._routes import Routes
from ._state import Job, JobKind, new_id, now

if TYPE_CHECKING:
    pass

GEMINI = "/{version}"
VERTEX = "/{version}/projects/{project}/locations/{location}"
WORDS = {400: "invalid_request", 401: "unauthenticated", 402: "payment_required", 403: "permission_denied",
         404: "not_found", 409: "aborted", 429: "resource_exhausted", 500: "internal_error", 503: "unavailable",
         504: "deadline_exceeded"}
CREATE_FIELDS = ("model", "background", "cached_content", "continuation_token", "environment", "generation_config",
                 "input", "labels", "previous_interaction_id", "response_format", "response_mime_type",
                 "response_modalities", "safety_settings", "service_tier", "store", "stream", "system_instruction",
                 "tools", "webhook_config")
FORMAT_FIELDS = ("type", "aspect_ratio", "resolution", "duration", "delivery", "gcs_uri")
GENERATION_FIELDS = ("image_config", "max_output_tokens", "seed", "speech_config", "stop_sequences", "temperature",
                     "thinking_level", "thinking_summaries", "tool_choice", "top_p", "transcription_config",
                     "video_config")
TASKS = ("text_to_video", "image_to_video", "reference_to_video", "edit", "extend", "upscale")
MODALITIES = ("text", "image", "audio", "video", "document")
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FAILURES = {"moderation_blocked": ("safety_blocked", "The request was blocked by safety filters: the prompt may "
                                   "violate the usage guidelines. You will not be charged for blocked attempts.")}
DURATION = re.compile(r"(\d+)(?:\.0+)?s")
EXTENSION_SECONDS = range(3, 11)  # "a 3-to-10-second extension" (Vertex's "Extend videos")


def invalid(message: str) -> ApiProblem:
    return ApiProblem(400, message)


class InteractionsPose(GoogleFront):
    dialect: ClassVar[str] = "google-interactions"
    base_path: ClassVar[str] = ""  # the SDK adds the API version (and the project) itself
    fault_routes: ClassVar[Routes] = Routes(  # (the video comes inside the finished interaction: no download)
        create=("POST", r"/interactions$"), status=("GET", r"/interactions/[^/?]+(\?.*)?$"),
        finished=b'"status":"completed"')

    def routes(self) -> list[Route]:
        route = self.engine.route
        return [
            *(route("POST", f"{base}/interactions", self.create, creates_job=True) for base in (GEMINI, VERTEX)),
            *(route("GET", f"{base}/interactions/{{id}}", self.get) for base in (GEMINI, VERTEX)),
            *(route("POST", f"{base}/interactions/{{id}}/cancel", self.cancel) for base in (GEMINI, VERTEX)),
            *(route("DELETE", f"{base}/interactions/{{id}}", self.delete) for base in (GEMINI, VERTEX)),
            route("GET", "/{version}/models/{model}", self.model),
            route("GET", "/{version}/publishers/google/models/{model}", self.model),
            route("POST", "/_sandbox/oauth2/token", self.token, public=False),
        ]

    def problem(self, problem: ApiProblem) -> Response:
        return JSONResponse({"error": {"code": WORDS.get(problem.status, "unknown"), "message": problem.message}},
                            status_code=problem.status, headers=problem.headers)

    async def model(self, request: Request) -> Response:
        """A model, as `models.get` answers it (every field google-genai reads is optional)."""
        model = request.path_params["model"]
        if self.profile.model_limits(model) is None:
            raise ApiProblem(404, f"models/{model} is not found for API version {request.path_params['version']}.")
        return JSONResponse({"name": f"models/{model}", "displayName": model, "version": model.rpartition("-")[0]})

    # -- create --------------------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        body = await read_fields(request)
        _known(body, CREATE_FIELDS, "")
        model = body.get("model")
        if not isinstance(model, str):
            raise invalid("model: the model is required (e.g. gemini-omni-1.1-flash)")
        limits = self.profile.model_limits(model)
        if limits is None:
            raise ApiProblem(404, f"models/{model} is not found, or does not make videos.")
        _switches(body)
        prompt, images = await self._input(body.get("input"))
        generation = _object(body.get("generation_config") or {}, "generation_config")
        _known(generation, GENERATION_FIELDS, "generation_config")
        task = _object(generation.get("video_config") or {}, "generation_config.video_config").get("task")
        if task is not None and task not in TASKS:
            raise invalid(f"generation_config.video_config.task: {task!r} is not one of {', '.join(TASKS)}")
        form = _object(body.get("response_format"), "response_format")
        _known(form, FORMAT_FIELDS, "response_format")
        if form.get("type") != "video":
            raise invalid("response_format.type: 'video' is required for a video")
        if form.get("delivery", "inline") not in ("inline", "uri"):
            raise invalid(f"response_format.delivery: {form['delivery']!r} is not one of inline, uri")
        if (form.get("delivery") == "uri") != ("gcs_uri" in form):
            raise invalid("response_format.delivery: uri goes with a gcs_uri (the sandbox poses no Files API), and a "
                          "gcs_uri with delivery uri")
        if "gcs_uri" in form:
            self.storable(form["gcs_uri"], "response_format.gcs_uri")
        previous = body.get("previous_interaction_id")
        kind: JobKind = "create"
        if previous is not None:
            kind, recipe = self._followed(str(previous), task, prompt, form)
        else:
            recipe = self._clip(task, prompt, images, form, limits)
        job = self.engine.start_job(kind, model, prompt, recipe, job_id=new_id("v1_"), request=body,
                                    extension_count=len(recipe.segments) - 1)
        return JSONResponse(self._interaction(job))

    async def _input(self, given: Any) -> tuple[str, list[str]]:
        """The prompt and the images' blob keys, from a string or the SDK's `user_input` step (or its parts)."""
        if isinstance(given, str):
            return given, []
        if not isinstance(given, list) or not given:
            raise invalid("input: a string, or a list of content or steps, is required")
        parts = given
        if all(isinstance(step, dict) and step.get("type") == "user_input" for step in given):
            if len(given) != 1:
                raise invalid("input: one user_input step is supported")
            parts = given[0].get("content")
            if not isinstance(parts, list):
                raise invalid("input[0].content: a list of content is required")
        texts, images = [], []
        for index, part in enumerate(parts):
            where = f"input[0].content[{index}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image":
                images.append(await self._image(part, where))
            else:
                raise invalid(f"{where}: a text or image part is expected here (the sandbox takes no {kind!r} parts)")
        prompt = "\n".join(texts)
        if not prompt.strip():
            raise invalid("input: a text part (the prompt) is required")
        if len(prompt) > self.profile.prompt_max_chars:
            raise invalid(f"input: the prompt is too long: at most {self.profile.prompt_max_chars} characters.")
        return prompt, images

    async def _image(self, part: dict[str, Any], where: str) -> str:
        _known(part, ("type", "data", "mime_type", "resolution", "uri"), where)
        if "uri" in part:
            raise invalid(f"{where}.uri: the sandbox cannot read files by URI ({part['uri']}); send the image inline")
        try:
            data = base64.b64decode(str(part.get("data") or ""), validate=True)
        except binascii.Error as e:
            raise invalid(f"{where}.data: not valid base64") from e
        formats = [IMAGE_TYPES[f] for f in self.profile.reference_formats if f in IMAGE_TYPES]
        found = IMAGE_TYPES.get(image_format(data) or "")
        if part.get("mime_type") not in formats or found != part.get("mime_type"):
            raise invalid(f"{where}: unsupported image; supported MIME types are {', '.join(formats)}, and the bytes "
                          f"must be one (got {part.get('mime_type')!r}, {found or 'not an image'})")
        if len(data) > MAX_IMAGE_BYTES:
            raise invalid(f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB")
        return self.state.keep_image(data)

    def _clip(self, task: Any, prompt: str, images: list[str], form: dict[str, Any], limits: ModelLimits) -> Recipe:
        """A new video: from the prompt alone, from a first (and last) frame, or from references."""
        task = task or ("text_to_video" if not images else "image_to_video" if len(images) <= 2
                        else "reference_to_video")
        if task == "text_to_video" and images:
            raise invalid("text_to_video takes no images")
        if task == "image_to_video" and not 1 <= len(images) <= 2:
            raise invalid("image_to_video takes a first frame, and optionally a last frame (1 or 2 images)")
        subjects = self.profile.subjects
        if task == "reference_to_video" and not (subjects and 1 <= len(images) <= subjects.max_count):
            raise invalid(f"reference_to_video takes 1 to {subjects.max_count if subjects else 0} reference images")
        if task not in ("text_to_video", "image_to_video", "reference_to_video"):
            raise invalid(f"{task} needs previous_interaction_id: the interaction whose video it works on")
        seconds = _seconds(form, limits.seconds)
        ratio = _choice(form, "aspect_ratio", limits.aspect_ratios, "16:9")
        tier = _choice(form, "resolution", [r.lower() for r in limits.resolutions], "720p")
        size = dimensions_of(ratio, next(r for r in limits.resolutions if r.lower() == tier))
        frames = images if task == "image_to_video" else []
        look = f"{prompt}|{'|'.join(images if task == 'reference_to_video' else [])}"
        segment = Segment(seconds=seconds, seed=look, reference=frames[0] if frames else None,
                          last_reference=frames[1] if len(frames) > 1 else None)
        return Recipe(size=size, segments=[segment], audio=limits.audio)

    def _followed(self, previous: str, task: Any, prompt: str, form: dict[str, Any]) -> tuple[JobKind, Recipe]:
        """An extension (`extend`: 3-10 s more of the previous interaction's video) or a refinement (`edit`, the
        default with a previous interaction: the whole video made again as the prompt says)."""
        source = self.state.jobs.get(previous)
        if source is None:
            raise ApiProblem(404, f"Interaction {previous} was not found.")
        if source.status(now())[0] != "completed":
            raise invalid(f"previous_interaction_id: interaction {previous} has no finished video to work on")
        if task == "extend":
            limits = self.profile.extensions
            if limits is None:
                raise invalid("extend: this model does not extend videos")
            seconds = _seconds(form, list(EXTENSION_SECONDS))
            if source.recipe.seconds + seconds > limits.max_total_seconds:
                raise invalid(f"extend: the video would be {source.recipe.seconds + seconds} s; at most "
                              f"{limits.max_total_seconds} s")
            return "extension", source.recipe.model_copy(update={"segments": [
                *source.recipe.segments, Segment(seconds=seconds, seed=prompt)]})
        if task not in (None, "edit"):
            raise invalid(f"{task} does not work on a previous interaction's video (extend or edit do)")
        if any(name in form for name in ("duration", "aspect_ratio", "resolution")):
            raise invalid("edit: the refined video keeps its source's length and frame (no duration, aspect_ratio or "
                          "resolution)")
        if not self.profile.edits:
            raise invalid("edit: this model does not refine videos")
        return "edit", tinted(source.recipe, prompt)

    # -- the interaction -----------------------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        job = self._job(request)
        if request.query_params.get("stream") == "true":
            raise invalid("stream: the sandbox does not stream interactions; poll without stream")
        status = self._status(job)
        answer = self._interaction(job)
        if status == "completed":
            answer["steps"].append({"type": "model_output", "content": [await self._video(job)]})
        return JSONResponse(answer)

    async def _video(self, job: Job) -> dict[str, Any]:
        """The finished job's video part: inline, or at its URI in the Cloud Storage folder the request named."""
        folder = (job.request.get("response_format") or {}).get("gcs_uri")
        if folder:
            uri, _ = await self.delivered(job, folder)
            return {"type": "video", "mime_type": "video/mp4", "uri": uri}
        data = await self.engine.media(job, "video")
        return {"type": "video", "mime_type": "video/mp4", "data": base64.b64encode(data).decode()}

    async def cancel(self, request: Request) -> Response:
        """A background interaction still at work ends `cancelled`; a finished one is as it was."""
        job = self._job(request)
        if not job.is_terminal(now()):
            job.failure = {"code": "cancelled", "message": "The interaction was cancelled."}
            job.finishes_at = now()
            self.state.save_job(job)
        return JSONResponse(self._interaction(job))

    async def delete(self, request: Request) -> Response:
        self.state.delete_job(self._job(request).id)
        return JSONResponse({})

    def _job(self, request: Request) -> Job:
        job = self.state.jobs.get(request.path_params["id"])
        if job is None:
            raise ApiProblem(404, f"Interaction {request.path_params['id']} was not found.")
        return job

    def _status(self, job: Job) -> str:
        """The job's status in `InteractionStatus` words."""
        status, _ = job.status(now())
        if status == "failed" and job.failure and job.failure.get("code") == "cancelled":
            return "cancelled"
        return status

    def _interaction(self, job: Job) -> dict[str, Any]:
        """The `Interaction` as `interaction.py` has it; a failed one lists its `errors`."""
        status = self._status(job)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.created_at))
        answer: dict[str, Any] = {
            "id": job.id, "status": status, "model": job.model, "created": created, "updated": created,
            "steps": [{"type": "user_input", "content": [{"type": "text", "text": job.prompt}]}]}
        previous = job.request.get("previous_interaction_id")
        if previous:
            answer["previous_interaction_id"] = previous
        if status in ("failed", "cancelled") and job.failure is not None:
            code, message = FAILURES.get(job.failure["code"], (job.failure["code"], job.failure["message"]))
            answer["errors"] = [{"code": code, "message": message}]
        return answer


def _switches(body: dict[str, Any]) -> None:
    """What the sandbox (and a video interaction) does not do: answer while it waits, stream, call webhooks."""
    if body.get("background") is not True:
        raise invalid("background: a video interaction runs in the background here (background: true)")
    if body.get("stream"):
        raise invalid("stream: the sandbox does not stream interactions")
    if "webhook_config" in body:
        raise invalid("webhook_config: the sandbox sends no webhooks; poll the interaction")
    modalities = body.get("response_modalities")
    if modalities is not None and (not isinstance(modalities, list) or "video" not in modalities
                                   or any(m not in MODALITIES for m in modalities)):
        raise invalid(f"response_modalities: a list of {', '.join(MODALITIES)} with 'video' in it")


def _seconds(form: dict[str, Any], offered: list[int]) -> int:
    given = form.get("duration", f"{offered[-1] if 8 not in offered else 8}s")
    matched = DURATION.fullmatch(given) if isinstance(given, str) else None
    if matched is None or int(matched.group(1)) not in offered:
        raise invalid(f"response_format.duration: {given!r} is not one of "
                      f"{', '.join(f'{s}s' for s in offered)}")
    return int(matched.group(1))


def _choice(form: dict[str, Any], name: str, offered: list[str], default: str) -> str:
    value = form.get(name, default)
    if value not in offered:
        raise invalid(f"response_format.{name}: {value!r} is not one of {', '.join(offered)}")
    return str(value)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{where}: an object is required")
    return value


def _known(fields: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for name in fields:
        if name not in allowed:
            raise invalid(f"Unknown field {name!r}{f' in {where}' if where else ''}.")

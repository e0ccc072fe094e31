"""The `google-genai` pose: Veo on Vertex AI as the google-genai SDK reaches it (googleapis/python-genai 3.6.1,
Vertex mode): `POST /{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning`
(or, in express mode with an API key, without `projects/{p}/locations/{l}/`) answered 200 with an operation
whose name has slashes; `:fetchPredictOperation` with `{"operationName"}` until it is `done`, then its videos
inline as base64; Google's error envelope `{"error": {"code", "message", "status"}}`.

Validation follows Vertex's Veo pages: the lengths, aspect ratios and resolutions a model makes; first and
last frames as JPEG or PNG of at most 20 MB; at most three "asset" reference images (no "style" on 3.1), only
for an 8 s 16:9 clip without frames; an extension's input video 1 to 30 s at 720p, extended by 7 s. A prompt
the sandbox blocks comes back `done` with no video and its reason in `raiMediaFilteredReasons`, as Veo reports
a safety filter. Where the pages are silent, this says what it assumes: an unknown field is refused with
Google's own "Unknown name" wording; with a `storageUri` (gs://) the videos are written there through fsspec and
answered as `gcsUri` (and an extension's `video.gcsUri` read from there); several
samples (`sampleCount`) are copies of one video. For tests of Application Default Credentials, it also
answers the OAuth token refresh at `/_sandbox/oauth2/token`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import fsspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..media.video import probe
from ..profiles import ModelLimits, ProviderProfile, dimensions_of
from ._fetch import MAX_IMAGE_BYTES, image_format
from ._media import Recipe, Segment
from ._problems import ApiProblem, bearer_key, read_fields
from ._routes import Routes
from ._state import Job, SandboxState, new_id, now

if TYPE_CHECKING:
    from ._app import Sandbox

MODEL_PATH = "/{version}/publishers/google/models/{model}"
PROJECT_PATH = "/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
INSTANCE_FIELDS = ("prompt", "image", "lastFrame", "video", "referenceImages", "mask")
PARAMETER_FIELDS = ("sampleCount", "storageUri", "fps", "durationSeconds", "seed", "aspectRatio", "resolution",
                    "personGeneration", "negativePrompt", "enhancePrompt", "generateAudio", "compressionQuality",
                    "resizeMode", "pubsubTopic")
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
FILTERED = ("Unable to generate videos because the prompt may violate our usage guidelines. You will not be "
            "charged for blocked attempts. Support codes: 58061214")
EXTENSION_SECONDS, EXTENDABLE_SECONDS = 7, (1, 30)


def invalid(message: str) -> ApiProblem:
    return ApiProblem(400, message)


class GoogleFront:
    """What Google's poses share: the engine, the key as google-genai carries it (an API key in `x-goog-api-key`,
    an OAuth token as a bearer), Google's refusals of it, the OAuth token refresh of Application Default
    Credentials, and no push notifications (jobs are polled)."""

    def __init__(self, engine: Sandbox) -> None:
        self.engine = engine

    @property
    def profile(self) -> ProviderProfile:
        return self.engine.profile

    @property
    def state(self) -> SandboxState:
        return self.engine.state

    def key_of(self, request: Request) -> str | None:
        return bearer_key(request) or request.headers.get("x-goog-api-key") or None

    def unauthenticated(self, key_given: bool) -> ApiProblem:
        if key_given:
            return ApiProblem(400, "API key not valid. Please pass a valid API key.")
        return ApiProblem(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                               "cookie or other valid authentication credential.")

    async def job_finished(self, job: Job) -> None:
        """No push notifications: jobs are polled."""

    async def close(self) -> None:
        return None

    def storable(self, folder: Any, where: str) -> str:
        """A Cloud Storage folder the request names for its videos, which the sandbox writes through fsspec (gcsfs,
        or a `gs` filesystem a test registers); else refused."""
        if not isinstance(folder, str) or not folder.startswith("gs://"):
            raise ApiProblem(400, f"{where}: a Cloud Storage URI (gs://bucket/folder/) is required")
        try:
            fsspec.get_filesystem_class("gs")
        except ImportError as e:
            raise ApiProblem(400, f"{where}: the sandbox cannot write Cloud Storage here ({e}); leave it out to have "
                                  "videos inline") from e
        return folder

    async def delivered(self, job: Job, folder: str) -> tuple[str, bytes]:
        """The job's video written once under the Cloud Storage `folder`: its URI, and its bytes."""
        data = await self.engine.media(job, "video")
        uri = f"{folder.rstrip('/')}/{job.id}/sample_0.mp4"

        def write() -> None:
            with fsspec.open(uri, "wb") as file:
                file.write(data)

        await anyio.to_thread.run_sync(write)
        return uri, data

    async def read_stored(self, uri: str, where: str) -> bytes:
        """A video given by its Cloud Storage URI (one this sandbox delivered, say)."""
        self.storable(uri, where)

        def read() -> bytes:
            with fsspec.open(uri, "rb") as file:
                return bytes(file.read())

        try:
            return await anyio.to_thread.run_sync(read)
        except FileNotFoundError as e:
            raise ApiProblem(400, f"{where}: {uri} does not exist") from e

    async def token(self, request: Request) -> Response:
        """An OAuth 2 refresh, as Google's token endpoint answers it (for Application Default Credentials)."""
        return JSONResponse({"access_token": new_id("ya29.sandbox-"), "expires_in": 3599, "token_type": "Bearer",
                             "scope": "https://www.googleapis.com/auth/cloud-platform"})


class GooglePose(GoogleFront):
    dialect: ClassVar[str] = "google-genai"
    base_path: ClassVar[str] = ""  # the SDK adds the API version and the resource path itself
    fault_routes: ClassVar[Routes] = Routes(  # (the video comes inside the finished operation: no download)
        create=("POST", r":predictLongRunning$"), status=("POST", r":fetchPredictOperation$"), finished=b'"done":true')

    def __init__(self, engine: Sandbox) -> None:
        super().__init__(engine)
        self.served: dict[str, str] = {}  # sha256 of a video handed out -> its job (an extension passes it back)

    def routes(self) -> list[Route]:
        route = self.engine.route
        return [
            *(route("POST", f"{path}:predictLongRunning", self.create, creates_job=True)
              for path in (PROJECT_PATH, MODEL_PATH)),
            *(route("POST", f"{path}:fetchPredictOperation", self.fetch) for path in (PROJECT_PATH, MODEL_PATH)),
            route("GET", MODEL_PATH, self.model),
            route("POST", "/_sandbox/oauth2/token", self.token, public=False),
        ]

    def problem(self, problem: ApiProblem) -> Response:
        status = STATUS.get(problem.status, "UNKNOWN")
        return JSONResponse({"error": {"code": problem.status, "message": problem.message, "status": status}},
                            status_code=problem.status, headers=problem.headers)

    async def model(self, request: Request) -> Response:
        """A publisher model, as Vertex's `publishers.models.get` answers it (the fields google-genai reads are all
        optional): the profile's models, by name or dated snapshot; another is NOT_FOUND."""
        model = request.path_params["model"]
        if self.profile.model_limits(model) is None:
            raise ApiProblem(404, f"Publisher Model `publishers/google/models/{model}` not found.")
        return JSONResponse({"name": f"publishers/google/models/{model}", "versionId": model.rpartition("-")[2],
                             "openSourceCategory": "PROPRIETARY", "launchStage": "GA"})

    # -- create --------------------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        model = request.path_params["model"]
        limits = self.profile.model_limits(model)
        prefix = request.url.path.split("/", 2)[2].rpartition("publishers/")[0]
        if limits is None:
            raise ApiProblem(404, f"Publisher Model `{prefix}publishers/google/models/{model}` not found.")
        body = await read_fields(request)
        instances = body.get("instances")
        _known(body, ("instances", "parameters", "labels"), "")
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            raise invalid("instances: exactly one instance is supported")
        instance, parameters = instances[0], body.get("parameters") or {}
        _known(instance, INSTANCE_FIELDS, "instances[0]")
        _known(parameters, PARAMETER_FIELDS, "parameters")
        recipe = await self._recipe(instance, parameters, model, limits)
        job = self.engine.start_job("extension" if "video" in instance else "create", model,
                                    str(instance.get("prompt") or ""), recipe, job_id=str(uuid.uuid4()), request=body,
                                    extension_count=len(recipe.segments) - 1)
        samples = _integer(parameters, "sampleCount", 1, 4, 1)
        self.state.put(f"google/{job.id}.json", json.dumps({"samples": samples,
                                                            "storage": parameters.get("storageUri")}).encode())
        return JSONResponse({"name": f"{prefix}publishers/google/models/{model}/operations/{job.id}"})

    async def _recipe(self, instance: dict[str, Any], parameters: dict[str, Any], model: str,
                      limits: ModelLimits) -> Recipe:
        prompt = instance.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise invalid("Invalid value at 'instances[0].prompt', expected a string")
        if not prompt and "image" not in instance:
            raise invalid("A prompt is required (instances[0].prompt).")
        if len(prompt or "") > self.profile.prompt_max_chars:
            raise invalid(f"The prompt is too long: at most {self.profile.prompt_max_chars} characters.")
        if parameters.get("storageUri") is not None:
            self.storable(parameters["storageUri"], "parameters.storageUri")
        audio = parameters.get("generateAudio")
        if audio is not None and not isinstance(audio, bool):
            raise invalid("Invalid value at 'parameters.generateAudio', expected a boolean")
        if audio and not limits.audio:
            raise invalid(f"{model} does not generate audio.")
        _integer(parameters, "seed", 0, 4_294_967_295, 0)
        if "video" in instance:
            return await self._extension(instance, parameters, prompt or "")
        seconds = _integer(parameters, "durationSeconds", 1, 60, 8)
        if seconds not in limits.seconds:
            raise invalid(f"Unsupported output video duration {seconds} seconds, supported durations are "
                          f"[{','.join(map(str, limits.seconds))}] for feature text_to_video.")
        ratio = self._choice(parameters, "aspectRatio", limits.aspect_ratios, "16:9")
        tier = self._choice(parameters, "resolution", [r.lower() for r in limits.resolutions], "720p")
        size = dimensions_of(ratio, next(r for r in limits.resolutions if r.lower() == tier))
        first = await self._image(instance.get("image"), "image") if "image" in instance else None
        last = await self._image(instance.get("lastFrame"), "lastFrame") if "lastFrame" in instance else None
        if last is not None and not self.profile.last_frame:
            raise invalid("lastFrame is not supported for this model.")
        subjects = await self._subjects(instance, seconds, ratio)
        look = json.dumps([prompt or "image", parameters.get("seed"), parameters.get("negativePrompt"), subjects])
        segment = Segment(seconds=seconds, seed=look, reference=first, last_reference=last,
                          seeded=parameters.get("seed") is not None)
        return Recipe(size=size, segments=[segment], audio=limits.audio and audio is not False)

    def _choice(self, parameters: dict[str, Any], name: str, offered: list[str], default: str) -> str:
        value = parameters.get(name, default)
        if value not in offered:
            raise invalid(f"Unsupported {name} '{value}'; supported: {', '.join(offered)}.")
        return str(value)

    async def _image(self, value: Any, field: str) -> str:
        """An image given inline (`bytesBase64Encoded`, `mimeType`), checked and kept; its blob key."""
        where = f"instances[0].{field}"
        if not isinstance(value, dict):
            raise invalid(f"Invalid value at '{where}', expected an object")
        _known(value, ("bytesBase64Encoded", "gcsUri", "mimeType"), where)
        if "gcsUri" in value:
            raise invalid(f"{where}.gcsUri: the sandbox cannot read Cloud Storage ({value['gcsUri']}); send the "
                          "image inline")
        data = _bytes(value, where)
        formats = [IMAGE_TYPES[f] for f in self.profile.reference_formats if f in IMAGE_TYPES]
        found = image_format(data)
        if value.get("mimeType") not in formats or IMAGE_TYPES.get(found or "") != value.get("mimeType"):
            raise invalid(f"{where}: unsupported image; supported MIME types are {', '.join(formats)}, and the "
                          f"bytes must be one (got {value.get('mimeType')!r}, {found or 'not an image'})")
        if len(data) > MAX_IMAGE_BYTES:
            raise invalid(f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB")
        return self.state.keep_image(data)

    async def _subjects(self, instance: dict[str, Any], seconds: int, ratio: str) -> list[str]:
        """The asset images' blob keys, checked."""
        references = instance.get("referenceImages")
        if references is None:
            return []
        limits = self.profile.subjects
        if limits is None:
            raise invalid("referenceImages are not supported for this model.")
        if not isinstance(references, list) or not references or len(references) > limits.max_count:
            raise invalid(f"referenceImages: between 1 and {limits.max_count} asset images")
        if any(name in instance for name in ("image", "lastFrame", "video")):
            raise invalid("referenceImages cannot be combined with image, lastFrame or video.")
        if (limits.seconds and seconds not in limits.seconds) or ratio != "16:9":
            raise invalid("Video generation with reference images supports only 8 second, 16:9 videos.")
        keys = []
        for index, item in enumerate(references):
            if not isinstance(item, dict) or item.get("referenceType") != "ASSET":
                raise invalid(f"referenceImages[{index}].referenceType: only ASSET is supported by Veo 3.1")
            keys.append(await self._image(item.get("image"), f"referenceImages[{index}].image"))
        return keys

    async def _extension(self, instance: dict[str, Any], parameters: dict[str, Any], prompt: str) -> Recipe:
        """The source video followed by 7 s more: a video this sandbox made keeps its recipe (sound included),
        any other is decoded."""
        limits = self.profile.extensions
        if limits is None:
            raise invalid("Video extension is not supported for this model.")
        video = instance["video"]
        if not isinstance(video, dict):
            raise invalid("Invalid value at 'instances[0].video', expected an object")
        _known(video, ("bytesBase64Encoded", "gcsUri", "mimeType"), "instances[0].video")
        if "gcsUri" in video:
            data = await self.read_stored(video["gcsUri"], "instances[0].video.gcsUri")
        else:
            data = _bytes(video, "instances[0].video")
        clip = probe(data)
        if clip is None or video.get("mimeType") != "video/mp4":
            raise invalid("instances[0].video: the video could not be decoded as video/mp4")
        size = "{}x{}".format(*clip.size)
        if limits.sizes is not None and size not in limits.sizes:
            raise invalid(f"Video extension supports 720p input only, not {size}.")
        low, high = EXTENDABLE_SECONDS
        if not low <= clip.seconds <= high + 0.05:
            raise invalid(f"The input video must be between {low} and {high} seconds long (got {clip.seconds:.1f}).")
        seconds = _integer(parameters, "durationSeconds", 1, 60, EXTENSION_SECONDS)
        if seconds != EXTENSION_SECONDS:
            raise invalid(f"An extension adds {EXTENSION_SECONDS} seconds; durationSeconds must be "
                          f"{EXTENSION_SECONDS} (got {seconds}).")
        source_id = self.served.get(hashlib.sha256(data).hexdigest())
        source = self.state.jobs.get(source_id) if source_id else None
        if source is not None:
            base = source.recipe
        else:
            key = f"uploads/{hashlib.sha256(data).hexdigest()}"
            self.state.put(key, data)
            base = Recipe(size=clip.size, segments=[Segment(kind="upload", seconds=max(1, round(clip.seconds)),
                                                            seed=key, reference=key)], audio=clip.audio)
        return base.model_copy(update={"segments": [*base.segments, Segment(seconds=seconds, seed=prompt)]})

    # -- the operation -------------------------------------------------------------------------------------

    async def fetch(self, request: Request) -> Response:
        fields = await read_fields(request)
        name = fields.get("operationName")
        if not isinstance(name, str) or "/operations/" not in name:
            raise invalid("operationName: the name of an operation is required")
        job = self.state.jobs.get(name.rpartition("/operations/")[2])
        if job is None:
            raise ApiProblem(404, f"Operation {name} not found.")
        status, _ = job.status(now())
        if status not in ("completed", "failed"):
            return JSONResponse({"name": name, "done": False})
        if job.failure is not None and job.failure.get("code") != "moderation_blocked":
            return JSONResponse({"name": name, "done": True, "error": {
                "code": 13, "message": job.failure["message"], "status": "INTERNAL"}})
        if job.failure is not None:
            return JSONResponse({"name": name, "done": True, "response": {
                "@type": RESPONSE_TYPE, "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTERED]}})
        stored = _stored(self.state, job.id)
        if stored.get("storage"):
            uri, data = await self.delivered(job, stored["storage"])
            video = {"gcsUri": uri, "mimeType": "video/mp4"}
        else:
            data = await self.engine.media(job, "video")
            video = {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "video/mp4"}
        self.served[hashlib.sha256(data).hexdigest()] = job.id
        samples = int(stored.get("samples", 1))
        return JSONResponse({"name": name, "done": True, "response": {
            "@type": RESPONSE_TYPE, "videos": [video] * samples, "raiMediaFilteredCount": 0}})


def _known(fields: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(fields, dict):
        raise invalid(f"Invalid value at '{where}', expected an object")
    for name in fields:
        if name not in allowed:
            raise invalid(f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.')


def _integer(fields: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = fields.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"Invalid value at 'parameters.{name}': an integer from {low} to {high}")
    return value


def _bytes(value: dict[str, Any], where: str) -> bytes:
    encoded = value.get("bytesBase64Encoded")
    if not isinstance(encoded, str):
        raise invalid(f"{where}: bytesBase64Encoded or gcsUri is required")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as e:
        raise invalid(f"{where}.bytesBase64Encoded: not valid base64") from e


def _stored(state: SandboxState, job_id: str) -> dict[str, Any]:
    key = f"google/{job_id}.json"
    return dict(json.loads(state.get(key))) if state.has(key) else {}

"""The `fal-queue` pose: fal.ai's queue at the server's root, as docs.fal.ai/model-endpoints/queue and the
`fal-client` 1.0.3 source describe it.

Submit (`POST /{endpoint id}`, the model's inputs as JSON) answers `request_id` and the request's absolute
`status_url`, `response_url` and `cancel_url`; status (`GET /{owner}/{alias}/requests/{id}/status`) is
`IN_QUEUE` with its `queue_position`, `IN_PROGRESS`, `COMPLETED` (with `error` and `error_type` when it failed;
there is no failed status); the result (`GET /{owner}/{alias}/requests/{id}`) is the model's output, its video
on a CDN URL that needs no key, or the error: a 422 `{"detail": [{loc, msg, type}]}` for refused inputs (as fal's
pydantic apps word it), a 500 with `error_type` for an infrastructure failure. fal's apps validate inputs when
the request runs, not when it is queued (as third-party clients saw on live fal: TanStack/ai#396), so a refused
request is queued, then completes with its error. Every
answer carries `x-fal-request-id` (so `fal_client` raises a 5xx rather than retrying it as an ingress error).
Uploads as `fal_client.upload` makes them: `POST /storage/auth/token?storage_type=fal-cdn-v3`, then
`POST /files/upload` with the token.

Inputs are checked against the endpoint's input schema as fal publishes it (the built-in `fal` profile's
`input_schemas`, and the served profile's): an unknown field, a missing required one, a wrong type or a value
the schema does not list is refused. An endpoint with no schema anywhere takes what its model's map sends."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..profiles import (
    Endpoint,
    InputSchema,
    ModelLimits,
    ProviderProfile,
    Quantity,
    dimensions_of,
    frame_of,
    load_profile,
)
from ._fetch import FetchFailed, image_format
from ._media import Recipe, Segment
from ._problems import ApiProblem
from ._routes import Routes
from ._state import Job, now

if TYPE_CHECKING:
    from ._app import Sandbox

_REQUESTS = "/requests/"
_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                            "boolean": (bool,), "array": (list,), "object": (dict,)}
_TYPE_ERRORS = {"string": ("string_type", "a valid string"), "integer": ("int_type", "a valid integer"),
                "number": ("float_type", "a valid number"), "boolean": ("bool_type", "a valid boolean"),
                "array": ("list_type", "a valid list"), "object": ("dict_type", "a valid dictionary")}
_ERROR_WORDS = {422: "Unprocessable Entity", 499: "Request cancelled"}
_SERVER_ERROR = {"detail": "Internal server error", "error_type": "runner_server_error"}


class Refused(Exception):
    """Inputs fal's app refuses: each a `{loc, msg, type}` of a 422's `detail`."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail


def refusal(field: str, message: str, kind: str, value: Any = None) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message, "type": kind, "input": value,
            "url": f"https://docs.fal.ai/errors#{kind}"}


class FalPose:
    dialect: ClassVar[str] = "fal-queue"
    base_path: ClassVar[str] = ""
    fault_routes: ClassVar[Routes] = Routes(
        create=("POST", r"^/fal-ai/"), status=("GET", r"/requests/[^/]+/status"), finished=b'"COMPLETED"',
        result=("GET", r"/requests/[^/?]+$"), download=("GET", r"^/_storage/requests/"))

    def __init__(self, engine: Sandbox) -> None:
        self.engine = engine
        self.schemas: dict[str, InputSchema] = {**load_profile("fal").input_schemas, **self.profile.input_schemas}
        self.tokens: set[str] = set()

    @property
    def profile(self) -> ProviderProfile:
        return self.engine.profile

    def routes(self) -> list[Route]:
        route = self.engine.route
        return [
            route("POST", "/storage/auth/token", self.storage_token),
            route("POST", "/files/upload", self.upload, public=False),  # its token checked here
            route("GET", "/_storage/files/{name}", self.uploaded, public=False),
            route("GET", "/_storage/requests/{id}/output.mp4", self.video, public=False),  # the CDN
            route("GET", "/{app:path}/requests/{id}/status", self.status),
            route("GET", "/{app:path}/requests/{id}", self.result),
            route("PUT", "/{app:path}/requests/{id}/cancel", self.cancel),
            route("POST", "/{endpoint:path}", self.submit, creates_job=True),
        ]

    def problem(self, problem: ApiProblem) -> Response:
        headers = {**problem.headers, "x-fal-request-id": secrets.token_hex(8)}
        if problem.status >= 500:
            headers["x-fal-error-type"] = "internal_error"
        return JSONResponse({"detail": problem.message}, status_code=problem.status, headers=headers)

    def key_of(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return (key.strip() or None) if scheme == "Key" else None

    def unauthenticated(self, key_given: bool) -> ApiProblem:
        return ApiProblem(401, "No user found for Key ID and Secret" if key_given else "Missing authorization header")

    async def job_finished(self, job: Job) -> None:
        """No webhooks here (fal's `fal_webhook` is not posed): requests are polled."""

    async def close(self) -> None:
        return None

    # -- submit ----------------------------------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        endpoint_id = request.path_params["endpoint"]
        if _REQUESTS in f"/{endpoint_id}/":
            raise ApiProblem(405, "Method Not Allowed")
        model, limits, endpoint = self._served(endpoint_id)
        try:
            inputs = await request.json()
        except ValueError:
            inputs = None
        try:
            if not isinstance(inputs, dict):
                raise Refused([{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}])
            self._check(endpoint, inputs)
            recipe, prompt = await self._recipe(limits, endpoint, inputs)
            refused = None
        except Refused as e:
            recipe, prompt, refused = Recipe(size=(16, 16), segments=[Segment(seconds=1, seed="")]), "", e.detail
        job = self.engine.start_job("create", model, prompt, recipe, job_id=str(uuid.uuid4()), endpoint=endpoint_id,
                                    request=inputs if isinstance(inputs, dict) else {})
        if refused is not None:
            job.failure = {"code": "unprocessable", "message": json.dumps(refused)}
            self.engine.state.save_job(job)
        base = f"{_origin(request)}/{_app_of(endpoint_id)}{_REQUESTS}{job.id}"
        return JSONResponse({"status": "IN_QUEUE", "request_id": job.id, "response_url": base,
                             "status_url": f"{base}/status", "cancel_url": f"{base}/cancel",
                             "queue_position": self._ahead(job)})

    def _served(self, endpoint_id: str) -> tuple[str, ModelLimits, Endpoint]:
        found = self.profile.endpoint_named(endpoint_id)
        if found is not None:
            return found
        raise ApiProblem(404, f"Application '{_app_of(endpoint_id)}' not found (no endpoint {endpoint_id})")

    def _check(self, endpoint: Endpoint, inputs: dict[str, Any]) -> None:
        """The inputs against the endpoint's published schema (else what its map declares)."""
        schema = self.schemas.get(endpoint.id) or _schema_of_map(endpoint)
        detail = [refusal(name, "Field required", "missing") for name in schema.required if name not in inputs]
        for name, value in inputs.items():
            declared = schema.fields.get(name)
            if declared is None:
                detail.append(refusal(name, "Extra inputs are not permitted", "extra_forbidden", value))
            elif not _is(value, declared.type):
                kind, noun = _TYPE_ERRORS[declared.type]
                detail.append(refusal(name, f"Input should be {noun}", kind, value))
            elif declared.enum is not None and value not in declared.enum:
                detail.append(refusal(name, f"Input should be {_either(declared.enum)}", "literal_error", value))
        if detail:
            raise Refused(detail)

    async def _recipe(self, limits: ModelLimits, endpoint: Endpoint, inputs: dict[str, Any]) -> tuple[Recipe, str]:
        """What the inputs ask for, read back through the model's map: length, frame, images, sound, look."""
        def given(quantity: Quantity) -> Any:
            spec = endpoint.inputs.get(quantity)
            return inputs.get(spec.field) if spec else None

        prompt = str(given("prompt") or "")
        seconds = self._decoded(endpoint, "seconds", given("seconds"), limits.seconds) or (
            self.profile.default_seconds if self.profile.default_seconds in limits.seconds else limits.seconds[0])
        first = await self._image(endpoint, "image", given("image"))
        last = await self._image(endpoint, "last_image", given("last_image"))
        size = self._size(limits, endpoint, given, first)
        look = json.dumps([prompt, given("seed"), given("negatives")])
        segment = Segment(seconds=seconds, seed=look, reference=first, last_reference=last,
                          seeded=given("seed") is not None)
        return Recipe(size=size, segments=[segment], audio=limits.audio and given("audio") is not False), prompt

    def _decoded(self, endpoint: Endpoint, quantity: Quantity, value: Any, offered: list[Any]) -> Any:
        """The model's value (5, `16:9`, `720p`) that the map writes as `value`; refused if none does."""
        if value is None:
            return None
        spec = endpoint.inputs[quantity]
        found = next((candidate for candidate in offered if spec.encode(candidate) == value), None)
        if found is None:
            raise Refused([refusal(spec.field, f"Input should be {_either([spec.encode(v) for v in offered])}",
                                   "literal_error", value)])
        return found

    def _size(self, limits: ModelLimits, endpoint: Endpoint, given: Any, first: str | None) -> tuple[int, int]:
        """The frame asked for (an aspect ratio, a resolution), else the first image's, else the model's own."""
        ratio = self._decoded(endpoint, "aspect_ratio", given("aspect_ratio"), limits.aspect_ratios)
        tier = self._decoded(endpoint, "resolution", given("resolution"), limits.resolutions)
        if first is not None and ratio is None:
            width, height = Image.open(io.BytesIO(self.engine.state.get(first))).size
            return width, height
        default = frame_of(self.profile.default_size, limits.aspect_ratios, limits.resolutions) or (
            limits.aspect_ratios[0], limits.resolutions[0])
        return dimensions_of(ratio or default[0], tier or default[1])

    async def _image(self, endpoint: Endpoint, quantity: Quantity, url: Any) -> str | None:
        """An image input, fetched (as fal fetches it) and kept: its blob key."""
        if url is None:
            return None
        field = endpoint.inputs[quantity].field
        try:
            data = await self.engine.image_at(str(url))
        except FetchFailed as e:
            raise Refused([refusal(field, f"Failed to download the file: {e}", "file_download_error", url)]) from e
        if image_format(data) not in self.profile.reference_formats:
            raise Refused([refusal(field, "Unsupported image format", "image_load_error", url)])
        return self.engine.state.keep_image(data)

    # -- status, result, cancel ------------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        job = self._job(request)
        status, _ = job.status(now())
        base = f"{_origin(request)}/{request.path_params['app']}{_REQUESTS}{job.id}"
        logs: list[dict[str, str]] | None = [] if request.query_params.get("logs") in ("1", "true") else None
        if status == "queued":
            return JSONResponse({"status": "IN_QUEUE", "queue_position": self._ahead(job), "response_url": base})
        if status == "in_progress":
            return JSONResponse({"status": "IN_PROGRESS", "logs": logs, "response_url": base})
        body: dict[str, Any] = {"status": "COMPLETED", "logs": logs, "response_url": base,
                                "metrics": {"inference_time": round(job.finishes_at - job.created_at, 3)}}
        if status == "failed":
            error = self._error_of(job)
            body.update(error=_ERROR_WORDS.get(error["status"], "Internal server error"),
                        error_type=error.get("error_type"))
        return JSONResponse(body)

    async def result(self, request: Request) -> Response:
        job = self._job(request)
        status, _ = job.status(now())
        if status not in ("completed", "failed"):
            raise ApiProblem(400, "Request is still in progress")
        if status == "failed":
            error = self._error_of(job)
            return JSONResponse({key: value for key, value in error.items() if key != "status"},
                                status_code=error["status"], headers={"x-fal-request-id": job.id})
        video = await self.engine.media(job, "video")
        file = {"url": f"{_origin(request)}/_storage/requests/{job.id}/output.mp4", "content_type": "video/mp4",
                "file_name": "output.mp4", "file_size": len(video)}
        answer = _placed(self._endpoint_of(job).video, file)
        answer["seed"] = int(hashlib.sha256(job.prompt.encode()).hexdigest()[:8], 16)
        return JSONResponse(answer, headers={"x-fal-request-id": job.id,
                                             "x-fal-billable-units": str(job.recipe.seconds)})

    def _endpoint_of(self, job: Job) -> Endpoint:
        return self._served(job.endpoint or "")[2]

    async def cancel(self, request: Request) -> Response:
        job = self._job(request)
        if job.is_terminal(now()):
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        job.failure = {"code": "cancelled", "message": json.dumps({"detail": "Request cancelled by the client",
                                                                   "error_type": "client_cancelled"})}
        job.finishes_at = now()
        self.engine.state.save_job(job)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def video(self, request: Request) -> Response:
        """A finished request's video on the CDN: no key; gone once the files expired."""
        job = self.engine.state.jobs.get(request.path_params["id"])
        if job is None or job.status(now())[0] != "completed" or self.engine.expired(job):
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(await self.engine.media(job, "video"), media_type="video/mp4")

    def _job(self, request: Request) -> Job:
        job = self.engine.state.jobs.get(request.path_params["id"])
        if job is None:
            raise ApiProblem(404, f"Request {request.path_params['id']} not found")
        return job

    def _ahead(self, job: Job) -> int:
        """Requests before this one still waiting in the queue."""
        moment = now()
        return sum(1 for other in self.engine.state.jobs.values()
                   if other.seq < job.seq and other.status(moment)[0] == "queued")

    def _error_of(self, job: Job) -> dict[str, Any]:
        """The failed request's result: its status and body."""
        failure = job.failure or {}
        if failure.get("code") == "unprocessable":
            return {"status": 422, "detail": json.loads(failure["message"])}
        if failure.get("code") == "cancelled":
            return {"status": 499, **json.loads(failure["message"])}
        if failure.get("code") == "moderation_blocked":
            return {"status": 422, "detail": [refusal("prompt", failure.get("message", "blocked"),
                                                      "content_policy_violation")]}
        return {"status": 500, **_SERVER_ERROR}

    # -- uploads ---------------------------------------------------------------------------------------------

    async def storage_token(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        expires = datetime.now(UTC) + timedelta(hours=1)
        return JSONResponse({"token": token, "token_type": "Bearer", "base_url": _origin(request),
                             "expires_at": expires.isoformat()})

    async def upload(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return JSONResponse({"detail": "Invalid or expired upload token"}, status_code=401)
        data = await request.body()
        name = f"{hashlib.sha256(data).hexdigest()[:32]}-{int(time.time())}"
        self.engine.state.put(f"uploads/{name}", data)
        return JSONResponse({"access_url": f"{_origin(request)}/_storage/files/{name}"})

    async def uploaded(self, request: Request) -> Response:
        key = f"uploads/{request.path_params['name']}"
        if not self.engine.state.has(key):
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(self.engine.state.get(key), media_type="application/octet-stream")


def _schema_of_map(endpoint: Endpoint) -> InputSchema:
    """What an endpoint takes when fal's schema of it is not known here: the fields its map writes."""
    fields: dict[str, Any] = {spec.field: {"type": spec.type_sent(quantity)}
                              for quantity, spec in endpoint.inputs.items()}
    fields.update({name: {"type": _json_type(value)} for name, value in endpoint.fixed.items()})
    return InputSchema.model_validate({"fields": fields})


def _json_type(value: Any) -> str:
    return next((name for name in _JSON_TYPES if _is(value, name)), "string")


def _is(value: Any, json_type: str) -> bool:
    if isinstance(value, bool):
        return json_type == "boolean"
    return isinstance(value, _JSON_TYPES[json_type])


def _either(values: list[Any]) -> str:
    quoted = [f"'{value}'" if isinstance(value, str) else str(value) for value in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _placed(pointer: str, file: dict[str, Any]) -> dict[str, Any]:
    """The answer with the video file where the endpoint's map says it is (`video.url`: `{"video": file}`)."""
    *parents, _ = pointer.split(".")
    answer: dict[str, Any] = file
    for part in reversed(parents):
        answer = {part: answer}
    return answer


def _app_of(endpoint_id: str) -> str:
    """The endpoint's app (`owner/alias`, with a `workflows/` or `comfy/` namespace), as fal routes requests."""
    parts = endpoint_id.split("/")
    return "/".join(parts[:3] if parts[0] in ("workflows", "comfy") else parts[:2])


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")

"""A third party's dialect, as small as one can be, and the sandbox pose that speaks it: "Acme Video", a made-up
JSON API under `/acme/v1` (`POST /jobs`, `GET /jobs/{id}`: waiting, working, done, refused, broken; the video at
`GET /jobs/{id}/video`; `GET /models`; the key in `X-Acme-Key`; errors as `{"problem": ...}`). It joins reelflow
through `register_dialect` alone, with its pose and the profile its contract runs against (ACME_PROFILE)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reelflow import (
    ApiError,
    AuthenticationError,
    NoAnswerError,
    PermanentApiError,
    ProviderUnreachableError,
    RateLimitedError,
    TransientApiError,
)
from reelflow.profiles import ProviderProfile
from reelflow.providers import (
    Body,
    Capabilities,
    ClipJob,
    JobSpec,
    JobState,
    ProviderConfig,
    Reference,
    Status,
    Variant,
    WireRequest,
)
from reelflow.sandbox import ApiProblem, Job, Recipe, Routes, Segment, now

if TYPE_CHECKING:
    from reelflow.sandbox import Sandbox

ACME_PROFILE = """\
name: acme
api: acme-videos
description: Acme Video, a third party's provider
base_url: https://api.acme.example/acme/v1
credentials: {api_key: ACME_KEY}
default_model: acme-1
default_size: 640x360
default_seconds: 3
reference_formats: [JPEG, PNG]
models:
  acme-1:
    sizes: [640x360]
    seconds: [3, 6]
    price_per_second: {640x360: 0.05}
extensions: null
max_characters: 0
list_jobs: false
variants: [video]
"""
BASE = "/acme/v1"
_STATES: dict[str, Status] = {"waiting": "queued", "working": "running", "done": "completed"}


class AcmeVideos:
    """Acme Video over httpx: a create is sent once; a refused connection is unreachable, a lost answer may have
    made the job."""

    dialect: ClassVar[str] = "acme-videos"
    capabilities: ClassVar[Capabilities] = Capabilities(variants=("video",))

    def __init__(self, config: ProviderConfig) -> None:
        assert config.api_key is not None and config.base_url is not None
        self.base_url, self.profile = config.base_url.rstrip("/"), config.profile
        self.http = httpx.AsyncClient(headers={"X-Acme-Key": config.api_key.get_secret_value()},
                                      timeout=config.timeout_seconds)

    async def submit(self, job: JobSpec) -> JobState:
        request = self.describe(job, self.profile)
        answer = await self._call("create a video", "POST", "/jobs", json=dict(request.fields))
        return JobState(id=answer["job"], status="queued")

    async def poll(self, job_id: str) -> JobState:
        answer = await self._call(f"check {job_id}", "GET", f"/jobs/{job_id}")
        state = answer["state"]
        if state in _STATES:
            return JobState(id=job_id, status=_STATES[state], progress=100 if state == "done" else 0)
        return JobState(id=job_id, status="failed", error_code=state, error_message=answer.get("reason"),
                        transient=state == "broken")

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        action = f"download {job.id}"
        async with self._translated(action):
            response = await self.http.send(self.http.build_request("GET", f"{self.base_url}/jobs/{job.id}/video"),
                                            stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(action, response)
                declared = response.headers.get("content-length")
                yield Body(response.aiter_bytes(), int(declared) if declared else None,
                           lambda: response.num_bytes_downloaded)
            finally:
                await response.aclose()

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        return None  # Acme lists no jobs

    async def create_character(self, name: str, clip: Reference) -> str:
        raise PermanentApiError("Acme has no characters")

    async def check_access(self, models: list[str]) -> set[str] | None:
        listed = await self._call("list the models", "GET", "/models")
        return {model for model in models if model in listed["models"]}

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        if not isinstance(job, ClipJob):
            raise PermanentApiError("Acme makes clips only")
        return WireRequest(f"POST {BASE}/jobs", {"model": job.model, "prompt": job.prompt, "seconds": job.seconds,
                                                 "size": job.size})

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        return f"GET {BASE}/jobs/{{id}} until done; GET {BASE}/jobs/{{id}}/video"

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        if not given.startswith("acme-") or not given[5:].isalnum():
            raise ValueError(f"{given[:80]!r} is not an Acme job id (acme-<letters and digits>)")
        return given

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, action: str, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        async with self._translated(action):
            response = await self.http.request(method, f"{self.base_url}{path}", json=json)
            if response.status_code >= 400:
                raise _error(action, response)
            return response.json()

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except ApiError:
            raise
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise ProviderUnreachableError(f"{action}: could not connect ({self.base_url})") from e
        except httpx.TransportError as e:
            raise NoAnswerError(f"{action}: no answer ({type(e).__name__})") from e


def _error(action: str, response: httpx.Response) -> ApiError:
    said = f"{action}: {response.status_code} {response.text[:200]}"
    if response.status_code == 401:
        return AuthenticationError(said, status=401)
    if response.status_code == 429:
        return RateLimitedError(said, retry_after=1.0, status=429)
    if response.status_code >= 500:
        return TransientApiError(said, status=response.status_code)
    return PermanentApiError(said, status=response.status_code)


class AcmePose:
    """Acme Video on the sandbox's engine."""

    dialect: ClassVar[str] = "acme-videos"
    base_path: ClassVar[str] = BASE
    fault_routes: ClassVar[Routes] = Routes(
        create=("POST", rf"^{BASE}/jobs$"), status=("GET", rf"^{BASE}/jobs/acme-[^/]+$"), finished=b'"state":"done"',
        download=("GET", rf"^{BASE}/jobs/acme-[^/]+/video$"))

    def __init__(self, engine: Sandbox) -> None:
        self.engine = engine

    def routes(self) -> list[Route]:
        route = self.engine.route
        return [route("POST", f"{BASE}/jobs", self.create, creates_job=True),
                route("GET", f"{BASE}/models", self.models),
                route("GET", f"{BASE}/jobs/{{id}}", self.status),
                route("GET", f"{BASE}/jobs/{{id}}/video", self.video)]

    def problem(self, problem: ApiProblem) -> Response:
        return JSONResponse({"problem": problem.message}, status_code=problem.status, headers=problem.headers)

    def key_of(self, request: Request) -> str | None:
        return request.headers.get("x-acme-key")

    def unauthenticated(self, key_given: bool) -> ApiProblem:
        return ApiProblem(401, "wrong key" if key_given else "no key")

    async def job_finished(self, job: Job) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(self, request: Request) -> Response:
        fields = await request.json()
        width, _, height = str(fields["size"]).partition("x")
        recipe = Recipe(size=(int(width), int(height)), segments=[Segment(seconds=int(fields["seconds"]),
                                                                          seed=fields["prompt"])])
        job = self.engine.start_job("create", fields["model"], fields["prompt"], recipe,
                                    job_id=f"acme-{secrets.token_hex(8)}",
                                    request=fields)
        return JSONResponse({"job": job.id, "state": "waiting"})

    async def status(self, request: Request) -> Response:
        job = self.engine.job(request.path_params["id"])
        status, _ = job.status(now())
        if status != "failed":
            return JSONResponse({"job": job.id, "state": {"queued": "waiting", "in_progress": "working",
                                                          "completed": "done"}[status]})
        refused = (job.failure or {}).get("code") == "moderation_blocked"
        return JSONResponse({"job": job.id, "state": "refused" if refused else "broken",
                             "reason": (job.failure or {}).get("message")})

    async def video(self, request: Request) -> Response:
        return Response(await self.engine.media(self.engine.job(request.path_params["id"]), "video"),
                        media_type="video/mp4")

    async def models(self, request: Request) -> Response:
        return JSONResponse({"models": list(self.engine.profile.models)})

"""The sandbox's engine: one job clock, real media, limits, faults and stats, whatever dialect it poses as.

A *pose* (`_openai.py`, `_openrouter.py`, `_google.py`, `_fal.py`) serves one provider dialect on top of it:
its routes, request validation, status names, answer shapes and error envelope."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from email.utils import formatdate
from typing import Any, ClassVar, Protocol

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..profiles import ProviderProfile, load_profile
from ..providers._registry import pose_of
from ._config import SandboxConfig
from ._fetch import FetchFailed, fetch_image
from ._limits import RequestBucket, check_concurrency
from ._media import DEFECTS, Defect, Recipe, render
from ._problems import ApiProblem, not_found
from ._routes import Routes
from ._state import Job, JobKind, SandboxState, new_id, now, request_record

log = logging.getLogger("reelflow.sandbox")
Handler = Callable[[Request], Awaitable[Response]]
BLOCKED_MARKER = "[blocked]"
MODERATION = {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}
FAILS_ONCE_MARKER = "[fails-once]"  # the first job with this prompt fails as a server-side error would
SERVER_ERROR = {"code": "internal_error", "message": "The video could not be generated. Please try again."}
# `[black]`, `[frozen]`, ...: the first job of such a prompt is made defective (and reported a success, as a
# provider does); later ones with the same prompt are clean, so a retake can be seen to work.
DEFECT_MARKERS: dict[str, Defect] = {f"[{defect}]": defect for defect in DEFECTS}
VARIANT_FILES = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.webp", "image/webp"),
                 "spritesheet": ("spritesheet.jpg", "image/jpeg")}


class ConnectionDropped(Exception):
    """Raised after sending headers, so the server closes the connection mid-answer."""


class _DropConnection(Response):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        raise ConnectionDropped


class Pose(Protocol):
    """One dialect served on the engine."""

    dialect: ClassVar[str]
    base_path: ClassVar[str]  # where its API lives, e.g. /v1
    fault_routes: ClassVar[Routes]  # its create, status, result and download, for the fault matrix's proxy

    def __init__(self, engine: Sandbox) -> None: ...

    def routes(self) -> list[Route]: ...

    def problem(self, problem: ApiProblem) -> Response:
        """An error answer in the dialect's envelope."""
        ...

    def key_of(self, request: Request) -> str | None:
        """The key (or token) the request carries, as the dialect carries it."""
        ...

    def unauthenticated(self, key_given: bool) -> ApiProblem: ...

    def job_finished(self, job: Job) -> Awaitable[None]:
        """The job's end, announced as the dialect does (a webhook), if at all."""
        ...

    async def close(self) -> None: ...


class Sandbox:
    """One sandbox server's behaviour and state; `asgi()` is the application to serve."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.profile: ProviderProfile = load_profile(config.profile, config.providers_file)
        posed: type[Pose] = pose_of(self.profile.api)  # (ProfileError: no pose speaks its dialect)
        self.state = SandboxState(config.state_dir)
        self.bucket = RequestBucket(config.rpm) if config.rpm else None
        self.rng = random.Random(config.seed)
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.jobs_created: Counter[str] = Counter()
        self.looks: Counter[str] = Counter()  # how often each recipe was asked for
        self.character_uses: Counter[str] = Counter()  # character id -> creates that referenced it
        self.started_at = time.monotonic()
        self.limited_at: list[float] = []  # seconds after start when a create was refused for a limit
        self.webhook_stats: Counter[str] = Counter()
        self.batches_created = 0
        self.images_fetched: Counter[str] = Counter()  # reference images given by URL: "data", "http", "refused"
        self._renders: dict[str, asyncio.Task[None]] = {}
        self._failed_once: set[str] = set()
        self._spoiled: set[str] = set()  # prompts whose first job was made defective
        self._defect_rng = random.Random(f"defects:{config.seed}")  # (apart from the fault draws)
        self.defects: Counter[str] = Counter()  # defective jobs made, by defect
        self._timers: set[asyncio.Task[None]] = set()
        self.pose: Pose = posed(self)

    @property
    def base_path(self) -> str:
        return self.pose.base_path

    # -- application -------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        routes = [self.route("GET", "/_sandbox/stats", self.stats_endpoint, public=False), *self.pose.routes()]
        routes.sort(key=lambda r: "{" in r.path)  # literal paths must win over `/videos/{id}`
        return Starlette(routes=routes, lifespan=self._lifespan,
                         exception_handlers={404: self._no_route, 405: self._no_route})

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        for job in self.state.jobs.values():
            self._schedule_end(job)
        yield
        for task in [*self._timers, *self._renders.values()]:
            task.cancel()
        await self.pose.close()

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        self.requests[f"{request.method} (unrouted)"] += 1
        self.responses["404"] += 1
        return self.pose.problem(ApiProblem(404, f"Invalid URL ({request.method} {request.url.path})"))

    def route(self, method: str, path: str, handler: Handler, *, creates_job: bool = False,
              public: bool = True) -> Route:
        """`path` served with the sandbox's bookkeeping: counted in the stats (as `METHOD path`), and, when
        `public`, behind the key, the injected faults and (for job-creating requests) the limits."""
        name = f"{method} {path}"

        async def endpoint(request: Request) -> Response:
            self.requests[name] += 1
            started = time.perf_counter()
            try:
                response = await self._guarded(request, handler, creates_job) if public else await handler(request)
            except ApiProblem as problem:
                response = self.pose.problem(problem)
            self.responses[str(response.status_code)] += 1
            response.headers["date"] = formatdate(time.time(), usegmt=True)
            response.headers["x-request-id"] = new_id("req_")
            response.headers["x-processing-ms"] = str(int((time.perf_counter() - started) * 1000))
            return response

        return Route(path, endpoint, methods=[method])

    async def _guarded(self, request: Request, handler: Handler, creates_job: bool) -> Response:
        if time.monotonic() - self.started_at < self.config.down_seconds:
            raise ApiProblem(503, "The service is temporarily unavailable (an outage)", type="server_error")
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
                             code="rate_limit_exceeded", headers={"retry-after-ms": "1000", "retry-after": "1"})
        elif fault == "drop":
            return _DropConnection()
        request.state.truncate = fault == "truncate"
        limit_headers = self._admit() if creates_job else {}
        response = await handler(request)
        response.headers.update(limit_headers)
        return _DropConnection() if fault == "lost" else response

    def _authenticate(self, request: Request) -> None:
        key = self.pose.key_of(request)
        if not key:
            raise self.pose.unauthenticated(key_given=False)
        if self.config.api_keys is not None and key not in self.config.api_keys:
            raise self.pose.unauthenticated(key_given=True)

    def _admit(self) -> dict[str, str]:
        """Apply the request-rate and unfinished-job limits to a job-creating request."""
        try:
            if self.config.max_concurrent:
                check_concurrency(self.config.max_concurrent,
                                  [j.finishes_at for j in self.state.jobs.values()], now())
            if self.bucket is None:
                return {}
            self.bucket.take()
        except ApiProblem:
            self.limited_at.append(round(time.monotonic() - self.started_at, 3))
            raise
        return self.bucket.headers()

    # -- jobs --------------------------------------------------------------------------------

    def _failure_of(self, prompt: str) -> dict[str, str] | None:
        if BLOCKED_MARKER in prompt or any(word in prompt for word in self.config.refuse):
            return MODERATION
        if FAILS_ONCE_MARKER in prompt and prompt not in self._failed_once:
            self._failed_once.add(prompt)
            return SERVER_ERROR
        return None

    def start_job(self, kind: JobKind, model: str, prompt: str, recipe: Recipe, *, job_id: str | None = None,
                  request: Mapping[str, Any] | None = None, **extra: Any) -> Job:
        """A new job on the sandbox's clock (its id `job_id`, in the pose's shape, else OpenAI's): queued, then in
        progress, done `job_seconds` later; it keeps the fields of the `request` that made it. A retired model, or
        an account out of credit, makes none (the pose answers the problem in its own envelope)."""
        if model in self.config.retired:
            raise ApiProblem(404, f"The model '{model}' does not exist or has been retired", code="model_not_found")
        if self.config.out_of_credit:
            raise ApiProblem(402, "Insufficient credits: add credits to the account", code="insufficient_credits")
        created = now()
        job = Job(
            id=job_id or new_id("video_"), kind=kind, seq=self.state.next_seq(), created_at=created,
            finishes_at=created + self.config.job_seconds, model=model, prompt=prompt,
            recipe=self._varied(recipe).model_copy(update={"defect": self._defect_of(prompt)}),
            failure=self._failure_of(prompt), request=request_record(request or {}), **extra,
        )
        self.state.save_job(job)
        self.jobs_created[kind] += 1
        self._schedule_end(job)
        return job

    def _defect_of(self, prompt: str) -> Defect | None:
        """What is wrong with the job's video: its prompt's defect marker's, for the first job of that prompt; else,
        at `defect_rate`, one drawn at random; else nothing."""
        marked = next((defect for marker, defect in DEFECT_MARKERS.items() if marker in prompt), None)
        defect: Defect | None = None
        if marked is not None and prompt not in self._spoiled:
            self._spoiled.add(prompt)
            defect = marked
        elif marked is None and self.config.defect_rate and self._defect_rng.random() < self.config.defect_rate:
            defect = self._defect_rng.choice(DEFECTS)
        if defect is not None:
            self.defects[defect] += 1
        return defect

    def _varied(self, recipe: Recipe) -> Recipe:
        """A generation is not repeatable: the same request made again looks and sounds different, as on a real
        provider (the first keeps the look its prompt gives); with a seed, it is the same again."""
        made = self.looks[recipe.model_dump_json()]
        self.looks[recipe.model_dump_json()] += 1
        last = recipe.segments[-1]
        if not made or last.kind == "upload" or last.seeded:
            return recipe
        varied = last.model_copy(update={"seed": f"{last.seed}#{made + 1}"})
        return recipe.model_copy(update={"segments": [*recipe.segments[:-1], varied]})

    def _schedule_end(self, job: Job) -> None:
        """At the job's finishing time, let the pose announce it (once, across restarts)."""
        if job.webhook_sent:
            return

        async def finish() -> None:
            await asyncio.sleep(max(0.0, job.finishes_at - now()))
            if job.id in self.state.jobs:
                await self.pose.job_finished(job)

        task = asyncio.get_running_loop().create_task(finish())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def media(self, job: Job, variant: str) -> bytes:
        """One of the job's files, rendered on first download in a worker thread (concurrent callers share
        it). Rendering lazily keeps never-downloaded jobs (the links of an extension chain) free."""
        if not self.state.has(f"media/{job.id}/video.mp4"):
            if job.id not in self._renders:
                self._renders[job.id] = asyncio.create_task(self._render(job))
            await asyncio.shield(self._renders[job.id])
        return self.state.get(f"media/{job.id}/{VARIANT_FILES[variant][0]}")

    async def _render(self, job: Job) -> None:
        media = await anyio.to_thread.run_sync(render, job.recipe, self.state.get)
        for variant, (filename, _) in VARIANT_FILES.items():
            self.state.put(f"media/{job.id}/{filename}", getattr(media, variant))

    async def image_at(self, url: str) -> bytes:
        """A reference image given by URL (loopback or data only: see `fetch_image`), counted in the stats."""
        try:
            data = await fetch_image(url)
        except FetchFailed:
            self.images_fetched["refused"] += 1
            raise
        self.images_fetched["data" if url.startswith("data:") else "http"] += 1
        return data

    def job(self, job_id: str, param: str | None = None) -> Job:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise not_found("video", job_id, param)
        return job

    def expired(self, job: Job) -> bool:
        """Whether the finished job's files are gone (`asset_ttl_seconds` after it finished)."""
        return now() > job.finishes_at + self.config.asset_ttl_seconds

    # -- introspection -----------------------------------------------------------------------

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    def stats(self) -> dict[str, Any]:
        return {
            "dialect": self.profile.api,
            "requests": dict(self.requests),
            "responses": dict(self.responses),
            "faults": dict(self.faults),
            "jobs": sum(self.jobs_created.values()),
            "jobs_by_kind": dict(self.jobs_created),
            "batches": self.batches_created,
            "webhooks": dict(self.webhook_stats),
            "limited_at_seconds": list(self.limited_at),
            "character_uses": dict(self.character_uses),
            "images_fetched": dict(self.images_fetched),
            "defects": dict(self.defects),
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
        }

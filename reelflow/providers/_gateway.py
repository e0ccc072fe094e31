"""The one place that talks to the video API. SDK errors become reelflow's own errors here, once."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx2
import openai
from openai import AsyncOpenAI

from .._bucket import TokenBucket
from ..errors import ApiError, AuthenticationError, PermanentApiError, TransientApiError
from ..profiles import ProviderProfile
from ..progress import ProviderHealth
from ..settings import Settings
from ..storage import storage_error

Variant = Literal["video", "thumbnail", "spritesheet"]
Created = TypeVar("Created")
# Every client.videos.* call carries this notice in openai 3.x: expected, so not shown to users.
warnings.filterwarnings("ignore", message="The Sora API is scheduled to permanently shut down",
                        category=DeprecationWarning, module=__name__)
_TRANSIENT_STATUS = {408, 409, 429}
_RUNNING = ("queued", "in_progress")
_TRANSIENT_FAILURES = {"internal_error", "server_error", "timeout", "rate_limit_exceeded", "service_unavailable"}


@dataclass(frozen=True)
class JobState:
    """A video job as the provider last reported it."""

    id: str
    status: str
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None
    poll_after: float | None = None

    @property
    def finished(self) -> bool:
        """Any state but queued/in_progress ends the job (gateways add e.g. `expired`, `cancelled`)."""
        return self.status not in _RUNNING

    @property
    def failure_is_transient(self) -> bool:
        return self.error_code in _TRANSIENT_FAILURES


@dataclass(frozen=True)
class BatchState:
    """A Batch API batch as the provider last reported it."""

    id: str
    status: str
    input_file_id: str
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class Reference:
    filename: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Downloaded:
    bytes: int
    sha256: str
    declared_bytes: int | None  # the Content-Length: of the body as sent, compressed or not
    received_bytes: int  # of the body as sent (a gateway may gzip it; `bytes` counts it decoded)

    @property
    def truncated(self) -> bool:
        return self.declared_bytes is not None and self.received_bytes != self.declared_bytes


CREATE, EXTENSIONS, EDITS, REMIX = ("POST /v1/videos", "POST /v1/videos/extensions", "POST /v1/videos/edits",
                                    "POST /v1/videos/{id}/remix")


@dataclass(frozen=True)
class Request:
    """A job-creating request exactly as it goes out: its endpoint and body fields (what a dry run shows)."""

    endpoint: str
    fields: dict[str, Any]
    reference: Reference | None = None
    video_id: str | None = None  # the `{id}` of a remix

    @property
    def action(self) -> str:
        actions = {EXTENSIONS: "extend", EDITS: "edit", REMIX: "remix"}
        source = self.video_id or self.fields.get("video", {}).get("id")
        return f"{actions[self.endpoint]} {source}" if self.endpoint in actions else "create a video"


def create_request(*, prompt: str, model: str, size: str, seconds: int, reference: Reference | None = None,
                   characters: list[str] | None = None) -> Request:
    fields: dict[str, Any] = {"prompt": prompt, "model": model, "size": size, "seconds": str(seconds)}
    if characters:
        fields["characters"] = [{"id": character} for character in characters]
    return Request(CREATE, fields, reference)


def extension_request(*, video_id: str, prompt: str, seconds: int) -> Request:
    return Request(EXTENSIONS, {"prompt": prompt, "seconds": str(seconds), "video": {"id": video_id}})


def edit_request(*, video_id: str, prompt: str) -> Request:
    return Request(EDITS, {"prompt": prompt, "video": {"id": video_id}})


def remix_request(*, video_id: str, prompt: str) -> Request:
    return Request(REMIX, {"prompt": prompt}, video_id=video_id)


class Pacer:
    """The provider's request limit kept on this side, with the provider's own bucket, so its 429s are
    never earned. Callers wait their turn in order.

    One request of headroom: the provider counts a request when it arrives, this side when it leaves, and
    the delay between varies (the first request also opens the connection)."""

    def __init__(self, per_minute: int) -> None:
        self.bucket = TokenBucket(per_minute, burst=max(1, per_minute - 1))
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            while wait := self.bucket.try_take():
                await asyncio.sleep(wait)


class Gateway:
    """The video API as reelflow uses it: create, extend, retrieve, download."""

    def __init__(self, client: AsyncOpenAI, profile: ProviderProfile, pacer: Pacer | None = None,
                 create_retries: int = 3) -> None:
        self.client = client
        self.profile = profile
        self.pacer = pacer
        self.create_retries = create_retries
        self.health = ProviderHealth()

    async def send(self, request: Request) -> JobState:
        """Send a job-creating request (see `create_request`, `extension_request`)."""
        async with self._translated(request.action):
            video = await self._creating(lambda client: _call(client, request))
        return _state(video)

    async def create_character(self, name: str, clip: Reference) -> str:
        """Upload a character's clip; its id goes into the `characters` of later creates."""
        async with self._translated(f"create character {name!r}"):
            character = await self.client.videos.create_character(
                name=name, video=(clip.filename, clip.data, clip.media_type))
        if not character.id:
            raise PermanentApiError(f"create character {name!r}: the provider returned no id")
        return character.id

    async def find_job(self, *, prompt: str, size: str, seconds: int, since: float,
                       exclude: frozenset[str] = frozenset()) -> JobState | None:
        """A job with exactly these fields whose create answer never arrived (a crash, a lost connection), to
        adopt instead of paying for it again. Only a job created after `since` (this machine's clock, when
        this output's ledger recorded the intent to create it), on the provider's clock, can be that one: an
        older job with the same fields was made for another output, or another take, and is not ours."""
        async with self._translated("look for a job whose answer was lost"):
            raw = await self.client.videos.with_raw_response.list(order="desc", limit=50)
            earliest = math.floor(since + _clock_offset(raw.headers.get("date"), time.time()))
            async for video in raw.parse():
                if video.created_at < earliest:
                    break
                if (video.prompt, video.size, video.seconds) == (prompt, size, str(seconds)) and (
                        video.id not in exclude):
                    return _state(video)
        return None

    async def retrieve(self, video_id: str) -> JobState:
        """The job's state, under the id it was created with: a gateway may answer with another id for the
        same job that it cannot route itself (LiteLLM drops the model from its encoded ids)."""
        async with self._translated(f"check {video_id}"):
            raw = await self.client.videos.with_raw_response.retrieve(video_id)
            video = raw.parse()
        hint = raw.headers.get("openai-poll-after-ms")
        return replace(_state(video, poll_after=int(hint) / 1000 if hint and hint.isdigit() else None), id=video_id)

    async def download(self, video_id: str, variant: Variant, target: Path) -> Downloaded:
        """Stream one content variant to a local file, hashing as it goes (memory stays flat)."""
        digest = hashlib.sha256()
        written = 0
        streamed = self.client.videos.with_streaming_response.download_content(video_id, variant=variant)
        action = f"download the {variant} of {video_id}"
        async with self._translated(action), streamed as response:
            declared = response.headers.get("content-length")
            try:
                with target.open("wb") as sink:
                    async for chunk in response.iter_bytes():
                        sink.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            except OSError as e:  # this machine's disk (full, say), not the provider
                raise storage_error(f"{action}: cannot keep it in {target.parent}", e) from e
            received = response.http_response.num_bytes_downloaded
        return Downloaded(written, digest.hexdigest(), int(declared) if declared else None, received)

    async def close(self) -> None:
        await self.client.close()

    async def upload_batch(self, jsonl: bytes) -> str:
        """Upload a batch's input file (JSONL of `/v1/videos` creates); returns its file id."""
        async with self._translated("upload the batch's requests"):
            uploaded = await self.client.files.create(file=("reelflow-batch.jsonl", jsonl, "application/jsonl"),
                                                      purpose="batch")
        return uploaded.id

    async def create_batch(self, input_file_id: str) -> BatchState:
        """Start the batch; sent once (its answer lost, `find_batch` looks for it), 429s waited out."""
        async with self._translated(f"create a batch of {input_file_id}"):
            batch = await self._creating(lambda client: client.batches.create(
                input_file_id=input_file_id, endpoint="/v1/videos", completion_window="24h"))
        return _batch(batch)

    async def find_batch(self, input_file_id: str) -> BatchState | None:
        """A batch already made from this input file: one whose create answer never arrived."""
        async with self._translated(f"look for the batch of {input_file_id}"):
            async for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == input_file_id:
                    return _batch(batch)
        return None

    async def retrieve_batch(self, batch_id: str) -> BatchState:
        async with self._translated(f"check batch {batch_id}"):
            return _batch(await self.client.batches.retrieve(batch_id))

    async def batch_results(self, batch: BatchState) -> dict[str, JobState | str]:
        """Each request of a finished batch by its custom_id: the job it created, or why it was refused."""
        results: dict[str, JobState | str] = {}
        for file_id in filter(None, (batch.output_file_id, batch.error_file_id)):
            async with self._translated(f"read {file_id} of batch {batch.id}"):
                content = await self.client.files.content(file_id)
            for line in filter(str.strip, content.text.splitlines()):
                answer = json.loads(line)
                response = answer.get("response") or {}
                body = response.get("body") or {}
                if response.get("status_code") == 200 and body.get("id"):
                    results[answer["custom_id"]] = _state(openai.types.Video.model_validate(body))
                else:
                    error = body.get("error") or answer.get("error") or {}
                    results[answer["custom_id"]] = (f"{response.get('status_code', 'no status')} "
                                                    f"{error.get('message', 'refused in the batch')}")
        return results

    async def _creating(self, call: Callable[[AsyncOpenAI], Awaitable[Created]]) -> Created:
        """A job-creating request, sent without the SDK's blind retries: a retried POST whose first
        answer was lost pays twice. A 429 is safe to repeat (nothing was created), so it is, after the
        provider's `retry-after-ms`; anything else is left to the caller, who looks for the lost job first."""
        once = self.client.with_options(max_retries=0)
        refusals = 0
        while True:
            if self.pacer is not None:
                await self.pacer.wait()
            try:
                return await call(once)
            except openai.RateLimitError as e:
                refusals += 1
                if refusals > self.create_retries or e.code == "insufficient_quota":
                    raise
                await asyncio.sleep(_retry_after(e.response.headers))

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        """SDK errors as reelflow's own; a failure that may pass is also reported as the provider's health."""
        started = time.time()
        try:
            yield
        except openai.APIError as e:
            error = self._translate(action, e)
            if error.transient:
                self.health.failed(started, str(error))
            raise error from e
        except httpx2.HTTPError as e:  # raised while a streamed body is being read
            raise TransientApiError(f"{action}: the connection broke ({type(e).__name__})") from e
        self.health.answered()

    def _translate(self, action: str, error: openai.APIError) -> ApiError:
        if isinstance(error, openai.AuthenticationError):
            return AuthenticationError(f"{action}: the provider rejected the API key (401); check OPENAI_API_KEY",
                                       status=401, code=error.code)
        if isinstance(error, openai.APIConnectionError):
            kind = "timed out" if isinstance(error, openai.APITimeoutError) else "could not connect"
            return TransientApiError(f"{action}: {kind} ({self.client.base_url})")
        status = error.status_code if isinstance(error, openai.APIStatusError) else None
        said = error.body.get("message", error.message) if isinstance(error.body, dict) else error.message
        message = f"{action}: {status} {said}" if status else f"{action}: {said}"
        if error.code == "insufficient_quota":
            return PermanentApiError(message, status=status, code=error.code)
        if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
            return TransientApiError(message, status=status, code=error.code)
        return PermanentApiError(message, status=status, code=error.code)


def _call(client: AsyncOpenAI, request: Request) -> Awaitable[openai.types.Video]:
    fields = dict(request.fields)
    if request.reference is not None:
        reference = request.reference
        fields["input_reference"] = (reference.filename, reference.data, reference.media_type)
    if request.endpoint in (EXTENSIONS, EDITS):
        video = fields.pop("video")  # a {id} reference goes in the body: the SDK only types uploads
        send = client.videos.extend if request.endpoint == EXTENSIONS else client.videos.edit
        return send(**fields, video=openai.omit, extra_body={"video": video})  # type: ignore[arg-type]
    if request.endpoint == REMIX:
        assert request.video_id is not None
        return client.videos.remix(request.video_id, **fields)
    untyped = {"characters": fields.pop("characters")} if "characters" in fields else None  # not in the SDK's types
    return client.videos.create(**fields, extra_body=untyped)


def _clock_offset(date_header: str | None, received_at: float) -> float:
    """How far the provider's clock is ahead of this one, from the `Date` of an answer received at
    `received_at`: never more than the truth (the header is cut to the second, and was stamped before the
    answer travelled), so a window reckoned with it never starts after the provider's own stamp of a job
    created after it. Without the header, the clocks are taken to agree (both keep NTP time)."""
    if not date_header:
        return 0.0
    try:
        return parsedate_to_datetime(date_header).timestamp() - received_at
    except (TypeError, ValueError):
        return 0.0


def _retry_after(headers: Mapping[str, str]) -> float:
    """The provider's wait before a retry, as the SDK reads it: `retry-after-ms`, else `retry-after`, else 1 s."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            with contextlib.suppress(ValueError):
                return min(max(float(value) * scale, 0.0), 60.0)
    return 1.0


def batch_line(custom_id: str, request: Request) -> dict[str, Any]:
    """A create as one line of a batch's input: a JSON body, the reference image inlined as a data URL."""
    body = dict(request.fields)
    if request.reference is not None:
        encoded = base64.b64encode(request.reference.data).decode()
        body["input_reference"] = {"image_url": f"data:{request.reference.media_type};base64,{encoded}"}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/videos", "body": body}


def _batch(batch: openai.types.Batch) -> BatchState:
    return BatchState(id=batch.id, status=batch.status, input_file_id=batch.input_file_id,
                      output_file_id=batch.output_file_id, error_file_id=batch.error_file_id)


def _state(video: openai.types.Video, poll_after: float | None = None) -> JobState:
    error = video.error
    return JobState(
        id=video.id, status=str(video.status), progress=video.progress or 0,
        error_code=error.code if error else None, error_message=error.message if error else None,
        poll_after=poll_after,
    )


def connect(base_url: str, api_key: str, profile: ProviderProfile, settings: Settings) -> Gateway:
    """A gateway with the settings' retries, timeout and request pacing."""
    retries, per_minute = settings.request_retries, settings.requests_per_minute
    client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=retries,
                         timeout=settings.request_timeout_seconds)
    return Gateway(client, profile, Pacer(per_minute) if per_minute else None, retries)

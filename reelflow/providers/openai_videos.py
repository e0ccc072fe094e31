"""The `openai-videos` dialect: OpenAI's `/v1/videos` (Sora 2's API, shut down on 2026-09-24), as LiteLLM's
proxy, new-api resellers and bifrost still serve it, through the `openai` SDK.

Creates as multipart (`model, prompt, size, seconds, input_reference`, `characters` as `[{id}]`), extensions
and edits by `{"video": {"id"}}`, remix by path, the Batch API for creates, the job list for lost answers."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    ApiError,
    AssetsExpiredError,
    AuthenticationError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from ..profiles import ProviderProfile
from ._base import (
    Body,
    Capabilities,
    ClipJob,
    ExtensionJob,
    JobSpec,
    JobState,
    ProviderConfig,
    Reference,
    RevisionJob,
    Status,
    Variant,
    WireRequest,
    action_of,
    id_shaped,
)
from ._http import retry_after, transport_error

if TYPE_CHECKING:  # the SDK itself is imported once a client is made: checking a profile against this
    import openai  # dialect's capabilities (`reelflow validate`) needs none of it, and it takes about a second
    from openai import AsyncOpenAI

# Every client.videos.* call carries this notice in openai 3.x: expected, so not shown to users.
warnings.filterwarnings("ignore", message="The Sora API is scheduled to permanently shut down",
                        category=DeprecationWarning, module=__name__)
_TRANSIENT_STATUS = {408, 409}
_STATUSES: dict[str, Status] = {"queued": "queued", "in_progress": "running", "completed": "completed"}
_TRANSIENT_FAILURES = {"internal_error", "server_error", "timeout", "rate_limit_exceeded", "service_unavailable"}
_VIDEO_ID = re.compile(r"video_[A-Za-z0-9+/=_-]{1,500}")
CREATE, EXTENSIONS, EDITS, REMIX = ("POST /v1/videos", "POST /v1/videos/extensions", "POST /v1/videos/edits",
                                    "POST /v1/videos/{id}/remix")


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


class OpenAIVideos:
    """OpenAI's video API through `AsyncOpenAI`."""

    dialect: ClassVar[str] = "openai-videos"
    capabilities: ClassVar[Capabilities] = Capabilities(
        extensions=True, edits=True, remix=True, characters=True, batch=True, webhooks=True, list_jobs=True,
        last_frame=False, poll_hint=True, variants=("video", "thumbnail", "spritesheet"), images="bytes")

    def __init__(self, config: ProviderConfig) -> None:
        self.key_variable = config.profile.credentials.api_key
        self.profile = config.profile
        assert config.api_key is not None and config.base_url is not None  # (the connection makes sure)
        import openai

        self.client = openai.AsyncOpenAI(api_key=config.api_key.get_secret_value(), base_url=config.base_url,
                                         max_retries=config.retries, timeout=config.timeout_seconds)

    # -- jobs ---------------------------------------------------------------------------------------------

    async def submit(self, job: JobSpec) -> JobState:
        try:
            async with self._translated(action_of(job)):
                video = await _send(self.client.with_options(max_retries=0), self.describe(job, self.profile))
        except PermanentApiError as e:
            if e.status == 404 and isinstance(job, ExtensionJob | RevisionJob):  # the video it builds on is gone
                raise AssetsExpiredError(str(e), status=404, code=e.code) from e
            raise
        return _state(video)

    async def poll(self, job_id: str) -> JobState:
        """The job's state, under the id it was created with: a gateway may answer with another id for the
        same job that it cannot route itself (LiteLLM drops the model from its encoded ids)."""
        async with self._translated(f"check {job_id}"):
            raw = await self.client.videos.with_raw_response.retrieve(job_id)
            video = raw.parse()
        hint = raw.headers.get("openai-poll-after-ms")
        return replace(_state(video, poll_after=int(hint) / 1000 if hint and hint.isdigit() else None), id=job_id)

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        streamed = self.client.videos.with_streaming_response.download_content(job.id, variant=variant)
        async with self._translated(f"download the {variant} of {job.id}"), streamed as response:
            declared = response.headers.get("content-length")
            yield Body(response.iter_bytes(), int(declared) if declared else None,
                       lambda: response.http_response.num_bytes_downloaded)

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        """A job with exactly these fields in the provider's recent jobs. Only one created after `since` (this
        machine's clock, when the intent to create it was recorded), on the provider's clock, can be ours: an
        older one with the same fields was made for another output, or another take."""
        seconds = str(job.shows_seconds)
        async with self._translated("look for a job whose answer was lost"):
            raw = await self.client.videos.with_raw_response.list(order="desc", limit=50)
            earliest = math.floor(since + clock_offset(raw.headers.get("date"), time.time()))
            async for video in raw.parse():
                if video.created_at < earliest:
                    break
                if (video.prompt, video.size, video.seconds) == (job.prompt, job.size, seconds) and (
                        video.id not in exclude):
                    return _state(video)
        return None

    async def create_character(self, name: str, clip: Reference) -> str:
        """Upload a character's clip; its id goes into the `characters` of later creates."""
        async with self._translated(f"create character {name!r}"):
            character = await self.client.videos.create_character(
                name=name, video=(clip.filename, clip.data, clip.media_type))
        if not character.id:
            raise PermanentApiError(f"create character {name!r}: the provider returned no id")
        return character.id

    async def check_access(self, models: list[str]) -> set[str] | None:
        """`GET /v1/models` (the openai SDK's `models.list`): authenticated, and served by LiteLLM's proxy and
        new-api as by OpenAI, listing the model names the gateway routes."""
        async with self._translated("list the models"):
            listed = {model.id async for model in self.client.models.list()}
        return {model for model in models if model in listed}

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        if isinstance(job, ClipJob):
            fields: dict[str, Any] = {"prompt": job.prompt, "model": job.model, "size": job.size,
                                      "seconds": str(job.seconds)}
            if job.characters:
                fields["characters"] = [{"id": character} for character in job.characters]
            files = {"input_reference": job.first_frame} if job.first_frame else {}
            return WireRequest(CREATE, fields, files)
        if isinstance(job, ExtensionJob):
            return WireRequest(EXTENSIONS, {"prompt": job.prompt, "seconds": str(job.seconds),
                                            "video": {"id": job.source}})
        if job.kind == "edit":
            return WireRequest(EDITS, {"prompt": job.prompt, "video": {"id": job.source}})
        return WireRequest(REMIX.replace("{id}", job.source), {"prompt": job.prompt})

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        downloads = "; ".join(f"GET /v1/videos/{{id}}/content?variant={v}" for v in variants)
        return f"GET /v1/videos/{{id}} until it finishes; {downloads}"

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        """`video_` and the rest of the id: OpenAI's own are hex (`video_68d7512d...`, its video guide), LiteLLM's
        carry base64 of the provider's own id (`encode_video_id_with_provider`, litellm/types/videos/utils.py)."""
        return id_shaped(given, _VIDEO_ID, "video_ followed by letters, digits, +, / or =")

    async def close(self) -> None:
        await self.client.close()

    # -- the Batch API --------------------------------------------------------------------------------------

    def batch_input(self, jobs: Mapping[str, ClipJob]) -> bytes:
        """Each create as one line of a batch's input (JSONL), a reference image inlined as a data URL."""
        lines = []
        for custom_id, job in jobs.items():
            request = self.describe(job, self.profile)
            body = dict(request.fields)
            for name, reference in request.files.items():
                encoded = base64.b64encode(reference.data).decode()
                body[name] = {"image_url": f"data:{reference.media_type};base64,{encoded}"}
            lines.append({"custom_id": custom_id, "method": "POST", "url": "/v1/videos", "body": body})
        return "".join(json.dumps(line) + "\n" for line in lines).encode()

    async def upload_batch(self, data: bytes) -> str:
        """Upload a batch's input file; returns its file id."""
        async with self._translated("upload the batch's requests"):
            uploaded = await self.client.files.create(file=("reelflow-batch.jsonl", data, "application/jsonl"),
                                                      purpose="batch")
        return uploaded.id

    async def create_batch(self, input_id: str) -> BatchState:
        """Start the batch, sent once (its answer lost, `find_batch` looks for it)."""
        async with self._translated(f"create a batch of {input_id}"):
            batch = await self.client.with_options(max_retries=0).batches.create(
                input_file_id=input_id, endpoint="/v1/videos", completion_window="24h")
        return _batch(batch)

    async def find_batch(self, input_id: str) -> BatchState | None:
        """A batch already made from this input file: one whose create answer never arrived."""
        async with self._translated(f"look for the batch of {input_id}"):
            async for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == input_id:
                    return _batch(batch)
        return None

    async def poll_batch(self, batch_id: str) -> BatchState:
        async with self._translated(f"check batch {batch_id}"):
            return _batch(await self.client.batches.retrieve(batch_id))

    async def batch_results(self, batch: BatchState) -> dict[str, JobState | str]:
        """Each request of a finished batch by its custom_id: the job it created, or why it was refused."""
        import openai

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

    # -- errors -------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        import httpx2
        import openai

        try:
            yield
        except openai.APIError as e:
            raise self._translate(action, e) from e
        except httpx2.HTTPError as e:  # raised while a streamed body is being read
            raise TransientApiError(f"{action}: the connection broke ({type(e).__name__})") from e

    def _translate(self, action: str, error: openai.APIError) -> ApiError:
        import httpx2
        import openai

        if isinstance(error, openai.AuthenticationError):
            return AuthenticationError(f"{action}: the provider rejected the API key (401); check "
                                       f"{self.key_variable}", status=401, code=error.code)
        if isinstance(error, openai.APIConnectionError):  # what the SDK's transport raised is its cause
            cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
            return transport_error(action, str(self.client.base_url), cause,
                                   reached=not isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout))
        status = error.status_code if isinstance(error, openai.APIStatusError) else None
        said = error.body.get("message", error.message) if isinstance(error.body, dict) else error.message
        message = f"{action}: {status} {said}" if status else f"{action}: {said}"
        if error.code == "insufficient_quota":
            return PermanentApiError(message, status=status, code=error.code)
        if isinstance(error, openai.RateLimitError):
            return RateLimitedError(message, retry_after=retry_after(error.response.headers), status=status,
                                    code=error.code)
        if error.code == "video_expired":
            return AssetsExpiredError(message, status=status, code=error.code)
        if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
            return TransientApiError(message, status=status, code=error.code)
        return PermanentApiError(message, status=status, code=error.code)


def _send(client: AsyncOpenAI, request: WireRequest) -> Awaitable[openai.types.Video]:
    import openai

    fields = dict(request.fields)
    for name, reference in request.files.items():
        fields[name] = (reference.filename, reference.data, reference.media_type)
    route = request.route
    if route in (EXTENSIONS, EDITS):
        video = fields.pop("video")  # a {id} reference goes in the body: the SDK only types uploads
        send = client.videos.extend if route == EXTENSIONS else client.videos.edit
        return send(**fields, video=openai.omit, extra_body={"video": video})  # type: ignore[arg-type]
    if route != CREATE:  # a remix: POST /v1/videos/{id}/remix
        return client.videos.remix(route.split("/")[-2], **fields)
    untyped = {"characters": fields.pop("characters")} if "characters" in fields else None  # not in the SDK's types
    return client.videos.create(**fields, extra_body=untyped)


def clock_offset(date_header: str | None, received_at: float) -> float:
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


def _batch(batch: openai.types.Batch) -> BatchState:
    return BatchState(id=batch.id, status=batch.status, input_file_id=batch.input_file_id,
                      output_file_id=batch.output_file_id, error_file_id=batch.error_file_id)


def _state(video: openai.types.Video, poll_after: float | None = None) -> JobState:
    """The video object in reelflow's words: any status but queued / in_progress / completed ends the job as
    failed (gateways add `expired`, `cancelled`), transient when its error code says the cause may pass."""
    error = video.error
    status = _STATUSES.get(str(video.status), "failed")
    code = error.code if error else (None if status != "failed" else str(video.status))
    return JobState(
        id=video.id, status=status, progress=video.progress or 0, error_code=code,
        error_message=error.message if error else None, transient=code in _TRANSIENT_FAILURES,
        poll_after=poll_after, expires_at=float(video.expires_at) if video.expires_at else None,
    )

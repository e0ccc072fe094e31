"""The `openrouter-videos` dialect: OpenRouter's `/api/v1/videos`, through OpenRouter's own SDK (`openrouter`).

A create is JSON: `model, prompt, duration` (an integer), `resolution` + `aspect_ratio` (the frame, from the
plan's size), `frame_images` for a first and a last frame and `input_references` for subject images, each an
`image_url` the provider fetches (a presigned URL, else a data URL), and the scene's `provider_options` as the
`provider` passthrough (`{options: {<upstream slug>: {...}}}`). An extension or an edit is a create with
`previous_job_id`, the finished job it continues (an extension with the `duration` it adds), on models that
continue their videos (`continuation` in the profile); the others continue from the last frame (the pipeline's
fallback). A job is `pending`, `in_progress`, then `completed` (its files at signed `urls` until `expires_at`,
and always at the content route with the key; what it cost in `usage.cost`) or `failed` / `cancelled` /
`expired`, each final. There is no job list, so a create whose answer was lost cannot be found again. Sources:
OpenRouterTeam/docs openapi/openapi.yaml (2026-08-22) and the SDK 1.3.84's `video_generation` and
`components/videogenerationrequest.py`; see `reelflow/profiles/openrouter.yaml`."""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urljoin

import httpx
from openrouter import OpenRouter, errors
from openrouter.components import VideoGenerationResponse
from openrouter.utils.retries import BackoffStrategy, RetryConfig

from ..errors import (
    ApiError,
    AssetsExpiredError,
    NoAnswerError,
    PermanentApiError,
)
from ..profiles import ProviderProfile, frame_of
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
from ._http import status_error, streamed, transport_error

# SDK 1.3.84 `components/videogenerationresponse.py` `VideoGenerationResponseStatus`: pending, in_progress,
# completed, failed, cancelled, expired (the last three final: nothing more comes of the job).
_STATUSES: dict[str, Status] = {"pending": "queued", "in_progress": "running", "completed": "completed"}
_ENDED = {"cancelled": "the job was cancelled at OpenRouter", "expired": "the job expired at OpenRouter before it "
          "finished"}
_MAY_PASS = frozenset({408, 409, 425, 499})  # a timeout, a conflict (not ready), an early or cut request
_SENT_ONCE = RetryConfig("none", BackoffStrategy(0, 0, 1, 0), retry_connection_errors=False)
_QUIET = logging.getLogger("reelflow.providers.openrouter")  # the SDK's debug log shows headers: never on
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
CREATE = "POST /api/v1/videos"
_JOB_ID = re.compile(r"gen-vid-[0-9]{1,20}-[A-Za-z0-9]{12,40}")


class OpenRouterVideos:
    """OpenRouter's video API through `openrouter.OpenRouter`."""

    dialect: ClassVar[str] = "openrouter-videos"
    capabilities: ClassVar[Capabilities] = Capabilities(extensions=True, edits=True, last_frame=True,
                                                        audio_switch=True, seed=True, subjects=True, webhooks=True,
                                                        variants=("video",), images="url-or-data")

    def __init__(self, config: ProviderConfig) -> None:
        assert config.api_key is not None and config.base_url is not None  # (the connection makes sure)
        self.base_url = config.base_url.rstrip("/")
        self.key_variable = config.profile.credentials.api_key
        self.profile = config.profile
        self.callback_url = config.callback_url
        self.http = httpx.AsyncClient(timeout=config.timeout_seconds)
        self.unused_sync_client = httpx.Client()  # the SDK wants one; this dialect is async throughout
        safe = RetryConfig("backoff", BackoffStrategy(500, 8_000, 2, 30_000), retry_connection_errors=True)
        self.sdk = OpenRouter(api_key=config.api_key.get_secret_value(), server_url=self.base_url,
                              client=self.unused_sync_client, async_client=self.http,
                              retry_config=safe if config.retries else _SENT_ONCE,
                              timeout_ms=int(config.timeout_seconds * 1000), debug_logger=_QUIET)

    async def submit(self, job: JobSpec) -> JobState:
        fields = _on_the_wire(self.describe(job, self.profile).fields)
        if self.callback_url:  # "URL to receive a webhook notification when the video generation job completes.
            # Overrides the workspace-level default callback URL if set. Must be HTTPS." (SDK 1.3.84,
            # `VideoGenerationRequest.callback_url`); its events are verified by `reelflow webhooks`
            fields["callback_url"] = self.callback_url
        async with self._translated(action_of(job)):
            created = await self.sdk.video_generation.generate_async(**fields, retries=_SENT_ONCE)
        return _state(created)

    async def poll(self, job_id: str) -> JobState:
        async with self._translated(f"check {job_id}"):
            return _state(await self.sdk.video_generation.get_generation_async(job_id=job_id))

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        """From the job's signed URL while it is valid (no key needed: "usable without an API key until
        `expires_at`", SDK 1.3.84 `VideoGenerationResponse.urls`); else, or when it is refused (403, 410: a URL
        expired or revoked early), from the content route with the key (`GET /videos/{id}/content?index=0`, the
        job's `unsigned_urls`, which "keep working for as long as the output is available"). OpenRouter's
        reference names both ways to download (openrouter.ai/docs/api/api-reference/videos)."""
        async with self._translated(f"download the {variant} of {job.id}"):
            response = await self._signed(job) if job.outputs else None
            if response is None:
                response = await self.sdk.video_generation.get_video_content_async(job_id=job.id, index=0)
            try:
                yield streamed(response)
            finally:
                await response.aclose()

    async def _signed(self, job: JobState) -> httpx.Response | None:
        """The answer of the job's signed URL, streaming; None when it is past its expiry or refused."""
        if job.expires_at is not None and job.expires_at <= time.time():
            return None
        response = await self.http.send(self.http.build_request("GET", urljoin(self.base_url + "/", job.outputs[0])),
                                        stream=True)
        if response.status_code < 400:
            return response
        await response.aclose()
        return None

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        return None  # OpenRouter lists no jobs, and a create carries no client reference to look one up by

    async def create_character(self, name: str, clip: Reference) -> str:
        raise PermanentApiError(f"create character {name!r}: OpenRouter has no characters")

    async def check_access(self, models: list[str]) -> set[str] | None:
        """`GET /api/v1/key` (the SDK's `api_keys.get_current_key_metadata`: the key's own record, 401 for a
        refused key), then the video models' catalog `GET /api/v1/videos/models` (`video_generation.
        list_videos_models`, which needs no key), each model by its id or dated slug."""
        async with self._translated("ask for the key's own record"):
            with _deprecated_key_fields_read():
                await self.sdk.api_keys.get_current_key_metadata_async()
        async with self._translated("list the video models"):
            catalog = await self.sdk.video_generation.list_videos_models_async()
        listed = {name for entry in catalog.data for name in (entry.id, entry.canonical_slug)}
        return {model for model in models if model in listed}

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        """A clip's create; an extension or an edit as a create with `previous_job_id` ("ID of a completed video
        job to edit or extend ... The new job runs on the same model and endpoint that produced the previous one",
        SDK 1.3.84 `VideoGenerationRequest.previous_job_id`), an extension with the `duration` it adds. The SDK
        does not say how the API tells an edit from an extension: the prompt says which, and only an extension
        asks for more seconds."""
        if isinstance(job, ClipJob):
            return WireRequest(CREATE, _clip_fields(job, profile))
        if isinstance(job, RevisionJob) and job.kind != "edit":
            raise PermanentApiError(f"{action_of(job)}: OpenRouter's video API has no remix")
        fields: dict[str, Any] = {"model": job.model or profile.default_model, "prompt": job.prompt,
                                  "previous_job_id": job.source}
        if isinstance(job, ExtensionJob):
            fields["duration"] = job.seconds
        return WireRequest(CREATE, fields)

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        return ("GET /api/v1/videos/{id} until it finishes; GET its signed urls[0] (else GET "
                "/api/v1/videos/{id}/content?index=0)")

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        """"The video job ID, in the `gen-vid-<timestamp>-<20 alphanumerics>` generation ID format" (SDK 1.3.84,
        `VideoGenerationResponse.id`); a little leeway in the length, which is not promised."""
        return id_shaped(given, _JOB_ID, "gen-vid-<timestamp>-<20 letters or digits>")

    async def close(self) -> None:
        await self.http.aclose()
        self.unused_sync_client.close()

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except ApiError:
            raise
        except errors.ResponseValidationError as e:
            raise PermanentApiError(f"{action}: the provider's answer does not parse ({e})") from e
        except errors.OpenRouterError as e:
            raise _error(action, e.status_code, _said(e), e.headers, self.key_variable) from e
        except errors.NoResponseError as e:
            raise NoAnswerError(f"{action}: no answer ({self.base_url})") from e
        except httpx.TransportError as e:  # timeouts too
            unreached = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
            raise transport_error(action, self.base_url, e, reached=not unreached) from e


@contextlib.contextmanager
def _deprecated_key_fields_read() -> Iterator[None]:
    """The SDK reads the key record's deprecated fields as it parses it (openrouter 1.3.84
    `operations.GetCurrentKeyData.is_provisioning_key` and `rate_limit`, each `Field(deprecated=...)`): expected,
    and not ours to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"warning: \*\* DEPRECATED \*\*", category=DeprecationWarning)
        yield


def _clip_fields(job: ClipJob, profile: ProviderProfile) -> dict[str, Any]:
    """A new clip's create (SDK 1.3.84 `VideoGenerationRequest`): `frame_images` items are `FrameImage`
    (`{type: image_url, image_url: {url}, frame_type}`), `input_references` items `ContentPartImage`
    (`{type: image_url, image_url: {url}}`), `provider` a `VideoGenerationRequestProvider` (`{options: {<provider
    slug>: {...}}}`: "Only options for the matched provider are forwarded")."""
    fields: dict[str, Any] = {"model": job.model, "prompt": job.prompt, "duration": job.seconds}
    fields.update(_frame_fields(job.size))
    if job.audio is not None:
        fields["generate_audio"] = job.audio
    if job.seed is not None:
        fields["seed"] = job.seed
    frames = [{"type": "image_url", "image_url": {"url": reference}, "frame_type": kind}
              for kind, reference in (("first_frame", job.first_frame), ("last_frame", job.last_frame))
              if reference is not None]
    if frames:
        fields["frame_images"] = frames
    if job.subjects:
        fields["input_references"] = [{"type": "image_url", "image_url": {"url": subject}} for subject in job.subjects]
    if job.provider_options:
        fields["provider"] = {"options": {_upstream(job.model, profile): dict(job.provider_options)}}
    return fields


def _upstream(model: str, profile: ProviderProfile) -> str:
    """The slug of the provider behind `model` that its passthrough options are keyed by (from the profile)."""
    limits = profile.model_limits(model)
    if limits is None or limits.upstream is None:
        raise PermanentApiError(f"create a video: {model} on {profile.name} takes no provider options")
    return limits.upstream


def _frame_fields(size: str) -> dict[str, str]:
    """The plan's size as OpenRouter's frame: `aspect_ratio` and `resolution` where they make it exactly,
    else the size itself (which the API also takes)."""
    ratios = ["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21"]
    frame = frame_of(size, ratios, ["480p", "720p", "1080p", "2K", "4K"])
    return {"aspect_ratio": frame[0], "resolution": frame[1]} if frame else {"size": size}


def _on_the_wire(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Images as the provider fetches them: their presigned URL, else a data URL of their bytes."""
    def image(value: Any) -> Any:
        if isinstance(value, Reference):
            return value.url or f"data:{value.media_type};base64,{base64.b64encode(value.data).decode()}"
        if isinstance(value, Mapping):
            return {key: image(item) for key, item in value.items()}
        if isinstance(value, list):
            return [image(item) for item in value]
        return value

    return image(fields)  # type: ignore[no-any-return]


def _state(answer: VideoGenerationResponse) -> JobState:
    """A generation in reelflow's words: `failed` (a refusal, a policy block), `cancelled` and `expired` end it for
    good (a job made again would be paid again: that is the user's call, not reelflow's). A finished one carries
    its signed `urls`, their `expires_at` (Unix seconds) and `usage.cost`, what it was billed in USD (SDK 1.3.84
    `VideoGenerationResponse`, `VideoGenerationUsage`)."""
    status = str(answer.status)
    ours = _STATUSES.get(status, "failed")
    cost = answer.usage.cost if answer.usage is not None else None
    said = answer.error if isinstance(answer.error, str) and answer.error else None
    return JobState(id=answer.id, status=ours, progress=100 if ours == "completed" else 0,
                    error_code=status if ours == "failed" else None,
                    error_message=said or _ENDED.get(status), outputs=tuple(answer.urls or ()),
                    expires_at=float(answer.expires_at) if answer.expires_at else None,
                    billed_usd=float(cost) if isinstance(cost, int | float) else None)


def _said(error: errors.OpenRouterError) -> str:
    data = getattr(error, "data", None)
    message = getattr(getattr(data, "error", None), "message", None)
    return str(message or error.message or error.body or type(error).__name__)


def _error(action: str, status: int, said: str, headers: httpx.Headers, key_variable: str | None) -> ApiError:
    if status == 402:
        return PermanentApiError(f"{action}: {status} {said} (add credits to the account)", status=status,
                                 code="insufficient_credits")
    if status == 410:
        return AssetsExpiredError(f"{action}: {status} {said}", status=status, code="expired")
    return status_error(action, status, said, headers, key_variable, _MAY_PASS)

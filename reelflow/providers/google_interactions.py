"""The `google-interactions` dialect: Google's Gemini Omni, through Google's own SDK, `google-genai`
(`client.aio.interactions`: Google's Interactions API), on the Gemini API (an API key) or on Vertex AI (a project
and region with Application Default Credentials, or an express-mode key).

Every wire detail below is google-genai 3.6.1's (`google/genai/_gaos/...`):

- A create is `POST {version}/interactions` (`_gaos/interactions.py`, `AsyncInteractions.create`; on Vertex with a
  project, `{version}` is `v1beta1/projects/{p}/locations/{l}`: `_gaos/google_genai.py`,
  `get_google_genai_api_version`) with `model`, `background: true` (run in the background, answered at once),
  `input` (one `user_input` step whose `content` is a `text` part and `image` parts, `data` base64 with its
  `mime_type`: the SDK's own normal form, `_gaos/google_genai.py` `_normalize_create_body`),
  `response_modalities: ["video"]`, `response_format` of `type: video` with `aspect_ratio`, `resolution`,
  `duration` and `delivery` (`_gaos/types/interactions/videoresponseformat.py`), and
  `generation_config.video_config.task` (`text_to_video`, `image_to_video`, `reference_to_video`, `extend`,
  `edit`: `_gaos/types/interactions/videoconfig.py`) saying what the images are: a first frame (and a last one),
  or up to six references. An extension or a refinement names the finished interaction it continues,
  `previous_interaction_id` (`_gaos/types/interactions/createmodelinteraction.py`).
- The job is the interaction, asked for with `GET {version}/interactions/{id}` until its `status`
  (`_gaos/types/interactions/interaction.py`, `InteractionStatus`) is final; its video is the last `model_output`
  step's `video` part (`Interaction.output_video`, added by the SDK: `_gaos/google_genai.py`,
  `_output_properties_from_steps`), inline (`data`, base64) or at a `uri`. A failed interaction lists its
  `errors` (`code`, a word; `message`: `_gaos/types/interactions/error.py`).
- Errors: the SDK raises `google.genai._interactions.APIStatusError` (its `status_code`, and its `body`
  `{"error": {"code", "message"}}`: `_interactions_errors.py`, `_gaos/errors/createinteraction.py`) and
  `APIConnectionError` (a transport failure, the httpx error as its cause: `_gaos/lib/compat_errors.py`).
- Retries: the SDK retries every call on 408, 409, 429 and 5xx (`_gaos/interactions.py`, `retry_config`) as
  the client's `retry_options` say (`_gaos/google_genai.py`, `_translate_retry_config`): creates go through a
  client of their own that tries once.

No job list and no idempotency key (the resource has create, get, cancel and delete only): a create whose answer
was lost cannot be found again."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from google import genai
from google.genai import _interactions

from ..errors import PermanentApiError
from ._base import Capabilities, ClipJob, ExtensionJob, JobState, RevisionJob, WireRequest, action_of, id_shaped
from ._google import GoogleDialect, filtered, google_error, google_frame, translated, transported

if TYPE_CHECKING:
    from ..profiles import ProviderProfile
    from ._base import JobSpec, ProviderConfig, Reference, Status, Variant

CREATE = "POST {version}/interactions"
# InteractionStatus words (`_gaos/types/interactions/interaction.py`) of an interaction still at work.
_AT_WORK: dict[str, Status] = {"queued": "queued", "idle": "queued", "in_progress": "running"}
# Error codes (`_gaos/types/interactions/error.py`: a word) of a failure whose cause may pass, and of a safety block.
_PASSING = {"internal", "internal_error", "unavailable", "deadline_exceeded", "resource_exhausted", "aborted"}
_SAFETY = re.compile(r"safety|blocked|prohibited|responsible_ai", re.IGNORECASE)
_INTERACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}")
ImagePart = Callable[["Reference"], dict[str, Any]]


class GoogleInteractions(GoogleDialect):
    """Gemini Omni through `google.genai.Client(...).aio.interactions`."""

    dialect: ClassVar[str] = "google-interactions"
    product: ClassVar[str] = "Gemini Omni"
    capabilities: ClassVar[Capabilities] = Capabilities(
        extensions=True, edits=True, last_frame=True, subjects=True, variants=("video",), images="bytes",
        own_endpoint=True)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.where = config.base_url or ("Vertex AI" if self._on_vertex else "the Gemini API")
        self.client = self._client(config, 1 + config.retries)
        self.creating = self._client(config, 1)  # creates: sent once

    @property
    def _on_vertex(self) -> bool:
        """A profile reached through a cloud project speaks to Vertex AI; any other to the Gemini API."""
        return self.profile.credentials.project is not None

    def _client(self, config: ProviderConfig, attempts: int) -> genai.Client:
        key = config.api_key.get_secret_value() if config.api_key is not None else None
        if not self._on_vertex:
            return self.clients.client(attempts, api_key=key)
        if key is not None:  # express mode: the key alone (google-genai 3.6.1 `_api_client.BaseApiClient.__init__`)
            return self.clients.client(attempts, vertexai=True, api_key=key)
        return self.clients.client(attempts, vertexai=True, project=config.project, location=config.location)

    async def submit(self, job: JobSpec) -> JobState:
        body = _body(job, _inline_image, await self._model_for(job), self._delivered_to(self._on_vertex))
        async with self._translated(action_of(job)):
            interaction = await self.creating.aio.interactions.create(**body)
        if not interaction.id:
            raise PermanentApiError(f"{action_of(job)}: the provider returned no interaction id")
        return self._state(interaction.id, interaction)

    async def _model_for(self, job: JobSpec) -> str:
        """The job's model; a refinement's (or an extension's that names none) is its source's, as the source
        interaction says (`Interaction.model`)."""
        if isinstance(job, ClipJob) or (isinstance(job, ExtensionJob) and job.model):
            return job.model
        async with self._translated(f"look up {job.source}"):
            source = await self.client.aio.interactions.get(job.source)
        return str(source.model or self.profile.default_model)

    async def poll(self, job_id: str) -> JobState:
        async with self._translated(f"check {job_id}"):
            interaction = await self.client.aio.interactions.get(job_id)
        return self._state(job_id, interaction)

    def _state(self, job_id: str, interaction: Any) -> JobState:
        status = str(interaction.status)
        if status in _AT_WORK:
            return JobState(id=job_id, status=_AT_WORK[status])
        if status != "completed":
            return _failure(job_id, status, interaction.errors or [])
        video = interaction.output_video
        if video is None or not (video.data or video.uri):
            said = (interaction.output_text or "").strip() or "the interaction completed without a video"
            return filtered(job_id, said)
        return self._kept(job_id, video, video.uri)

    def _video_parts(self, video: Any) -> tuple[bytes | None, str | None]:
        return (base64.b64decode(video.data) if video.data else None), video.uri  # (`data`: base64)

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        """The JSON the SDK sends, images as `Reference`s."""
        version = "v1beta1" if profile.credentials.project is not None else "v1"
        model = profile.default_model if isinstance(job, RevisionJob) else job.model or profile.default_model
        return WireRequest(CREATE.format(version=version), _body(job, _described_image, model, None))

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        return "GET {version}/interactions/{id} until completed; its video inline (base64) or from its URI"

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        return id_shaped(given, _INTERACTION, "an interaction id, e.g. v1_ChdY...")

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        """The Interactions client's errors (`_interactions_errors.py`) and the rest of google-genai's
        (`_google.translated`), in reelflow's terms."""
        async with translated(action, self.where, self.key_variable):
            try:
                yield
            except _interactions.APIStatusError as e:
                error = e.body.get("error") if isinstance(e.body, dict) else None
                said = error if isinstance(error, dict) else {}
                raise google_error(action, e.status_code, str(said.get("code") or ""),
                                   str(said.get("message") or e), self.key_variable) from e
            except _interactions.APIConnectionError as e:  # (its cause: the httpx2 error)
                raise transported(action, self.where, e) from e


def _body(job: JobSpec, image: ImagePart, model: str, folder: str | None) -> dict[str, Any]:
    """The create's fields as google-genai sends them (see the module's docstring), images by `image`; the video
    inline, or written to the Cloud Storage `folder` (`delivery: uri` with `gcs_uri`, Vertex only:
    `videoresponseformat.py`)."""
    if isinstance(job, ClipJob):
        images, task = _images(job)
        ratio, resolution = google_frame(job.size, "Gemini Omni")  # (`videoresponseformat.py`: "4k", lower case)
        form = {"aspect_ratio": ratio, "resolution": resolution, "duration": _duration(job.seconds)}
        follows: dict[str, str] = {}
    else:
        images, task = [], ("extend" if isinstance(job, ExtensionJob) else "edit")
        form = {"duration": _duration(job.seconds)} if isinstance(job, ExtensionJob) else {}
        follows = {"previous_interaction_id": job.source}
    content = [{"type": "text", "text": job.prompt}, *(image(reference) for reference in images)]
    delivery = {"delivery": "uri", "gcs_uri": folder} if folder else {"delivery": "inline"}
    return {"model": model, "background": True, "input": [{"type": "user_input", "content": content}],
            **follows, "response_modalities": ["video"],
            "response_format": {"type": "video", **form, **delivery},
            "generation_config": {"video_config": {"task": task}}}


def _images(job: ClipJob) -> tuple[list[Reference], str]:
    """The images a clip carries, in order, and the task that says what they are: a first frame (then the last),
    or references."""
    if job.subjects and (job.first_frame or job.last_frame):
        raise PermanentApiError(f"{action_of(job)}: Gemini Omni takes reference images or frames, not both")
    if job.subjects:
        return list(job.subjects), "reference_to_video"
    if job.last_frame and not job.first_frame:
        raise PermanentApiError(f"{action_of(job)}: Gemini Omni lands on a last frame only from a first frame")
    frames = [frame for frame in (job.first_frame, job.last_frame) if frame is not None]
    return frames, ("image_to_video" if frames else "text_to_video")


def _duration(seconds: int) -> str:
    """`duration` is a string (`videoresponseformat.py`): a protobuf Duration's JSON form, e.g. "8s"."""
    return f"{seconds}s"


def _inline_image(reference: Reference) -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(reference.data).decode(), "mime_type": reference.media_type}


def _described_image(reference: Reference) -> dict[str, Any]:
    return {"type": "image", "data": reference, "mime_type": reference.media_type}


def _failure(job_id: str, status: str, faults: list[Any]) -> JobState:
    """A final interaction that made no video: its errors, a safety block named as such (final), a passing cause
    told apart."""
    codes = [str(fault.code or "") for fault in faults]
    said = "; ".join(str(fault.message or fault.code) for fault in faults) or f"the interaction is {status}"
    if any(_SAFETY.search(f"{code} {said}") for code in codes) or _SAFETY.search(said):
        return JobState(id=job_id, status="failed", error_code="safety",
                        error_message=f"blocked by Google's safety filters: {said}")
    return JobState(id=job_id, status="failed", error_code=codes[0] if codes else status, error_message=said,
                    transient=status == "failed" and any(code.lower() in _PASSING for code in codes))

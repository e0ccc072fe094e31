"""The `google-genai` dialect: Google's Veo on Vertex AI (now "Gemini Enterprise Agent Platform"), through
Google's own SDK, `google-genai` (`client.aio.models.generate_videos`, long-running operations).

A create is `:predictLongRunning` with one instance (`prompt`, `image` the first frame, `lastFrame`, `video` to
extend, `referenceImages` of up to three subjects) and `parameters` (`durationSeconds`, `aspectRatio`,
`resolution`, `generateAudio`, `seed`, `negativePrompt`); images go inline as base64 bytes. The job is the
operation, polled with `:fetchPredictOperation` until `done`; its videos come inline (decoded by the SDK) or as
`gs://` URIs (read through fsspec, gcsfs installed). A filtered video is `done` without videos, its reasons in
`raiMediaFilteredReasons`: a permanent failure naming them. An extension passes the previous job's video back
(about 7 s added per call). Sources: googleapis/python-genai 3.6.1 (`models._GenerateVideosParameters_to_vertex`,
`operations.Operations.get`), Vertex's Veo model pages; see `reelflow/profiles/google-vertex.yaml`.

Credentials, as the SDK reads them: a project and region (`GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`) with
Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, `gcloud auth application-default login`), or
an API key (Vertex express mode). `GOOGLE_VERTEX_BASE_URL` moves the endpoint."""

from __future__ import annotations

import contextlib
import re
from typing import Any, ClassVar

from google.genai import types

from ..errors import PermanentApiError
from ..profiles import ProviderProfile
from ._base import (
    Capabilities,
    ClipJob,
    ExtensionJob,
    JobSpec,
    JobState,
    ProviderConfig,
    Reference,
    RevisionJob,
    Variant,
    WireRequest,
    action_of,
    id_shaped,
)
from ._google import PASSING_STATUS, GoogleDialect, filtered, google_frame, translated

# google.rpc.Code: a failed operation whose cause may pass (unavailable, past its deadline, out of quota,
# aborted, internal).
_PASSING_CODES = {4, 8, 10, 13, 14}
CREATE = "POST {model}:predictLongRunning"
_OPERATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_OPERATION_NAME = re.compile(r"(projects/[A-Za-z0-9_-]+/locations/[a-z0-9-]+/)?publishers/google/models/"
                             r"[A-Za-z0-9._-]+/operations/[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class GoogleGenAI(GoogleDialect):
    """Veo through `google.genai.Client` in Vertex mode."""

    dialect: ClassVar[str] = "google-genai"
    product: ClassVar[str] = "Veo"
    capabilities: ClassVar[Capabilities] = Capabilities(
        extensions=True, last_frame=True, audio_switch=True, seed=True, negative_prompt=True, subjects=True,
        variants=("video",), images="bytes", own_endpoint=True)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.once = types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1))  # creates: sent once
        self.where = config.base_url or "Vertex AI"
        if config.api_key is not None:
            # Express mode: Vertex with an API key and neither project nor location. google-genai 3.6.1
            # (`_api_client.BaseApiClient.__init__`) then sends the key as `x-goog-api-key` to the global
            # https://aiplatform.googleapis.com/ (paths without projects/.../locations/...), and an explicit key
            # takes precedence over GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION in the environment.
            self.client = self.clients.client(1 + config.retries, vertexai=True,
                                              api_key=config.api_key.get_secret_value())
        else:
            self.client = self.clients.client(1 + config.retries, vertexai=True, project=config.project,
                                              location=config.location)

    async def submit(self, job: JobSpec) -> JobState:
        if isinstance(job, RevisionJob):
            raise PermanentApiError(f"{action_of(job)}: Veo does not revise a video")
        source, config = await self._request(job)
        async with self._translated(action_of(job)):
            operation = await self.client.aio.models.generate_videos(
                model=job.model, source=source,
                config=config.model_copy(update={"http_options": self.once}))
        if not operation.name:
            raise PermanentApiError(f"{action_of(job)}: the provider returned no operation")
        return JobState(id=operation.name, status="queued")

    async def poll(self, job_id: str) -> JobState:
        async with self._translated(f"check {job_id}"):
            operation = await self.client.aio.operations.get(types.GenerateVideosOperation.model_validate(
                {"name": job_id}))
        return self._state(job_id, operation)

    def _state(self, job_id: str, operation: types.GenerateVideosOperation) -> JobState:
        if not operation.done:
            return JobState(id=job_id, status="running")
        if operation.error:
            code, status = operation.error.get("code"), str(operation.error.get("status", ""))
            return JobState(id=job_id, status="failed", error_code=status or str(code),
                            error_message=str(operation.error.get("message", "")),
                            transient=code in _PASSING_CODES or status in PASSING_STATUS)
        response = operation.response
        videos = (response.generated_videos or []) if response else []
        found = next((v.video for v in videos if v.video is not None), None)
        if found is None:
            reasons = "; ".join(response.rai_media_filtered_reasons or []) if response else ""
            return filtered(job_id, reasons or "no reason given")
        return self._kept(job_id, found, found.uri)

    def _video_parts(self, video: types.Video) -> tuple[bytes | None, str | None]:
        return video.video_bytes, video.uri  # (the SDK decoded the base64)

    async def _request(self, job: ClipJob | ExtensionJob
                       ) -> tuple[types.GenerateVideosSource, types.GenerateVideosConfig]:
        """The SDK's source and config for `job`: an extension carries the video it continues."""
        if isinstance(job, ExtensionJob):
            video = self.videos.pop(job.source, None) or await self._video_of(job.source)
            return (types.GenerateVideosSource(prompt=job.prompt, video=video),
                    types.GenerateVideosConfig(duration_seconds=job.seconds, output_gcs_uri=self._delivered_to(True)))
        frame = google_frame(job.size, "Veo")  # (an extension's frame is its source's)
        config = types.GenerateVideosConfig(
            duration_seconds=job.seconds, aspect_ratio=frame[0], resolution=frame[1], generate_audio=job.audio,
            seed=job.seed, negative_prompt=job.negative, number_of_videos=1, output_gcs_uri=self._delivered_to(True),
            last_frame=_image(job.last_frame) if job.last_frame else None,
            reference_images=[types.VideoGenerationReferenceImage(
                image=_image(s), reference_type=types.VideoGenerationReferenceType.ASSET)
                              for s in job.subjects] or None)
        return types.GenerateVideosSource(prompt=job.prompt, image=_image(job.first_frame) if job.first_frame
                                          else None), config

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        """The JSON the SDK sends (its Vertex converter's field names), images as `Reference`s."""
        if isinstance(job, ExtensionJob):
            instance: dict[str, Any] = {"prompt": job.prompt, "video": {
                "bytesBase64Encoded": job.source, "mimeType": "video/mp4"}}  # (the dry run names the source)
            return WireRequest(CREATE.format(model=f"publishers/google/models/{job.model}"),
                               {"instances": [instance], "parameters": {"durationSeconds": job.seconds}})
        if not isinstance(job, ClipJob):
            raise PermanentApiError(f"{action_of(job)}: Veo does not revise a video")
        instance = {"prompt": job.prompt}
        if job.first_frame:
            instance["image"] = job.first_frame
        if job.last_frame:
            instance["lastFrame"] = job.last_frame
        if job.subjects:
            instance["referenceImages"] = [{"image": s, "referenceType": "ASSET"} for s in job.subjects]
        ratio, tier = google_frame(job.size, "Veo")
        parameters: dict[str, Any] = {"sampleCount": 1, "durationSeconds": job.seconds, "seed": job.seed,
                                      "aspectRatio": ratio, "resolution": tier, "negativePrompt": job.negative,
                                      "generateAudio": job.audio}
        return WireRequest(CREATE.format(model=f"publishers/google/models/{job.model}"), {
            "instances": [instance], "parameters": {k: v for k, v in parameters.items() if v is not None}})

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        """An operation's name as the SDK returns it (`projects/<p>/locations/<l>/publishers/google/models/<model>/
        operations/<uuid>`: google-genai 3.6.1 tests/models/test_generate_videos.py), or its last part alone, named
        here after the model `request` goes to (the SDK adds the project and region of a relative name)."""
        name = given.strip()
        if "/" not in name:
            model = request.route.removeprefix("POST ").removesuffix(":predictLongRunning")
            name = f"{model}/operations/{id_shaped(name, _OPERATION, 'an operation id')}"
        return id_shaped(name, _OPERATION_NAME, "projects/.../publishers/google/models/.../operations/..., or its "
                         "last part")

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        return ("POST {model}:fetchPredictOperation {operationName} until done; its video inline (base64) or "
                "from its gs:// URI")

    def _translated(self, action: str) -> contextlib.AbstractAsyncContextManager[None]:
        return translated(action, self.where, self.key_variable)


def _image(reference: Reference) -> types.Image:
    return types.Image(image_bytes=reference.data, mime_type=reference.media_type)


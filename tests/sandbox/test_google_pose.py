"""The sandbox posing as Veo on Vertex AI, driven by Google's own SDK (google-genai, Vertex mode): text and
image to video, first and last frames, subject references, native extensions, the safety filter, Google's
errors, and a RESOURCE_EXHAUSTED answer waited out by reelflow's gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import google.oauth2.credentials
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from reelflow import AuthenticationError
from reelflow.providers import ClipJob
from reelflow.sandbox import RunningSandbox, run_sandbox
from tasks.videos import WaitPolicy, wait_for
from tests.conftest import gateway_to, image_bytes
from tests.media import probe_video, psnr, sound_of, video_frames

MODEL = "veo-3.1-fast-generate-001"


@pytest.fixture(scope="module")
def vertex() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="google-vertex", job_seconds=0.3) as running:
        yield running


@pytest.fixture
def client(vertex: RunningSandbox) -> genai.Client:
    """Vertex mode with a project, as a user's code has it (a token instead of Application Default Credentials)."""
    return genai.Client(vertexai=True, project="film-123", location="us-central1",
                        credentials=google.oauth2.credentials.Credentials(token="ya29.test"),  # type: ignore[no-untyped-call]
                        http_options=types.HttpOptions(base_url=vertex.base_url))


def finished(client: genai.Client, operation: types.GenerateVideosOperation) -> types.GenerateVideosOperation:
    deadline = time.monotonic() + 30
    while not operation.done:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        operation = client.operations.get(operation)
    return operation


def video_of(operation: types.GenerateVideosOperation) -> bytes:
    assert operation.response is not None and operation.response.generated_videos
    video = operation.response.generated_videos[0].video
    assert video is not None and video.video_bytes is not None
    return video.video_bytes


def prompted(text: str) -> types.GenerateVideosSource:
    return types.GenerateVideosSource(prompt=text)


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> types.Image:
    return types.Image(image_bytes=image_bytes(size, colour=colour), mime_type="image/png")


def test_text_to_video_is_an_operation_with_the_video_inline(client: genai.Client, vertex: RunningSandbox) -> None:
    operation = client.models.generate_videos(model=MODEL, source=prompted("a harbour at dawn"),
                                              config=types.GenerateVideosConfig(duration_seconds=6))
    assert operation.name and operation.name.startswith(
        f"projects/film-123/locations/us-central1/publishers/google/models/{MODEL}/operations/")
    data = video_of(finished(client, operation))
    info = probe_video(data)
    assert (info.size, info.seconds) == ((1280, 720), 6.0)
    sound = sound_of(data)
    assert sound is not None and abs(sound.seconds - 6) < 1 / 24


def test_the_first_frame_is_the_image_and_the_last_the_last_frame(client: genai.Client) -> None:
    first, last = (20, 60, 200), (230, 120, 20)
    operation = client.models.generate_videos(
        model=MODEL, source=types.GenerateVideosSource(prompt="a day passes", image=picture(first)),
        config=types.GenerateVideosConfig(duration_seconds=4, last_frame=picture(last, (640, 640))))
    frames = video_frames(video_of(finished(client, operation)))
    assert psnr(frames[0], Image.new("RGB", (1280, 720), first)) > 35
    assert psnr(frames[-1], Image.new("RGB", (1280, 720), last)) > 35


def test_three_subject_images_and_no_more(client: genai.Client) -> None:
    subjects = [types.VideoGenerationReferenceImage(image=picture((n * 60, 90, 160), (512, 512)),
                                                    reference_type=types.VideoGenerationReferenceType.ASSET)
                for n in range(4)]
    ok = client.models.generate_videos(model=MODEL, source=prompted("the same woman at the market"), config=types.
                                       GenerateVideosConfig(duration_seconds=8, reference_images=subjects[:3]))
    assert probe_video(video_of(finished(client, ok))).seconds == 8.0
    with pytest.raises(errors.ClientError) as refused:
        client.models.generate_videos(model=MODEL, source=prompted("four"), config=types.GenerateVideosConfig(
            duration_seconds=8, reference_images=subjects))
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    with pytest.raises(errors.ClientError, match="only 8 second"):
        client.models.generate_videos(model=MODEL, source=prompted("short"), config=types.GenerateVideosConfig(
            duration_seconds=4, reference_images=subjects[:1]))


def test_an_eight_second_clip_extended_three_times_natively(client: genai.Client, vertex: RunningSandbox) -> None:
    before = dict(vertex.stats()["jobs_by_kind"])
    operation = finished(client, client.models.generate_videos(
        model=MODEL, source=prompted("a ferry leaves"), config=types.GenerateVideosConfig(duration_seconds=8)))
    for beat in ("it turns", "it passes the island", "it docks"):
        assert operation.response and operation.response.generated_videos
        operation = finished(client, client.models.generate_videos(
            model=MODEL, source=types.GenerateVideosSource(prompt=beat,
                                                           video=operation.response.generated_videos[0].video)))
    data = video_of(operation)
    info, sound = probe_video(data), sound_of(data)
    assert (info.size, info.seconds) == ((1280, 720), 29.0)
    assert sound is not None and abs(sound.seconds - 29) < 1 / 24
    after = vertex.stats()["jobs_by_kind"]
    assert (after.get("create", 0) - before.get("create", 0), after["extension"] - before.get("extension", 0)) == (1, 3)


def test_a_filtered_prompt_is_done_without_a_video_and_says_why(client: genai.Client) -> None:
    done = finished(client, client.models.generate_videos(model=MODEL, source=prompted("[blocked] something")))
    assert done.error is None and done.response is not None and done.response.generated_videos is None
    assert done.response.rai_media_filtered_count == 1
    assert "usage guidelines" in (done.response.rai_media_filtered_reasons or [""])[0]


@pytest.mark.parametrize(("config", "said"), [
    ({"duration_seconds": 5}, "Unsupported output video duration 5 seconds"),
    ({"aspect_ratio": "1:1"}, "Unsupported aspectRatio '1:1'"),
    ({"resolution": "4k"}, "Unsupported resolution '4k'"),
    ({"seed": -1}, "parameters.seed"),
])
def test_googles_validation_and_error_envelope(client: genai.Client, config: dict[str, Any], said: str) -> None:
    with pytest.raises(errors.ClientError) as refused:
        client.models.generate_videos(model=MODEL, source=prompted("p"), config=types.GenerateVideosConfig(**config))
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert said in str(refused.value.message)


def test_an_unknown_model_and_an_unknown_operation_are_not_found(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_videos(model="veo-9", source=prompted("p"))
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    lost = types.GenerateVideosOperation.model_validate(
        {"name": f"projects/film-123/locations/us-central1/publishers/google/models/{MODEL}/operations/nope"})
    with pytest.raises(errors.ClientError, match="NOT_FOUND"):
        client.operations.get(lost)


def test_express_mode_takes_an_api_key(vertex: RunningSandbox) -> None:
    express = genai.Client(vertexai=True, api_key="AIza-test", http_options=types.HttpOptions(base_url=vertex.base_url))
    operation = express.models.generate_videos(model=MODEL, source=prompted("express"))
    assert operation.name and operation.name.startswith(f"publishers/google/models/{MODEL}/operations/")
    assert probe_video(video_of(finished(express, operation))).size == (1280, 720)


def test_resource_exhausted_is_waited_out_by_the_gateway() -> None:
    with run_sandbox(profile="google-vertex", job_seconds=1, max_concurrent=1) as busy:
        async def scenario() -> tuple[float, int]:
            gateway = gateway_to(busy, profile="google-vertex")
            first = await gateway.send(ClipJob(prompt="first", model=MODEL, size="1280x720", seconds=4))
            started = time.monotonic()
            second = await gateway.send(ClipJob(prompt="second", model=MODEL, size="1280x720", seconds=4))
            waited = time.monotonic() - started
            for job in (first, second):
                await wait_for(gateway, job, WaitPolicy(0.05, 1, 30))
            await gateway.close()
            return waited, busy.stats()["responses"].get("429", 0)

        waited, refusals = asyncio.run(scenario())
    assert refusals >= 1 and 0.5 < waited < 15


def test_a_bad_api_key_is_400_as_google_answers_it_and_an_authentication_error_to_reelflow() -> None:
    with run_sandbox(profile="google-vertex", api_keys=frozenset({"AIza-right"})) as strict:
        wrong = genai.Client(vertexai=True, api_key="AIza-wrong", http_options=types.HttpOptions(
            base_url=strict.base_url))
        with pytest.raises(errors.ClientError) as refused:
            wrong.models.generate_videos(model=MODEL, source=prompted("p"))

        async def through_reelflow() -> None:
            gateway = gateway_to(strict, key="AIza-wrong-secret", profile="google-vertex")
            try:
                await gateway.send(ClipJob(prompt="p", model=MODEL, size="1280x720", seconds=4))
            finally:
                await gateway.close()

        with pytest.raises(AuthenticationError) as stopped:
            asyncio.run(through_reelflow())
    assert (refused.value.code, refused.value.message) == (400, "API key not valid. Please pass a valid API key.")
    assert "AIza-wrong-secret" not in str(stopped.value) and "GOOGLE_API_KEY" in str(stopped.value)

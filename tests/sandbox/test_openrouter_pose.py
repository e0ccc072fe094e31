"""The sandbox posing as OpenRouter, driven by OpenRouter's own SDK: its routes, its validation, its status
words, its error envelope, signed expiring download URLs, and reference images fetched only on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors

from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import image_bytes, wait_until
from tests.media import probe_video


@pytest.fixture(scope="module")
def pose() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="openrouter", job_seconds=0.3) as running:
        yield running


@pytest.fixture
def sdk(pose: RunningSandbox) -> Iterator[OpenRouter]:
    with httpx.Client() as sync, OpenRouter(api_key="sk-or-test", server_url=pose.base_url, client=sync) as client:
        yield client


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def frame(url: str, kind: str = "first_frame") -> Any:  # the SDK's FrameImageTypedDict
    return {"type": "image_url", "image_url": {"url": url}, "frame_type": kind}


def finished(sdk: OpenRouter, job_id: str) -> Any:
    states: list[Any] = []

    def done() -> bool:
        states.append(sdk.video_generation.get_generation(job_id=job_id))
        return states[-1].status in ("completed", "failed")

    assert wait_until(done, seconds=30, every=0.05)
    return states[-1]


def test_a_job_goes_pending_to_completed_and_its_signed_url_serves_the_video(sdk: OpenRouter,
                                                                          pose: RunningSandbox) -> None:
    first, last = image_bytes((1280, 720), colour=(10, 200, 30)), image_bytes((640, 360), colour=(200, 10, 30))
    created = sdk.video_generation.generate(model="google/veo-3.1-fast", prompt="a harbour", duration=4,
                                            resolution="720p", aspect_ratio="16:9",
                                            frame_images=[frame(data_url(first)), frame(data_url(last), "last_frame")])
    assert (created.status, created.polling_url) == ("pending", f"/api/v1/videos/{created.id}")
    assert created.id.startswith("gen-vid-")
    done = finished(sdk, created.id)
    assert done.status == "completed" and done.usage is not None and done.usage.cost == pytest.approx(0.4)
    assert done.urls and done.expires_at and done.unsigned_urls
    signed = httpx.get(pose.base_url.removesuffix("/api/v1") + done.urls[0])  # no key: the signature is the key
    assert signed.status_code == 200 and signed.headers["content-type"] == "video/mp4"
    info = probe_video(signed.content)
    assert (info.size, info.seconds) == ((1280, 720), 4)
    proxied = sdk.video_generation.get_video_content(job_id=created.id)
    assert proxied.read() == signed.content


def test_a_tampered_signed_url_is_forbidden(sdk: OpenRouter, pose: RunningSandbox) -> None:
    created = sdk.video_generation.generate(model="google/veo-3.1-fast", prompt="tamper", duration=4)
    done = finished(sdk, created.id)
    url = pose.base_url.removesuffix("/api/v1") + done.urls[0]
    assert httpx.get(url[:-4] + "0000").status_code == 403
    assert httpx.get(url.replace("expires=", "expires=9")).status_code == 403


@pytest.mark.parametrize(("fields", "param", "said"), [
    ({"duration": 5}, "duration", "duration 5 is not supported by google/veo-3.1-fast; supported durations: 4, 6, 8"),
    ({"duration": "8"}, "duration", "duration must be an integer number of seconds"),
    ({"resolution": "480p"}, "resolution", "resolution 480p is not supported by google/veo-3.1-fast"),
    ({"aspect_ratio": "1:1"}, "aspect_ratio", "aspect_ratio 1:1 is not supported by google/veo-3.1-fast"),
    ({"size": "1280x720", "aspect_ratio": "9:16"}, "size", "size conflicts with aspect_ratio or resolution"),
    ({"model": "openai/sora-2"}, "model", "Model 'openai/sora-2' does not exist or does not generate video"),
    ({"frame_images": [frame("https://example.com/boat.png")]}, "frame_images[0].image_url.url",
     "Failed to download image from frame_images[0].image_url.url: example.com cannot be reached from the sandbox"),
    ({"frame_images": [frame(data_url(b"not an image"))]}, "frame_images[0].image_url.url",
     "frame_images[0].image_url.url is not an image in a supported format"),
    ({"frame_images": [{"type": "image_url", "image_url": {"url": "x"}, "frame_type": "middle_frame"}]},
     "frame_images[0].frame_type", "frame_images[0].frame_type must be first_frame or last_frame"),
    ({"callback_url": "http://insecure.example/hook"}, "callback_url", "callback_url must be an HTTPS URL"),
])
def test_requests_it_refuses_are_400_in_openrouters_envelope(pose: RunningSandbox, fields: dict[str, Any],
                                                             param: str, said: str) -> None:
    body = {"model": "google/veo-3.1-fast", "prompt": "p", "duration": 4, **fields}
    answer = httpx.post(f"{pose.base_url}/videos", json=body, headers={"authorization": "Bearer k"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 400 and error["message"].startswith(said) and error["metadata"]["param"] == param


def test_the_sdk_raises_its_own_error_types(sdk: OpenRouter, pose: RunningSandbox) -> None:
    with pytest.raises(errors.BadRequestResponseError) as refused:
        sdk.video_generation.generate(model="google/veo-3.1-fast", prompt="p", duration=7)
    assert refused.value.data.error.code == 400
    with pytest.raises(errors.NotFoundResponseError):
        sdk.video_generation.get_generation(job_id="gen-vid-missing")
    with httpx.Client() as sync, OpenRouter(server_url=pose.base_url, client=sync) as keyless, \
            pytest.raises(errors.UnauthorizedResponseError):
        keyless.video_generation.get_generation(job_id="gen-vid-missing")


def test_content_before_completion_is_a_conflict(pose: RunningSandbox) -> None:
    with run_sandbox(profile="openrouter", job_seconds=30) as slow:
        headers = {"authorization": "Bearer k"}
        created = httpx.post(f"{slow.base_url}/videos", json={"model": "google/veo-3.1-fast", "prompt": "p"},
                             headers=headers).json()
        early = httpx.get(f"{slow.base_url}/videos/{created['id']}/content", headers=headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == 409


def test_a_blocked_prompt_fails_with_its_reason(sdk: OpenRouter) -> None:
    created = sdk.video_generation.generate(model="google/veo-3.1-fast", prompt="[blocked] a harbour", duration=4)
    done = finished(sdk, created.id)
    assert (done.status, done.error) == ("failed", "Your request was blocked by our moderation system.")


def test_the_model_list_is_the_profile(sdk: OpenRouter) -> None:
    models = {m.id: m for m in sdk.video_generation.list_videos_models().data}
    veo = models["google/veo-3.1"]
    assert (veo.supported_durations, veo.supported_resolutions) == ([4, 6, 8], ["720p", "1080p", "4K"])
    assert "kwaivgi/kling-v3.0-pro" in models and "bytedance/seedance-2.0" in models


def test_only_openrouter_routes_exist_in_this_pose(pose: RunningSandbox) -> None:
    answer = httpx.post(pose.base_url.removesuffix("/api/v1") + "/v1/videos", json={"prompt": "p"},
                        headers={"authorization": "Bearer k"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == 404

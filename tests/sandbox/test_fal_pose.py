"""The sandbox posing as fal's queue, driven by fal's own client (`fal-client`, its hosts pointed at the sandbox
as fal's own tests point them): submit, status with the queue position, results with real media, inputs checked
against each endpoint's published schema (fal's 422 shape), uploads to its storage, its keys and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import fal_client
import fal_client.client as fal_hosts
import httpx
import pytest
from PIL import Image

from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import image_bytes
from tests.media import probe_video, psnr, sound_of, video_frames

KLING_TEXT = "fal-ai/kling-video/v3/pro/text-to-video"
KLING_IMAGE = "fal-ai/kling-video/v3/pro/image-to-video"
SEEDANCE_IMAGE = "bytedance/seedance-2.0/image-to-video"


@pytest.fixture(scope="module")
def fal() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="fal", job_seconds=0.3) as running:
        yield running


@pytest.fixture
def client(fal: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[fal_client.SyncClient]:
    with client_of(fal, monkeypatch) as pointed:
        yield pointed


@contextlib.contextmanager
def client_of(running: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[fal_client.SyncClient]:
    """fal's client with its hosts at the sandbox; its connections closed after (it has no `close` of its own)."""
    for name in ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT"):
        monkeypatch.setattr(fal_hosts, name, f"{running.base_url}/")
    for name in ("REST_URL", "CDN_URL"):
        monkeypatch.setattr(fal_hosts, name, running.base_url)
    client = fal_client.SyncClient(key=running.api_key)
    try:
        yield client
    finally:
        if "_client" in vars(client):
            client._client.close()


def refusals(error: fal_client.FalClientHTTPError) -> dict[str, str]:
    detail: Any = error.message
    assert error.status_code == 422 and isinstance(detail, list), error
    return {".".join(item["loc"][1:]): item["type"] for item in detail}


def test_a_text_to_video_request_queues_runs_and_answers_a_video_with_sound(client: fal_client.SyncClient) -> None:
    handle = client.submit(KLING_TEXT, {"prompt": "a lighthouse at dusk", "duration": "5", "aspect_ratio": "9:16"})
    events = list(handle.iter_events(interval=0.05))
    result = handle.get()
    assert isinstance(events[-1], fal_client.Completed)
    video = httpx.get(result["video"]["url"]).content  # the CDN URL needs no key
    info = probe_video(video)
    assert (info.size, round(info.seconds)) == ((720, 1280), 5)
    assert result["video"]["content_type"] == "video/mp4" and result["video"]["file_size"] == len(video)
    assert sound_of(video) is not None
    assert client.status(KLING_TEXT.rsplit("/", 3)[0], handle.request_id) == events[-1]  # by the app's routes


def test_status_says_how_many_requests_are_ahead_in_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_sandbox(profile="fal", job_seconds=30) as slow, client_of(slow, monkeypatch) as client:  # queued 3 s
        handles = [client.submit(KLING_TEXT, {"prompt": f"shot {n}", "duration": "3"}) for n in range(3)]
        status = handles[2].status()
        for handle in handles:
            handle.cancel()
        with pytest.raises(fal_client.FalClientHTTPError) as cancelled:
            handles[0].get()
    assert isinstance(status, fal_client.Queued) and status.position == 2
    assert cancelled.value.status_code == 499


@pytest.mark.parametrize(("inputs", "expected"), [
    ({"prompt": "x", "start_image_ur": "https://example.com/a.png"},
     {"start_image_url": "missing", "start_image_ur": "extra_forbidden"}),
    ({"prompt": "x", "start_image_url": "data:,", "duration": 5}, {"duration": "string_type"}),
    ({"prompt": "x", "start_image_url": "data:,", "duration": "2", "generate_audio": "yes"},
     {"duration": "literal_error", "generate_audio": "bool_type"}),
])
def test_inputs_the_endpoint_does_not_take_fail_the_request_with_fals_422(
        client: fal_client.SyncClient, inputs: dict[str, Any], expected: dict[str, str]) -> None:
    """As fal's apps do: the request is queued, runs, and its result is the refusal of each input."""
    handle = client.submit(KLING_IMAGE, inputs)
    status = handle.status()
    while not isinstance(status, fal_client.Completed):
        time.sleep(0.05)
        status = handle.status()
    assert status.error
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        handle.get()
    assert refusals(refused.value) == expected


def uploaded(running: RunningSandbox, image: bytes) -> str:
    """Uploaded by the async client, as the dialect uploads (the sync client's upload leaves a connection open)."""
    return asyncio.run(fal_client.AsyncClient(key=running.api_key).upload(image, "image/png", "image.png"))


def test_an_image_uploaded_to_fals_storage_is_the_first_frame_and_an_end_image_the_last(
        fal: RunningSandbox, client: fal_client.SyncClient) -> None:
    first = Image.new("RGB", (1280, 720), (30, 80, 200))
    start, end = (uploaded(fal, image_bytes((1280, 720), colour=colour)) for colour in ((30, 80, 200), (220, 110, 30)))
    result = client.subscribe(SEEDANCE_IMAGE, {"prompt": "day to dusk", "image_url": start, "end_image_url": end,
                                               "duration": "4", "resolution": "720p", "aspect_ratio": "16:9"},
                              interval=0.05)
    frames = video_frames(httpx.get(result["video"]["url"]).content)
    assert psnr(frames[0], first) > 35
    assert frames[-1].getpixel((640, 100)) == pytest.approx((220, 110, 30), abs=6)


def test_an_image_the_queue_cannot_fetch_is_refused_on_its_field(client: fal_client.SyncClient) -> None:
    handle = client.submit(SEEDANCE_IMAGE, {"prompt": "x", "image_url": "https://example.com/nowhere.png"})
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        handle.get(interval=0.05)
    assert refusals(refused.value) == {"image_url": "file_download_error"}


def test_keys_unknown_endpoints_and_the_stats(fal: RunningSandbox) -> None:
    missing = httpx.post(f"{fal.base_url}/{KLING_TEXT}", json={"prompt": "x"})
    assert missing.status_code == 401 and missing.json() == {"detail": "Missing authorization header"}
    with run_sandbox(profile="fal", api_keys=frozenset({"right:secret"})) as strict:
        wrong = httpx.post(f"{strict.base_url}/{KLING_TEXT}", json={}, headers={"Authorization": "Key nope"})
        right = httpx.post(f"{strict.base_url}/{KLING_TEXT}", json={}, headers={"Authorization": "Key right:secret"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "No user found for Key ID and Secret"}
    assert right.status_code == 200 and right.json()["status"] == "IN_QUEUE"
    unknown = httpx.post(f"{fal.base_url}/fal-ai/nothing/v1", json={}, headers={"Authorization": f"Key {fal.api_key}"})
    assert unknown.status_code == 404 and "fal-ai/nothing" in unknown.json()["detail"]
    assert "x-fal-request-id" in unknown.headers
    requests = fal.stats()["requests"]
    assert requests["POST /{endpoint:path}"] >= 3 and requests["GET /{app:path}/requests/{id}/status"] >= 1

"""The sandbox's video lifecycle, driven through the real openai SDK over HTTP."""

from __future__ import annotations

import base64
import io
import time

import openai
import pytest
from PIL import Image

from reelflow.sandbox import FPS, RunningSandbox
from tests.conftest import image_bytes, sdk
from tests.media import probe_video, psnr, video_frames


def finished(client: openai.OpenAI, video_id: str) -> openai.types.Video:
    video = client.videos.poll(video_id, poll_interval_ms=50)
    assert video.status == "completed", video.error
    return video


def test_a_job_is_queued_then_completes_with_rising_progress(sandbox: RunningSandbox) -> None:
    client = sdk(sandbox)
    video = client.videos.create(prompt="a lighthouse at dusk", size="1280x720", seconds="4")
    assert (video.status, video.progress, video.completed_at, video.expires_at) == ("queued", 0, None, None)
    seen = []
    while video.status in ("queued", "in_progress"):
        raw = client.videos.with_raw_response.retrieve(video.id)
        video = raw.parse()
        seen.append((video.status, video.progress))
        if video.status != "completed":
            assert int(raw.headers["openai-poll-after-ms"]) > 0
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert video.completed_at is not None and video.expires_at is not None
    assert video.expires_at > video.completed_at


def test_the_video_decodes_at_exactly_the_requested_size_and_length(client: openai.OpenAI) -> None:
    video = finished(client, client.videos.create(prompt="waves", size="720x1280", seconds="8").id)
    info = probe_video(client.videos.download_content(video.id).read())
    assert (info.size, info.seconds, info.codec) == ((720, 1280), 8.0, "h264")
    assert info.frames == 8 * FPS


def test_thumbnail_and_spritesheet_are_real_images(client: openai.OpenAI) -> None:
    video = finished(client, client.videos.create(prompt="waves", size="1280x720").id)
    thumbnail = client.videos.download_content(video.id, variant="thumbnail")
    sheet = client.videos.download_content(video.id, variant="spritesheet")
    assert thumbnail.response.headers["content-type"] == "image/webp"
    assert sheet.response.headers["content-type"] == "image/jpeg"
    thumb_image = Image.open(io.BytesIO(thumbnail.read()))
    sheet_image = Image.open(io.BytesIO(sheet.read()))
    assert (thumb_image.format, thumb_image.size) == ("WEBP", (1280, 720))
    assert sheet_image.format == "JPEG" and sheet_image.width > sheet_image.height > 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_reference_image_becomes_the_first_frame(client: openai.OpenAI, fmt: str) -> None:
    reference = Image.linear_gradient("L").resize((1280, 720)).convert("RGB")
    data = io.BytesIO()
    reference.save(data, fmt, quality=95)
    video = client.videos.create(prompt="it comes alive", size="1280x720",
                                 input_reference=(f"ref.{fmt.lower()}", data.getvalue()))
    first = video_frames(client.videos.download_content(finished(client, video.id).id).read())[0]
    assert psnr(first, reference) > 35


def test_reference_as_data_url_and_as_uploaded_file(client: openai.OpenAI) -> None:
    png = image_bytes((720, 1280))
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    by_url = client.videos.create(prompt="p", extra_body={"input_reference": {"image_url": data_url}})
    uploaded = client.files.create(file=("ref.png", png), purpose="vision")
    by_file = client.videos.create(prompt="p", extra_body={"input_reference": {"file_id": uploaded.id}})
    for video in (by_url, by_file):
        first = video_frames(client.videos.download_content(finished(client, video.id).id).read())[0]
        assert psnr(first, Image.open(io.BytesIO(png))) > 35


def test_json_create_body_is_accepted(client: openai.OpenAI) -> None:
    video = client.post("/videos", body={"prompt": "json body", "seconds": "4", "size": "1280x720"},
                        cast_to=openai.types.Video)
    assert (video.size, video.seconds, video.status) == ("1280x720", "4", "queued")


def test_guide_lengths_and_1080p_are_served(client: openai.OpenAI) -> None:
    video = client.videos.create(prompt="long", model="sora-2-pro", size="1920x1080", seconds="20")  # type: ignore[arg-type]
    assert (video.seconds, video.size) == ("20", "1920x1080")


def test_dated_model_snapshots_are_accepted(client: openai.OpenAI) -> None:
    assert client.videos.create(prompt="p", model="sora-2-2025-12-08").model == "sora-2-2025-12-08"


def test_a_blocked_prompt_fails_with_moderation_blocked(client: openai.OpenAI) -> None:
    video = client.videos.poll(client.videos.create(prompt="something [blocked]").id, poll_interval_ms=50)
    assert video.status == "failed"
    assert video.error is not None and video.error.code == "moderation_blocked"
    with pytest.raises(openai.BadRequestError, match="status is 'failed'"):
        client.videos.download_content(video.id)


def test_content_before_completion_is_refused(sandbox: RunningSandbox) -> None:
    from reelflow.sandbox import run_sandbox

    with run_sandbox(job_seconds=30) as slow:
        client = sdk(slow, max_retries=0)
        video = client.videos.create(prompt="slow")
        with pytest.raises(openai.BadRequestError, match="status is 'queued'"):
            client.videos.download_content(video.id)
        with pytest.raises(openai.BadRequestError, match="only completed or failed videos can be deleted"):
            client.videos.delete(video.id)


def test_unknown_video_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="video_nope"):
        client.videos.retrieve("video_nope")


def test_delete_removes_a_finished_video(client: openai.OpenAI) -> None:
    video = finished(client, client.videos.create(prompt="gone soon").id)
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_list_pages_with_a_cursor(client: openai.OpenAI) -> None:
    mine = [client.videos.create(prompt=f"page {i}").id for i in range(5)]
    first = client.videos.list(limit=2, order="desc")
    assert [v.id for v in first.data] == mine[::-1][:2] and first.has_more
    newest_first = [v.id for v in client.videos.list(limit=2, order="desc")]  # auto-paging follows `after`
    assert newest_first[:5] == mine[::-1]
    oldest_first = [v.id for v in client.videos.list(limit=3, order="asc")]
    assert [i for i in oldest_first if i in mine] == mine


def test_remix_keeps_size_and_length_and_names_its_source(client: openai.OpenAI) -> None:
    source = finished(client, client.videos.create(prompt="day", size="1280x720", seconds="8").id)
    remix = finished(client, client.videos.remix(source.id, prompt="night").id)
    assert remix.remixed_from_video_id == source.id
    info = probe_video(client.videos.download_content(remix.id).read())
    assert (info.size, info.seconds) == ((1280, 720), 8.0)


def test_edit_by_id_and_by_upload(client: openai.OpenAI) -> None:
    source = finished(client, client.videos.create(prompt="plain", size="1280x720").id)
    mp4 = client.videos.download_content(source.id).read()
    by_id = client.videos.edit(prompt="add rain", video=openai.omit, extra_body={"video": {"id": source.id}})  # type: ignore[arg-type]
    by_upload = client.videos.edit(prompt="add snow", video=("clip.mp4", mp4, "video/mp4"))
    for edit in (by_id, by_upload):
        info = probe_video(client.videos.download_content(finished(client, edit.id).id).read())
        assert (info.size, info.seconds) == ((1280, 720), 4.0)


def test_an_edit_of_an_uploaded_video_takes_the_model(client: openai.OpenAI) -> None:
    """OpenAI's video guide sets `model` on edits (its Sora CLI does); the sandbox answered `Unknown parameter`."""
    source = finished(client, client.videos.create(prompt="plain", size="1280x720").id)
    mp4 = client.videos.download_content(source.id).read()
    edit = client.videos.edit(prompt="add fog", video=("clip.mp4", mp4, "video/mp4"),
                              extra_body={"model": "sora-2-pro"})
    assert finished(client, edit.id).model == "sora-2-pro"


def test_a_reference_url_off_this_machine_is_refused_without_a_network_attempt(client: openai.OpenAI,
                                                                               sandbox: RunningSandbox) -> None:
    """The sandbox once fetched a remote `image_url` from the internet: no test may leave the machine."""
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="p", extra_body={"input_reference": {"image_url": "https://203.0.113.7/a.png"}})
    assert time.monotonic() - started < 2  # a connect attempt to that address would hang for seconds
    assert refused.value.code == "invalid_image_url"
    assert "203.0.113.7 cannot be reached from the sandbox (it fetches from loopback only)" in refused.value.message
    assert sandbox.stats()["images_fetched"].get("refused", 0) >= 1

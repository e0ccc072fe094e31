"""Extensions stitch onto their source; characters are created once and referenced by id."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from reelflow.sandbox import run_sandbox
from reelflow.sandbox._media import FPS, Recipe, Segment, render
from tests.conftest import sdk
from tests.media import probe_video, psnr, video_frames


@pytest.fixture(scope="module")
def instant() -> Iterator[openai.OpenAI]:
    with run_sandbox(job_seconds=0) as running:
        yield sdk(running, max_retries=0)


def extend(client: openai.OpenAI, video_id: str, seconds: int, prompt: str = "and then") -> openai.types.Video:
    return client.videos.extend(prompt=prompt, seconds=str(seconds),  # type: ignore[arg-type]
                                video=openai.omit, extra_body={"video": {"id": video_id}})  # type: ignore[arg-type]


def completed(client: openai.OpenAI, video: openai.types.Video) -> openai.types.Video:
    done = client.videos.poll(video.id, poll_interval_ms=20)
    assert done.status == "completed", done.error
    return done


def test_an_extension_is_the_source_followed_by_the_new_segment(instant: openai.OpenAI) -> None:
    source = completed(instant, instant.videos.create(prompt="a harbour", size="1280x720", seconds="4"))
    extension = completed(instant, extend(instant, source.id, 8, "boats leave"))
    assert extension.seconds == "12"
    source_frames = video_frames(instant.videos.download_content(source.id).read())
    stitched = instant.videos.download_content(extension.id).read()
    info = probe_video(stitched)
    assert (info.size, info.seconds, info.frames) == ((1280, 720), 12.0, 12 * FPS)
    stitched_frames = video_frames(stitched)
    assert all(psnr(a, b) > 30 for a, b in zip(source_frames, stitched_frames[: len(source_frames)], strict=True))
    assert psnr(source_frames[0], stitched_frames[len(source_frames)]) < 30  # a new segment begins


@pytest.mark.parametrize(("first", "each", "chain", "total", "refused", "message"), [
    (4, 4, 6, "28", 4, "at most 6 extensions"),  # six extensions, then no more
    (20, 20, 5, "120", 4, "would be 124 seconds long; extended videos can be at most 120"),  # 120 s, no more
])
def test_extension_chain_limits(instant: openai.OpenAI, first: int, each: int, chain: int, total: str,
                                refused: int, message: str) -> None:
    video = completed(instant, instant.videos.create(prompt="start", seconds=str(first)))  # type: ignore[arg-type]
    for _ in range(chain):
        video = completed(instant, extend(instant, video.id, each))
    assert video.seconds == total
    with pytest.raises(openai.BadRequestError, match=message):
        extend(instant, video.id, refused)


@pytest.mark.parametrize(("fields", "message"), [
    ({"seconds": "5"}, "Invalid value: '5'. Supported values are: '4', '8', '12', '16', and '20'."),
    ({"input_reference": {"image_url": "data:,"}}, "Unknown parameter: 'input_reference'."),
    ({"characters": [{"id": "char_x"}]}, "Unknown parameter: 'characters'."),
])
def test_extension_parameters_are_checked(instant: openai.OpenAI, fields: dict[str, Any], message: str) -> None:
    source = completed(instant, instant.videos.create(prompt="start"))
    body = {"prompt": "more", "seconds": "4", "video": {"id": source.id}, **fields}
    with pytest.raises(openai.BadRequestError) as raised:
        instant.post("/videos/extensions", body=body, cast_to=openai.types.Video)
    assert raised.value.message.endswith(message)


def test_only_a_completed_video_can_be_extended() -> None:
    with run_sandbox(job_seconds=30) as slow:
        client = sdk(slow, max_retries=0)
        video = client.videos.create(prompt="not yet")
        with pytest.raises(openai.BadRequestError, match="is not completed"):
            extend(client, video.id, 4)


def clip(seconds: int) -> bytes:
    recipe = Recipe(size=(720, 1280), segments=[Segment(seconds=seconds, seed="a person")])
    return render(recipe, lambda key: b"").video


def test_characters_are_created_fetched_and_referenced(instant: openai.OpenAI) -> None:
    mira = instant.videos.create_character(name="Mira", video=("mira.mp4", clip(3), "video/mp4"))
    assert mira.id and mira.id.startswith("char_") and mira.name == "Mira"
    assert instant.videos.get_character(mira.id).name == "Mira"
    juno = instant.videos.create_character(name="Juno", video=("juno.mp4", clip(2), "video/mp4"))
    video = instant.videos.create(prompt="Mira and Juno wave",
                                  extra_body={"characters": [{"id": mira.id}, {"id": juno.id}]})
    assert completed(instant, video).status == "completed"
    with pytest.raises(openai.BadRequestError, match="maximum length 2"):
        instant.videos.create(prompt="crowd", extra_body={"characters": [{"id": mira.id}] * 3})
    with pytest.raises(openai.NotFoundError, match="char_unknown"):
        instant.videos.create(prompt="who", extra_body={"characters": [{"id": "char_unknown"}]})


def test_a_character_clip_must_be_two_to_four_seconds(instant: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="2 to 4 seconds long"):
        instant.videos.create_character(name="Long", video=("long.mp4", clip(8), "video/mp4"))
    with pytest.raises(openai.BadRequestError, match="could not be decoded as a video"):
        instant.videos.create_character(name="Bad", video=("bad.mp4", io.BytesIO(b"nope"), "video/mp4"))

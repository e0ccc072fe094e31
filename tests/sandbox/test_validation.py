"""The sandbox rejects what the real API rejects, with the real API's status, type and wording."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import image_bytes, sdk

INPAINT = "Inpaint image must match the requested width and height"


@pytest.fixture(scope="module")
def strict() -> Iterator[openai.OpenAI]:
    """A sandbox posing as the API exactly as its published schema allows (4/8/12 s, no 1080p)."""
    with run_sandbox(profile="sora-spec", job_seconds=0) as running:
        yield sdk(running, max_retries=0)


def create_error(client: openai.OpenAI, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(openai.APIStatusError) as raised:
        client.videos.create(**arguments)
    body = raised.value.body
    assert isinstance(body, dict)
    return {"status": raised.value.status_code, **body}


@pytest.mark.parametrize(("arguments", "message", "param"), [
    ({"prompt": "p", "seconds": "10"}, "Invalid value: '10'. Supported values are: '4', '8', and '12'.", "seconds"),
    ({"prompt": "p", "seconds": "16"}, "Invalid value: '16'. Supported values are: '4', '8', and '12'.", "seconds"),
    ({"prompt": "p", "size": "1080x1080"},
     "Invalid value: '1080x1080'. Supported values are: '720x1280', '1280x720', '1024x1792', and '1792x1024'.",
     "size"),
    ({"prompt": "p", "model": "sora-1-turbo"},
     "Invalid value: 'sora-1-turbo'. Supported values are: 'sora-2' and 'sora-2-pro'.", "model"),
    ({"prompt": "p", "size": "1792x1024"},
     "Invalid value: '1792x1024'. Model 'sora-2' supports sizes: '720x1280', '1280x720'.", "size"),
    ({"prompt": "p", "extra_body": {"width": 1280}}, "Unknown parameter: 'width'.", "width"),
    ({"prompt": ""}, "Missing required parameter: 'prompt'.", "prompt"),
    ({"prompt": "x" * 32001}, "Invalid 'prompt': string too long. Expected a string with maximum length 32000, "
     "but got a string with length 32001 instead.", "prompt"),
])
def test_invalid_create_parameters(strict: openai.OpenAI, arguments: dict[str, Any], message: str,
                                   param: str) -> None:
    error = create_error(strict, **arguments)
    assert error == {"status": 400, "message": message, "type": "invalid_request_error", "param": param,
                     "code": error["code"]}


@pytest.mark.parametrize("size", [(1281, 720), (1280, 719), (1279, 721), (720, 1280), (640, 360)])
def test_a_reference_image_off_by_even_one_pixel_is_refused(strict: openai.OpenAI, size: tuple[int, int]) -> None:
    error = create_error(strict, prompt="p", size="1280x720", input_reference=("r.png", image_bytes(size)))
    assert error == {"status": 400, "message": INPAINT, "type": "invalid_request_error", "param": None,
                     "code": None}


@pytest.mark.parametrize(("data", "message"), [
    (image_bytes((1280, 720), "GIF"), "unsupported mimetype ('image/gif')"),
    (image_bytes((1280, 720), "BMP"), "unsupported mimetype ('image/bmp')"),
    (b"%PDF-1.4 not an image", "could not be read as an image"),
    (image_bytes((1280, 720), "PNG")[:200], "could not be read as an image"),
])
def test_unsupported_reference_files_are_refused(strict: openai.OpenAI, data: bytes, message: str) -> None:
    error = create_error(strict, prompt="p", size="1280x720", input_reference=("r.bin", data))
    assert error["status"] == 400 and error["param"] == "input_reference"
    assert message in error["message"]
    assert "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'." in error["message"]


def test_a_string_where_a_file_is_expected(strict: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        strict.post("/videos", body={"prompt": "p", "input_reference": "harbor.jpg"}, cast_to=openai.types.Video)
    assert raised.value.message.endswith(
        "Invalid type for 'input_reference': expected a file, but got a string instead.")


def test_a_reference_object_needs_exactly_one_source(strict: openai.OpenAI) -> None:
    error = create_error(strict, prompt="p", extra_body={"input_reference": {"image_url": "data:,", "file_id": "f"}})
    assert "exactly one of 'image_url' or 'file_id'" in error["message"]
    error = create_error(strict, prompt="p", extra_body={"input_reference": {"file_id": "file-missing"}})
    assert error["message"] == "No such File object: file-missing"


def test_authentication(sandbox: RunningSandbox) -> None:
    client = sdk(sandbox, max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="You didn't provide an API key"):
        client.videos.list(extra_headers={"Authorization": openai.omit})
    with run_sandbox(api_keys=frozenset({"sk-right"})) as guarded:
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key provided"):
            openai.OpenAI(api_key="sk-wrong", base_url=guarded.base_url, max_retries=0).videos.list()
        assert openai.OpenAI(api_key="sk-right", base_url=guarded.base_url).videos.list().data == []


def test_list_parameters_are_checked(strict: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="between 0 and 100"):
        strict.videos.list(limit=101)
    with pytest.raises(openai.BadRequestError, match="Supported values are: 'asc' and 'desc'"):
        strict.videos.list(order="sideways")  # type: ignore[arg-type]


def test_unknown_variant_is_refused(strict: openai.OpenAI) -> None:
    video = strict.videos.create(prompt="p")
    with pytest.raises(openai.BadRequestError,
                       match="Supported values are: 'video', 'thumbnail', and 'spritesheet'"):
        strict.videos.download_content(video.id, variant="poster")  # type: ignore[arg-type]


def test_unknown_routes_answer_404_json(strict: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        strict.get("/videos/abc/nothing", cast_to=object)


@pytest.fixture(scope="module")
def narrow() -> Iterator[openai.OpenAI]:
    """A sandbox posing as Runway through LiteLLM: 5/10 s, no /extensions, no job list, only the video."""
    with run_sandbox(profile="litellm-runway", job_seconds=0) as running:
        yield sdk(running, max_retries=0)


def test_posing_as_a_narrower_provider_it_offers_only_what_that_provider_does(narrow: openai.OpenAI) -> None:
    video = narrow.videos.create(prompt="a harbour")  # the provider's defaults
    assert (video.model, video.seconds, video.size) == ("gen4_turbo", "5", "1280x720")
    assert create_error(narrow, prompt="p", seconds="4")["message"] == (
        "Invalid value: '4'. Supported values are: '5' and '10'.")
    done = narrow.videos.poll(video.id, poll_interval_ms=10)
    assert done.status == "completed"
    assert narrow.videos.download_content(video.id, variant="video").content[4:8] == b"ftyp"
    with pytest.raises(openai.BadRequestError, match="Supported values are: 'video'"):
        narrow.videos.download_content(video.id, variant="thumbnail")
    for missing in (lambda: narrow.videos.extend(prompt="more", seconds="5", video=openai.omit,  # type: ignore[arg-type]
                                                 extra_body={"video": {"id": video.id}}),
                    lambda: narrow.videos.remix(video.id, prompt="in winter"),
                    lambda: narrow.videos.list()):
        with pytest.raises(openai.NotFoundError, match="Invalid URL"):
            missing()

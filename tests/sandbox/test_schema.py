"""Every JSON answer of the sandbox validates against OpenAI's published schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.sandbox._media import Recipe, Segment, render
from tests.conftest import image_bytes

CONTRACT = Path(__file__).parent.parent / "contract" / "openapi-videos.yaml"
SHARED = Path(__file__).parents[3] / "shared" / "openapi" / "videos.yaml"


def components() -> dict[str, Any]:
    """The excerpt's schemas (its YAML nests them under the last path it lists)."""
    document = yaml.safe_load(CONTRACT.read_text())
    return {name: schema for path in document.values() for name, schema in path.items()
            if name not in ("get", "post", "delete")}


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    root = {"components": {"schemas": components()}}
    registry: Registry[Any] = Registry().with_resource("urn:videos", DRAFT202012.create_resource(root))
    return jsonschema.Draft202012Validator({"$ref": f"urn:videos#/components/schemas/{schema_name}"},
                                           registry=registry)


ROUTES = [
    (r"^POST /v1/videos(/extensions|/edits|/[^/]+/remix)?$", "VideoResource"),
    (r"^GET /v1/videos/characters/[^/]+$", "VideoCharacterResource"),
    (r"^POST /v1/videos/characters$", "VideoCharacterResource"),
    (r"^GET /v1/videos/[^/]+$", "VideoResource"),
    (r"^GET /v1/videos$", "VideoListResource"),
    (r"^DELETE /v1/videos/[^/]+$", "DeletedVideoResource"),
]


def schema_for(method: str, path: str, status: int) -> str | None:
    if status >= 400:
        return "ErrorResponse"
    route = f"{method} {path}"
    return next((name for pattern, name in ROUTES if re.match(pattern, route)), None)


def test_the_vendored_contract_is_the_shared_one() -> None:
    if not SHARED.exists():
        pytest.skip("../shared is not beside this checkout")
    assert CONTRACT.read_text() == SHARED.read_text()


def test_every_json_answer_matches_the_published_schema() -> None:
    answers: list[tuple[str, str, int, Any]] = []

    def record(response: Any) -> None:
        if response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            answers.append((response.request.method, response.request.url.path, response.status_code,
                            response.json()))

    with run_sandbox(job_seconds=0, profile="sora-spec") as running:
        http = openai.DefaultHttpxClient(event_hooks={"response": [record]})
        with openai.OpenAI(api_key=running.api_key, base_url=running.base_url, http_client=http,
                           max_retries=0) as client:
            tour(client, running)
    checked = 0
    for method, path, status, body in answers:
        name = schema_for(method, path, status)
        if name is None:
            continue
        errors = [e.message for e in validator(name).iter_errors(body)]
        assert not errors, f"{method} {path} -> {status} does not match {name}: {errors}"
        checked += 1
    assert checked >= 14, answers


def tour(client: openai.OpenAI, running: RunningSandbox) -> None:
    """Visit every JSON endpoint, both its answers and its errors."""
    video = client.videos.create(prompt="tour", size="1280x720",
                                 input_reference=("r.png", image_bytes((1280, 720))))
    client.videos.retrieve(video.id)
    client.videos.remix(video.id, prompt="remixed")
    client.videos.edit(prompt="edited", video=openai.omit, extra_body={"video": {"id": video.id}})  # type: ignore[arg-type]
    client.videos.extend(prompt="more", seconds="4", video=openai.omit,  # type: ignore[arg-type]
                         extra_body={"video": {"id": video.id}})
    clip = render(Recipe(size=(720, 1280), segments=[Segment(seconds=3, seed="c")]), lambda key: b"").video
    character = client.videos.create_character(name="Ada", video=("ada.mp4", clip, "video/mp4"))
    assert character.id is not None
    client.videos.get_character(character.id)
    client.videos.create(prompt="with Ada", extra_body={"characters": [{"id": character.id}]})
    client.videos.list(limit=2)
    client.videos.delete(video.id)
    for failing in (
        lambda: client.videos.retrieve("video_missing"),
        lambda: client.videos.create(prompt="p", seconds="7"),  # type: ignore[arg-type]
        lambda: client.videos.create(prompt="p", size="1280x720", input_reference=("r.png", image_bytes((10, 10)))),
        lambda: client.videos.list(extra_headers={"Authorization": openai.omit}),
    ):
        with pytest.raises(openai.APIStatusError):
            failing()


def test_the_schema_check_rejects_a_malformed_video() -> None:
    malformed = {"id": "video_1", "object": "video", "status": "done", "progress": "50"}
    assert len(list(validator("VideoResource").iter_errors(malformed))) >= 3

"""The sandbox posing as Google's Interactions API for Gemini Omni, driven by google-genai's own client
(`client.aio.interactions`) over HTTP: what it makes (a clip with sound, 3-10 s more of it, the same clip refined),
what it refuses in the SDK's error envelope (a field the SDK's types do not have, a length the model does not
make, a model it does not serve), a blocked prompt as a failed interaction naming the safety block, and the
interaction's cancel and delete."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx2
import pytest
from google import genai
from google.genai import _interactions, types

from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.media import probe_video, sound_of

T = TypeVar("T")
VIDEO = {"type": "video", "aspect_ratio": "16:9", "resolution": "720p", "duration": "4s", "delivery": "inline"}


@pytest.fixture(scope="module")
def omni() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="gemini-omni", job_seconds=0.2) as pose:
        yield pose


def through_sdk(pose: RunningSandbox, use: Callable[[genai.Client], Awaitable[T]], vertex: bool = False) -> T:
    async def scenario() -> T:
        http = httpx2.AsyncClient()
        client = genai.Client(api_key="AIza-test", vertexai=vertex, http_options=types.HttpOptions(
            base_url=pose.base_url, httpx_async_client=http, retry_options=types.HttpRetryOptions(attempts=1)))
        try:
            return await use(client)
        finally:
            await client.aio.aclose()
            await http.aclose()

    return asyncio.run(scenario())


async def created(client: genai.Client, prompt: str, **fields: Any) -> Any:
    fields.setdefault("response_format", VIDEO)
    return await client.aio.interactions.create(
        model="gemini-omni-1.1-flash", input=[{"type": "text", "text": prompt}], background=True,
        response_modalities=["video"], **fields)


async def finished(client: genai.Client, interaction: Any) -> Any:
    for _ in range(200):
        interaction = await client.aio.interactions.get(interaction.id)
        if interaction.status not in ("queued", "in_progress"):
            return interaction
        await asyncio.sleep(0.05)
    raise AssertionError(f"{interaction.id} did not finish")


def video_of(interaction: Any) -> bytes:
    assert interaction.status == "completed" and interaction.output_video.mime_type == "video/mp4"
    return base64.b64decode(interaction.output_video.data)


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini-api", "vertex-express"])
def test_a_clip_is_extended_and_refined_through_previous_interactions(omni: RunningSandbox, vertex: bool) -> None:
    async def made(client: genai.Client) -> list[bytes]:
        clip = await finished(client, await created(client, "a lighthouse at dusk"))
        longer = await finished(client, await created(
            client, "the beam sweeps the sea", previous_interaction_id=clip.id,
            response_format={"type": "video", "duration": "6s"},
            generation_config={"video_config": {"task": "extend"}}))
        refined = await finished(client, await created(
            client, "make it night", previous_interaction_id=clip.id, response_format={"type": "video"},
            generation_config={"video_config": {"task": "edit"}}))
        assert longer.previous_interaction_id == clip.id
        return [video_of(clip), video_of(longer), video_of(refined)]

    clip, longer, refined = through_sdk(omni, made, vertex)
    shapes = [(probe_video(v).size, probe_video(v).seconds) for v in (clip, longer, refined)]
    assert shapes == [((1280, 720), 4), ((1280, 720), 10), ((1280, 720), 4)]
    assert all(sound_of(v) is not None for v in (clip, longer, refined))
    assert refined != clip


@pytest.mark.parametrize(("fields", "error", "said"), [
    ({"extra_body": {"colour": "red"}}, _interactions.BadRequestError, "Unknown field 'colour'"),
    ({"response_format": {**VIDEO, "duration": "7s"}}, _interactions.BadRequestError,
     "response_format.duration: '7s' is not one of 4s, 6s, 8s, 10s"),
    ({"response_format": {**VIDEO, "resolution": "480p"}}, _interactions.BadRequestError,
     "response_format.resolution: '480p' is not one of 360p, 720p, 1080p, 4k"),
    ({"previous_interaction_id": "v1_nothing"}, _interactions.NotFoundError, "Interaction v1_nothing was not found"),
], ids=["unknown-field", "duration", "resolution", "no-such-previous"])
def test_what_the_sdks_types_do_not_have_is_refused_in_its_envelope(omni: RunningSandbox, fields: dict[str, Any],
                                                                    error: type[Exception], said: str) -> None:
    async def refused(client: genai.Client) -> Any:
        with pytest.raises(error) as raised:
            await created(client, "a harbour", **fields)
        return raised.value

    refusal = through_sdk(omni, refused)
    assert refusal.body["error"]["message"].startswith(said), refusal.body
    assert refusal.body["error"]["code"] in ("invalid_request", "not_found")


def test_a_blocked_prompt_fails_naming_the_safety_block(omni: RunningSandbox) -> None:
    async def blocked(client: genai.Client) -> Any:
        return await finished(client, await created(client, "a harbour [blocked]"))

    interaction = through_sdk(omni, blocked)
    assert interaction.status == "failed" and interaction.output_video is None
    assert [error.code for error in interaction.errors] == ["safety_blocked"]


def test_an_interaction_at_work_is_cancelled_and_a_deleted_one_is_gone() -> None:
    with run_sandbox(profile="gemini-omni", job_seconds=30) as slow:
        async def cancelled(client: genai.Client) -> tuple[str, str]:
            interaction = await created(client, "a long shot")
            answer = await client.aio.interactions.cancel(interaction.id)
            await client.aio.interactions.delete(interaction.id)
            with pytest.raises(_interactions.NotFoundError):
                await client.aio.interactions.get(interaction.id)
            return interaction.status, answer.status

        assert through_sdk(slow, cancelled) == ("queued", "cancelled")

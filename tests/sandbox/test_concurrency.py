"""Fifty jobs at once, through the async SDK."""

from __future__ import annotations

import asyncio

import openai

from reelflow.sandbox import run_sandbox
from tests.media import probe_video


def test_fifty_concurrent_jobs_all_complete() -> None:
    async def scenario(base_url: str, api_key: str) -> list[openai.types.Video]:
        async with openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0) as client:
            created = await asyncio.gather(*(client.videos.create(prompt=f"shot {i}", size="1280x720")
                                             for i in range(50)))
            done = await asyncio.gather(*(client.videos.poll(v.id, poll_interval_ms=200) for v in created))
            sample = await client.videos.download_content(done[-1].id)
            assert probe_video(sample.read()).size == (1280, 720)
            return done

    with run_sandbox(job_seconds=1) as running:
        done = asyncio.run(scenario(running.base_url, running.api_key))
        assert [v.status for v in done] == ["completed"] * 50
        assert len({v.id for v in done}) == 50
        assert running.stats()["jobs"] == 50

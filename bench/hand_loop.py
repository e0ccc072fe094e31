"""The anchor of the scale and throughput benchmarks: what a user writes by hand instead of reelflow, an asyncio
loop over AsyncOpenAI. Each scene's job is created and polled by the SDK's `create_and_poll` (every second), then
its video, thumbnail and spritesheet are downloaded, each read whole and written to a file. At most CONCURRENT
scenes at once. It imports only the SDK, so that run as its own command it pays what such a script pays.
Run: OPENAI_API_KEY=... OPENAI_BASE_URL=... python -m bench.hand_loop SCENES CONCURRENT FOLDER
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Literal

import openai

VARIANTS: tuple[Literal["video", "thumbnail", "spritesheet"], ...] = ("video", "thumbnail", "spritesheet")


async def anchor_scene(client: openai.AsyncOpenAI, slots: asyncio.Semaphore, index: int, folder: Path) -> None:
    async with slots:
        video = await client.videos.create_and_poll(prompt=f"shot {index}", size="1280x720", seconds="4",
                                                    poll_interval_ms=1000)
        if video.status != "completed":
            raise RuntimeError(f"anchor job {video.id} {video.status}")
        for variant in VARIANTS:
            content = await client.videos.download_content(video.id, variant=variant)
            (folder / f"{index}.{variant}").write_bytes(content.content)


async def loop(client: openai.AsyncOpenAI, scenes: int, concurrent: int, folder: Path) -> None:
    """Every scene, at most `concurrent` at once; the SDK waits out a 429 with the provider's retry-after."""
    async with client:
        slots = asyncio.Semaphore(concurrent)
        await asyncio.gather(*(anchor_scene(client, slots, i, folder) for i in range(scenes)))


if __name__ == "__main__":
    asyncio.run(loop(openai.AsyncOpenAI(max_retries=5), int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))

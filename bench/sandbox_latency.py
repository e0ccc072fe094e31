"""Sandbox latency: a 4 s 1280x720 job with --job-seconds 0, from create to downloaded MP4; then 50 at once.

Anchor: encoding the same clip with PyAV alone, in this process (the work the sandbox cannot avoid).
Goal: create + poll + download under 1.5 s on a 2-core machine; 50 concurrent jobs all complete.
Run: .venv/bin/python -m bench.sandbox_latency
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import warnings

import openai

from reelflow.sandbox import Recipe, Segment, render, run_sandbox

warnings.filterwarnings("ignore", category=DeprecationWarning)
ROUNDS = 5
GOAL_SECONDS = 1.5


def anchor() -> float:
    started = time.perf_counter()
    render(Recipe(size=(1280, 720), segments=[Segment(seconds=4, seed="anchor")]), lambda key: b"")
    return time.perf_counter() - started


def one_job(client: openai.OpenAI, index: int) -> float:
    started = time.perf_counter()
    video = client.videos.create(prompt=f"latency {index}", size="1280x720", seconds="4")
    client.videos.poll(video.id, poll_interval_ms=10)
    client.videos.download_content(video.id).read()
    return time.perf_counter() - started


async def fifty(base_url: str, api_key: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with openai.AsyncOpenAI(api_key=api_key, base_url=base_url) as client:
        created = await asyncio.gather(*(client.videos.create(prompt=f"crowd {i}", size="1280x720")
                                         for i in range(50)))
        done = await asyncio.gather(*(client.videos.poll(v.id, poll_interval_ms=100) for v in created))
        await asyncio.gather(*(client.videos.download_content(v.id) for v in done))
    return time.perf_counter() - started, sum(v.status == "completed" for v in done)


def main() -> int:
    anchor()  # warm up codecs
    anchor_s = statistics.median(anchor() for _ in range(ROUNDS))
    with run_sandbox(job_seconds=0) as running:
        client = openai.OpenAI(api_key=running.api_key, base_url=running.base_url)
        one_job(client, -1)
        job_s = statistics.median(one_job(client, i) for i in range(ROUNDS))
        crowd_s, completed = asyncio.run(fifty(running.base_url, running.api_key))
    ok = job_s < GOAL_SECONDS and completed == 50
    print(f"anchor (PyAV encode of the clip):    {anchor_s:.3f} s")
    print(f"create -> completed -> downloaded:   {job_s:.3f} s  (ratio to anchor {job_s / anchor_s:.2f}x, "
          f"goal < {GOAL_SECONDS} s)")
    print(f"50 concurrent 4 s jobs, all fetched: {crowd_s:.2f} s, {completed}/50 completed")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Waiting: API requests per completed video for a 60 s generation, and how late completion is noticed.

Anchor: the SDK's create_and_poll at 1 s (its default interval), against its own sandbox, same run.
Goals: at most one fifth of the anchor's requests; completion noticed within max(2 s, 5 % of 60 s).
Run: .venv/bin/python -m bench.waiting   (about a minute: both wait side by side)
"""

from __future__ import annotations

import asyncio
import sys
import time
import warnings

import openai
from pydantic import SecretStr

from reelflow import Settings, load_profile
from reelflow.providers import ClipJob, Connection, open_gateway
from reelflow.sandbox import RunningSandbox, run_sandbox
from tasks.videos import WaitPolicy, wait_for

warnings.filterwarnings("ignore", category=DeprecationWarning)
GENERATION_SECONDS = 60


def late_by(running: RunningSandbox, video_id: str, noticed: float) -> float:
    return noticed - running.sandbox.state.jobs[video_id].finishes_at


def anchor(running: RunningSandbox) -> tuple[int, float]:
    with openai.OpenAI(api_key=running.api_key, base_url=running.base_url) as client:
        video = client.videos.create_and_poll(prompt="anchor", size="1280x720", poll_interval_ms=1000)
        noticed = time.time()
    return running.stats()["requests"]["GET /v1/videos/{id}"], late_by(running, video.id, noticed)


async def ours(running: RunningSandbox) -> tuple[int, float]:
    settings = Settings()
    connection = Connection(running.base_url, SecretStr(running.api_key), load_profile("sandbox"), False)
    gateway = open_gateway(connection, settings)
    try:
        job = await gateway.send(ClipJob(prompt="reelflow", model="sora-2", size="1280x720", seconds=4))
        done = await wait_for(gateway, job, WaitPolicy.of(settings))
        noticed = time.time()
    finally:
        await gateway.close()
    return running.stats()["requests"]["GET /v1/videos/{id}"], late_by(running, done.id, noticed)


async def main() -> int:
    with run_sandbox(job_seconds=GENERATION_SECONDS) as for_anchor, \
            run_sandbox(job_seconds=GENERATION_SECONDS) as for_us:
        (anchor_requests, anchor_late), (our_requests, our_late) = await asyncio.gather(
            asyncio.to_thread(anchor, for_anchor), ours(for_us))
    allowed_late = max(2.0, 0.05 * GENERATION_SECONDS)
    ok = our_requests * 5 <= anchor_requests and our_late <= allowed_late
    print(f"anchor create_and_poll @1 s: {anchor_requests} status checks, noticed {anchor_late:.2f} s after done")
    print(f"reelflow wait_for:           {our_requests} status checks, noticed {our_late:.2f} s after done")
    print(f"ratio {our_requests / anchor_requests:.3f} of the anchor's requests (goal <= 0.2), "
          f"late {our_late:.2f} s (goal <= {allowed_late:.1f} s): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

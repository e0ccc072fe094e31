"""Download memory: a 500 MB video body streamed to file:// and to S3 (moto), peak RSS growth of this process.

Served from another process (so its memory is not counted): `python -m http.server` answers the content
route with a real 12 s 1280x720 MP4 of about 500 MB (lossless noise). The download task streams it to
a local file, decodes it to verify, and publishes it to the output storage.
Anchor: the obvious SDK call, `download_content(...).content` written with `Storage.write_bytes`.
Goal: peak RSS growth at most 64 MB for reelflow's download on both storages.
Run: .venv/bin/python -m bench.download_memory   (a few minutes: it encodes the video first)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Awaitable, Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import openai
from PIL import Image
from pydantic import SecretStr

from bench._support import free_port
from reelflow import ResolvedScene, Settings, load_profile, parse_plan, validate_plan
from reelflow.providers import Connection, Gateway, JobState, open_gateway
from reelflow.storage import Storage
from tasks.videos import Delivery, Expected, download

warnings.filterwarnings("ignore", category=DeprecationWarning)
GOAL_MB = 64
SECONDS, FPS, SIZE = 12, 30, (1280, 720)
VIDEO_ID = "video_big"


def noise_video(path: Path) -> None:
    """Lossless H.264 of random pixels: about 1.4 MB a frame, real and decodable."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for index in range(SECONDS * FPS):
            noise = Image.frombytes("RGB", SIZE, os.urandom(SIZE[0] * SIZE[1] * 3))
            frame = av.VideoFrame.from_image(noise)  # type: ignore[no-untyped-call]
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@contextlib.contextmanager
def server_process(*command: str) -> Iterator[str]:
    """`python -m COMMAND... PORT` on a free loopback port, in another process (its memory is not ours)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", *command, str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def content_server(folder: Path) -> contextlib.AbstractContextManager[str]:
    """A plain file server: `/v1/videos/ID/content?variant=video` is a file path below `folder`."""
    return server_process("http.server", "--bind", "127.0.0.1", "--directory", str(folder))


def moto_process() -> contextlib.AbstractContextManager[str]:
    """moto's S3, keeping the uploaded objects in its own memory."""
    return server_process("moto.server", "-H", "127.0.0.1", "-p")


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def peak_growth_mb(work: Callable[[], Awaitable[object]]) -> float:
    """Peak resident memory during `work` above the resident memory before it (Linux's VmHWM, reset first)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    asyncio.run(work())  # type: ignore[arg-type]
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def scene() -> ResolvedScene:
    plan = parse_plan({"name": "big", "scenes": [{"id": "big", "prompt": "noise", "size": "1280x720",
                                                  "seconds": SECONDS}]})
    return validate_plan(plan, load_profile("sandbox"))[0]


def measure(base_url: str, storage: Storage) -> tuple[float, float]:
    """(reelflow's download task, the anchor) peak growth in MB, to the same storage."""
    def gateway() -> Gateway:
        return open_gateway(Connection(base_url, SecretStr("sk-bench"), load_profile("sandbox"), False), Settings())

    async def ours() -> None:
        client = gateway()
        big = scene()
        delivery = Delivery(big.id, storage, {"video.mp4": "video"}, Expected(big.dimensions, big.total_seconds))
        await download.fn(client, JobState(id=VIDEO_ID, status="completed"), delivery)
        await client.close()

    async def anchor() -> None:
        async with openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url) as client:
            content = await client.videos.download_content(VIDEO_ID, variant="video")
        storage.write_bytes(content.content, "anchor", "video.mp4")

    return peak_growth_mb(ours), peak_growth_mb(anchor)


def main() -> int:
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    with tempfile.TemporaryDirectory() as root:
        served = Path(root) / "served" / "v1" / "videos" / VIDEO_ID
        served.mkdir(parents=True)
        noise_video(served / "content")
        body_mb = (served / "content").stat().st_size / 2**20
        with content_server(Path(root) / "served") as served_at, moto_process() as s3:
            base_url = f"{served_at}/v1"
            local = measure(base_url, Storage(f"file://{root}/out"))
            bucket = Storage("s3://bench/out", {"endpoint_url": s3})
            bucket.fs.mkdir("bench")
            remote = measure(base_url, bucket)
    ok = max(local[0], remote[0]) <= GOAL_MB
    print(f"content body: {body_mb:.0f} MB")
    for name, (ours, anchor) in (("file://", local), ("s3:// (moto)", remote)):
        print(f"{name:13} reelflow download: peak RSS +{ours:.0f} MB; anchor (.content, write_bytes): "
              f"+{anchor:.0f} MB ({ours / anchor:.3f}x)")
    print(f"goal: at most +{GOAL_MB} MB on both: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

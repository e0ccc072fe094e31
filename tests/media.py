"""Checks on real media, the way a user's player would see it."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image


@dataclass
class VideoInfo:
    size: tuple[int, int]
    seconds: float
    frames: int
    codec: str


def probe_video(data: bytes) -> VideoInfo:
    """Decode every frame: size, duration and frame count as a player sees them."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        count = len(list(container.decode(video=0)))
        seconds = float((container.duration or 0) / av.time_base)
        return VideoInfo((stream.codec_context.width, stream.codec_context.height), seconds, count,
                         stream.codec_context.name)


def video_frames(data: bytes) -> list[Image.Image]:
    with av.open(io.BytesIO(data), "r") as container:
        return [frame.to_image() for frame in container.decode(video=0)]  # type: ignore[no-untyped-call]


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def clip_bytes(seconds: float, size: tuple[int, int] = (320, 240), fps: int = 8) -> bytes:
    """A real little MP4 of `seconds` (a character's source clip, say)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(  # type: ignore[no-untyped-call]
                Image.new("RGB", size, (index * 9 % 256, 90, 160)))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()

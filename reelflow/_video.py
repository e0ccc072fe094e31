"""Reading video files back: what a player would see (size, duration, frames)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class VideoInfo:
    size: tuple[int, int]
    seconds: float
    frames: int


def probe(source: bytes | Path, decode_all: bool = False) -> VideoInfo | None:
    """Size and duration of a video; with `decode_all`, every frame is decoded and counted.

    None when the data is not a decodable video (truncated, corrupt, not a video)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(handle, "r") as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream)) if decode_all else stream.frames
            seconds = float(container.duration / av.time_base) if container.duration else 0.0
            return VideoInfo((stream.codec_context.width, stream.codec_context.height), seconds, frames)
    except (av.FFmpegError, IndexError, UnicodeDecodeError):
        return None

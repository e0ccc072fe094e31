"""Checks on real media, the way a user's player would see it."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Sound:
    """A decoded sound track: stereo float samples and where they start, as a player would play them."""

    samples: np.ndarray[Any, np.dtype[np.float32]]  # (channels, n)
    rate: int
    start: float  # seconds: the first sample's presentation time

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[1] / self.rate)


def sound_of(data: bytes) -> Sound | None:
    """The video's audio stream decoded (resampled to float stereo), or None when it has none."""
    with av.open(io.BytesIO(data), "r") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=stream.codec_context.sample_rate)
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        return Sound(np.concatenate(chunks, axis=1), stream.codec_context.sample_rate, start or 0.0)


def pulse_times(sound: Sound) -> list[float]:
    """When the sandbox's 2 kHz pulses start (seconds): where the sound's first difference (which its low tone
    barely moves) rises above half the pulses' own, each pulse once; whatever gain the sound went through."""
    steps = np.abs(np.diff(sound.samples[0]))
    loud = np.flatnonzero(steps > 0.5 * float(steps.max()))
    starts = [int(loud[0])] if loud.size else []
    starts += [int(b) for a, b in itertools.pairwise(loud) if b - a > sound.rate // 10]
    return [sound.start + s / sound.rate for s in starts]


def bar_times(data: bytes) -> list[float]:
    """When the sandbox's per-second white bar is on the frame (its presentation time, seconds)."""
    times = []
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(video=0):
            luma = frame.to_ndarray(format="gray")
            if float(luma[: max(1, luma.shape[0] // 20)].mean()) > 230 and frame.pts is not None and frame.time_base:
                times.append(float(frame.pts * frame.time_base))
    return times

"""A corpus of takes, good and defective, written here with PyAV (not by the sandbox), encoded as providers
deliver (H.264 with B-frames, CABAC and deblocking; AAC stereo at 48 kHz): a textured picture with a square
moving across it and a tone, each defect put in on purpose."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from reelflow.media import Expectation
from reelflow.media.checks import Check

FPS, RATE = 24, 48_000
Planes = NDArray[np.uint8]  # yuv420p, as PyAV lays it out: (height * 3 / 2, width)


@dataclass(frozen=True)
class Defect:
    """A defect put into a take, and the check that must name it."""

    name: str
    check: Check


DEFECTS = (Defect("black", "black"), Defect("frozen", "frozen"), Defect("flash", "flash"),
           Defect("silent", "silent"), Defect("no-sound", "silent"), Defect("truncated", "duration"),
           Defect("off-reference", "reference"), Defect("clipped", "clipping"), Defect("jump", "join"))
BLACK_SECONDS = 1.5  # black from the start
FROZEN = (1.0, 3.0)  # frozen from, to (seconds)
FLASH_AT, FLASH_FRAMES = 3.0, 2  # (away from the join half-way)
TRUNCATED_SHARE = 0.5  # a truncated take is this share of the order
JOIN_SHARE = 0.5  # every take is ordered as a chain joined half-way; the "jump" take changes picture there


def picture(size: tuple[int, int], seed: int) -> Image.Image:
    """A still a take starts from: a gradient sky, a sun, a ground, fine noise (as a photograph has)."""
    width, height = size
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 220, (4, 3))
    rows = np.linspace(0, 1, height)[:, None, None]
    sky = (colours[0] * (1 - rows) + colours[1] * rows) * np.ones((1, width, 1))
    noisy = np.clip(sky + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(noisy, "RGB")
    draw = ImageDraw.Draw(image)
    ground, sun = (tuple(int(c) for c in colour) for colour in colours[2:])
    draw.rectangle((0, height * 2 // 3, width, height), fill=ground)
    left, top, side = int(rng.integers(width // 10, width // 2)), height // 8, height // 3
    draw.ellipse((left, top, left + side, top + side), fill=sun)
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def expectation(size: tuple[int, int], seconds: float) -> Expectation:
    """What every take of the corpus was ordered as: its length and size, sound, starting from picture 1, a
    chain joined half-way."""
    return Expectation(seconds=seconds, size=size, fps=FPS, sound=True, reference=png(picture(size, 1)),
                       joins=[seconds * JOIN_SHARE])


def write_take(target: Path, defect: str | None, size: tuple[int, int], seconds: float) -> None:
    """A take of `seconds` at `size` with `defect` (a name of DEFECTS) or none."""
    length = seconds * TRUNCATED_SHARE if defect == "truncated" else seconds
    start = picture(size, 2 if defect == "off-reference" else 1)
    sound = None if defect == "no-sound" else _sound(length, defect)
    with av.open(str(target), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "20"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        voice = None if sound is None else _Voice(container, sound)
        for index, planes in enumerate(_frames(start, round(length * FPS), defect)):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
            if voice is not None:  # (interleaved, as a delivered file is)
                voice.up_to((index + 1) * RATE // FPS)
        container.mux(stream.encode(None))
        if voice is not None:
            voice.up_to(None)


def _planes(image: Image.Image) -> Planes:
    planes: Planes = av.VideoFrame.from_image(image).reformat(format="yuv420p").to_ndarray()  # type: ignore[no-untyped-call]
    return planes


def _frames(start: Image.Image, count: int, defect: str | None) -> Iterator[Planes]:
    """The still with a bright square moving across it: frame 0 the still itself (a "jump" take changes to
    another still half-way)."""
    base = _planes(start)
    width, height = start.size
    jump = round(count * JOIN_SHARE) if defect == "jump" else None
    side = max(8, height // 6) // 2 * 2
    black = np.full_like(base, 128)
    black[:height] = 16
    for index in range(count):
        at = index / FPS
        if defect == "black" and at < BLACK_SECONDS:
            yield black
            continue
        if index == jump:
            base = _planes(picture(start.size, 3))
        moment = min(index, round(FROZEN[0] * FPS)) if defect == "frozen" and at < FROZEN[1] else index
        frame = base.copy()
        if moment:
            x = (width - side) * moment // max(1, count - 1) // 2 * 2
            y = (height - side) * moment // max(1, count - 1) // 2 * 2
            frame[y:y + side, x:x + side] = 235
        if defect == "flash" and round(FLASH_AT * FPS) <= index < round(FLASH_AT * FPS) + FLASH_FRAMES:
            frame[:height] = 235
        yield frame


def _sound(seconds: float, defect: str | None) -> NDArray[np.float32]:
    """A tone under a slow swell (a 330 Hz note and its third harmonic), stereo: silence, or clipped."""
    t = np.arange(round(seconds * RATE)) / RATE
    mono = (0.2 + 0.05 * np.sin(2 * np.pi * 0.5 * t)) * np.sin(2 * np.pi * 330 * t) + 0.04 * np.sin(2 * np.pi * 990 * t)
    if defect == "silent":
        mono = np.zeros_like(t)
    if defect == "clipped":
        mono = np.clip(mono * 8, -1.0, 1.0)
    return np.stack([mono, 0.9 * mono]).astype(np.float32)


class _Voice:
    """Stereo float samples written as AAC, as far as asked each time."""

    def __init__(self, container: av.container.OutputContainer, sound: NDArray[np.float32]) -> None:
        self.container, self.sound, self.written = container, sound, 0
        self.stream = container.add_stream("aac", rate=RATE, layout="stereo")

    def up_to(self, end: int | None) -> None:
        """Whole AAC frames up to sample `end`; None: the rest, and the encoder flushed."""
        size = self.stream.codec_context.frame_size or 1024
        last = self.sound.shape[1] if end is None else min(end, self.sound.shape[1])
        while self.written + (1 if end is None else size) <= last:
            chunk = np.ascontiguousarray(self.sound[:, self.written:self.written + size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, self.written, Fraction(1, RATE)
            self.container.mux(self.stream.encode(frame))
            self.written += chunk.shape[1]
        if end is None:
            self.container.mux(self.stream.encode(None))


def corpus(folder: Path, size: tuple[int, int], seconds: float) -> dict[str, Path]:
    """The good take ("good") and one take of each defect, written into `folder`, by name."""
    takes: dict[str, Path] = {}
    for name in ("good", *(defect.name for defect in DEFECTS)):
        takes[name] = folder / f"{name}-{size[1]}p.mp4"
        write_take(takes[name], None if name == "good" else name, size, seconds)
    return takes

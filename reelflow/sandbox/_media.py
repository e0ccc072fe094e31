"""Real media for sandbox jobs, as providers make it: H.264 MP4 at 24 fps with an AAC stereo 48 kHz sound
track (unless the model is silent or the request switched sound off), a WebP thumbnail and a JPEG spritesheet.

A job's video is rendered from its *recipe* (the segments it is made of), so an extension re-renders its
source's segments followed by the new one: the result is the source video followed by the new segment,
frame for frame and sample for sample.

What it shows is checkable: each segment a backdrop (its reference image, or shapes in colours drawn from its
prompt) with a moving square; at every whole second but the first, a white bar at the top of the frame and,
in the sound, a 2 kHz pulse of 10 ms over the segment's own tone (its pitch drawn from its prompt), so that
sync and continuity can be measured after any join. A job may be made *defective* on purpose (its recipe's
`defect`), as a provider's take sometimes is though it reports success: black at the start, a frozen stretch, a
white flash, a silent sound track, a clip shorter than ordered, a first frame unlike its reference image.
Frames are drawn in YUV, the way the encoder takes them
(the backdrop is converted once, only the square and the bar are painted per frame): rendering stays cheap."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps
from pydantic import BaseModel, Field

from ..media.video import SPRITE_TILES, spritesheet_jpeg, thumbnail_webp, tile_every

FPS = 24
SAMPLE_RATE = 48_000
PULSE_HZ, PULSE_SECONDS, PULSE_LEVEL, TONE_LEVEL = 2000.0, 0.010, 0.5, 0.1

Defect = Literal["black", "frozen", "silent", "short", "off-reference", "flash"]
DEFECTS: tuple[Defect, ...] = ("black", "frozen", "silent", "short", "off-reference", "flash")
BLACK_FRAMES = FPS * 3 // 2  # black: the first 1.5 s
FROZEN_FROM, FROZEN_FRAMES = FPS, 2 * FPS  # frozen: from 1 s on, 2 s of one picture
SHORT_FRAMES = FPS * 3 // 2  # short: 1.5 s less than ordered
FLASH_FRAMES = 2  # flash: two full-white frames in the middle

BlobLoader = Callable[[str], bytes]
Planes = NDArray[np.uint8]  # a yuv420p frame as PyAV lays it out: (height * 3 / 2, width)


class Segment(BaseModel):
    """A stretch of generated video: its own look, length and optional first and last frames."""

    kind: Literal["generated", "upload"] = "generated"
    seconds: int = Field(ge=1)
    seed: str = Field(description="Prompt-derived text that fixes colours, motion and pitch.")
    reference: str | None = Field(default=None, description="Blob key of the first-frame image.")
    last_reference: str | None = Field(default=None, description="Blob key of the image its last frame is.")
    tint: list[str] = Field(default_factory=list, description="Edit/remix prompts, each a colour wash.")
    seeded: bool = Field(default=False, description="Made from a seed the request gave: the same request makes "
                         "the same video again.")


class Recipe(BaseModel):
    """Everything needed to render a job's media again, byte for byte."""

    size: tuple[int, int]
    segments: list[Segment]
    audio: bool = Field(default=True, description="Whether the video has a sound track.")
    defect: Defect | None = Field(default=None, description="What is wrong with the video made, on purpose.")

    @property
    def seconds(self) -> int:
        """The length ordered (what the job says of itself, even when it is `short`)."""
        return sum(s.seconds for s in self.segments)

    @property
    def frame_count(self) -> int:
        """The frames actually rendered."""
        return self.seconds * FPS - (min(SHORT_FRAMES, self.seconds * FPS - FPS) if self.defect == "short" else 0)


def tinted(recipe: Recipe, prompt: str) -> Recipe:
    """The recipe edited as `prompt` says: each segment washed in its colour (an edit, a remix, a refinement)."""
    segments = [s.model_copy(update={"tint": [*s.tint, prompt]}) for s in recipe.segments]
    return recipe.model_copy(update={"segments": segments})


def _colour(text: str, salt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return digest[0], digest[1], digest[2]


def tone_hz(seed: str) -> float:
    """The segment's own pitch: 220 to 660 Hz, from its prompt."""
    return 220.0 + int.from_bytes(hashlib.sha256(f"tone:{seed}".encode()).digest()[:2], "big") % 440


def _image(key: str, size: tuple[int, int], load: BlobLoader) -> Image.Image:
    """A stored image as a frame: exactly `size` (fitted like a provider would, when it is not already)."""
    image = Image.open(io.BytesIO(load(key))).convert("RGB")
    return image if image.size == size else ImageOps.fit(image, size)


def _backdrop(segment: Segment, size: tuple[int, int], load: BlobLoader) -> Image.Image:
    if segment.reference is not None:
        return _image(segment.reference, size, load)
    width, height = size
    image = Image.new("RGB", size, _colour(segment.seed, "bg"))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=_colour(segment.seed, "ground"))
    draw.ellipse((width // 8, height // 8, width // 3, height // 2), fill=_colour(segment.seed, "sun"))
    return image


def _washed(image: Image.Image, tints: list[str]) -> Image.Image:
    for prompt in tints:
        image = Image.blend(image, Image.new("RGB", image.size, _colour(prompt, "tint")), 0.25)
    return image


def _planes(image: Image.Image) -> Planes:
    planes: Planes = av.VideoFrame.from_image(image).reformat(format="yuv420p").to_ndarray()  # type: ignore[no-untyped-call]
    return planes


def _paint(planes: Planes, box: tuple[int, int, int, int], colour: Planes) -> None:
    """Fill `box` (left, top, right, bottom; even numbers) of a yuv420p frame with a colour's Y, U, V."""
    height, width = planes.shape[0] * 2 // 3, planes.shape[1]
    left, top, right, bottom = box
    planes[top:bottom, left:right] = colour[0]
    for index, offset in enumerate((height, height + height // 4)):
        chroma = planes[offset:offset + height // 4].reshape(height // 2, width // 2)
        chroma[top // 2:bottom // 2, left // 2:right // 2] = colour[1 + index]


def _yuv(rgb: tuple[int, int, int]) -> Planes:
    """A colour's (Y, U, V), as the encoder's conversion makes them."""
    planes = _planes(Image.new("RGB", (2, 2), rgb))
    return np.array([planes[0, 0], planes[2, 0], planes[2, 1]], dtype=np.uint8)


def _even(value: int) -> int:
    return value - value % 2


def _generated_frames(segment: Segment, size: tuple[int, int], load: BlobLoader) -> Iterator[Planes]:
    """Frame 0 is the backdrop itself (the reference image, untouched); then a square moves; the last frame is
    the segment's last image, when it has one."""
    base = _planes(_washed(_backdrop(segment, size, load), segment.tint))
    width, height = size
    side = _even(max(8, min(size) // 8))
    marker = _yuv(_washed(Image.new("RGB", (1, 1), _colour(segment.seed, "marker")), segment.tint).getpixel(
        (0, 0)))  # type: ignore[arg-type]  # an RGB image's pixel is a tuple of three
    top = _even(height // 2 - side // 2)
    count = segment.seconds * FPS
    for index in range(count):
        if index == count - 1 and segment.last_reference is not None:
            yield _planes(_washed(_image(segment.last_reference, size, load), segment.tint))
            return
        frame = base.copy()
        if index:
            x = _even((width - side) * index // max(1, count - 1))
            _paint(frame, (x, top, x + side, top + side), marker)
        yield frame


def _uploaded_frames(segment: Segment, size: tuple[int, int], load: BlobLoader) -> Iterator[Planes]:
    """Frames of an uploaded clip, resampled to FPS and to `size`."""
    assert segment.reference is not None
    with av.open(io.BytesIO(load(segment.reference)), "r") as container:
        decoded = [f.to_image() for f in container.decode(video=0)]  # type: ignore[no-untyped-call]
    wanted = segment.seconds * FPS
    for index in range(wanted):
        source = decoded[min(len(decoded) - 1, index * len(decoded) // wanted)]
        yield _planes(_washed(source if source.size == size else ImageOps.fit(source, size), segment.tint))


def frames(recipe: Recipe, load: BlobLoader) -> Iterator[Planes]:
    """Every frame of the video; at each whole second but the first, a white bar across the top; its defect, if
    it has one."""
    width, height = recipe.size
    bar, white = (0, 0, width, _even(max(2, height // 16))), _yuv((255, 255, 255))
    index, first_segment = 0, recipe.segments[0].seconds * FPS
    held: Planes | None = None
    for segment in recipe.segments:
        source = _uploaded_frames if segment.kind == "upload" else _generated_frames
        for planes in source(segment, recipe.size, load):
            if index == recipe.frame_count:
                return
            if index and index % FPS == 0:
                _paint(planes, bar, white)
            if recipe.defect == "frozen" and FROZEN_FROM <= index < FROZEN_FROM + FROZEN_FRAMES:
                held = planes if held is None else held
                planes = held
            elif recipe.defect is not None:
                _spoil(planes, recipe.defect, _Where(index, recipe.frame_count, index < first_segment))
            yield planes
            index += 1


@dataclass(frozen=True)
class _Where:
    """Where a frame is: its index, of how many, and whether it is in the first segment (its reference's)."""

    index: int
    count: int
    in_first_segment: bool


def _spoil(planes: Planes, defect: Defect, where: _Where) -> None:
    """A frame as a defective video has it: black at the start, a white flash mid-way, or (off its reference) the
    first segment's picture in negative."""
    middle = where.count // 2 + FPS // 4  # (clear of the bar of a whole second)
    if defect == "black" and where.index < BLACK_FRAMES:
        planes[:] = _full(planes, (0, 0, 0))
    elif defect == "flash" and middle <= where.index < middle + FLASH_FRAMES:
        planes[:] = _full(planes, (255, 255, 255))
    elif defect == "off-reference" and where.in_first_segment:
        np.subtract(255, planes, out=planes)


def _full(planes: Planes, rgb: tuple[int, int, int]) -> Planes:
    """A yuv420p frame of `planes`' size all of one colour."""
    height = planes.shape[0] * 2 // 3
    colour, full = _yuv(rgb), np.empty_like(planes)
    full[:height], full[height:height + height // 4], full[height + height // 4:] = colour
    return full


def sound(recipe: Recipe) -> NDArray[np.float32]:
    """The whole sound track, stereo (2, samples): each segment's tone, a pulse at each whole second but 0 (as
    long as the picture; all zeros when the video is to be `silent`)."""
    track = np.concatenate([_segment_sound(segment, offset) for segment, offset in _offsets(recipe)], axis=1)
    track = track[:, :recipe.frame_count * SAMPLE_RATE // FPS]
    return np.zeros_like(track) if recipe.defect == "silent" else track


def _offsets(recipe: Recipe) -> Iterator[tuple[Segment, int]]:
    start = 0
    for segment in recipe.segments:
        yield segment, start
        start += segment.seconds


def _segment_sound(segment: Segment, start_second: int) -> NDArray[np.float32]:
    samples = segment.seconds * SAMPLE_RATE
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    mono = TONE_LEVEL * np.sin(2 * np.pi * tone_hz(segment.seed) * t)
    width = int(PULSE_SECONDS * SAMPLE_RATE)
    window = np.sin(np.pi * np.arange(width) / width) ** 2
    burst = PULSE_LEVEL * window * np.sin(2 * np.pi * PULSE_HZ * np.arange(width) / SAMPLE_RATE)
    for second in range(segment.seconds):
        if start_second + second:
            mono[second * SAMPLE_RATE:second * SAMPLE_RATE + width] += burst
    return np.stack([mono, 0.8 * mono]).astype(np.float32)


class Rendered(BaseModel):
    video: bytes
    thumbnail: bytes
    spritesheet: bytes


def render(recipe: Recipe, load: BlobLoader) -> Rendered:
    """Encode the recipe as MP4; the thumbnail and spritesheet come from the same frames."""
    every = tile_every(recipe.frame_count)
    tiles: list[Image.Image] = []

    def keep(index: int, planes: Planes) -> None:
        if index % every == 0 and len(tiles) < SPRITE_TILES:
            tiles.append(av.VideoFrame.from_ndarray(planes, format="yuv420p").to_image())  # type: ignore[no-untyped-call]

    # faststart (the index before the media, as video services serve MP4) needs a real file.
    with tempfile.TemporaryDirectory() as workdir:
        target = Path(workdir) / "video.mp4"
        encode_mp4(frames(recipe, load), recipe.size, target, sound(recipe) if recipe.audio else None, keep)
        video = target.read_bytes()
    return Rendered(video=video, thumbnail=thumbnail_webp(tiles[0]), spritesheet=spritesheet_jpeg(tiles))


def encode_mp4(video: Iterator[Planes], size: tuple[int, int], target: Path, audio: NDArray[np.float32] | None,
               on_frame: Callable[[int, Planes], None] | None = None) -> None:
    """Write yuv420p frames at FPS as H.264, and `audio` (stereo float samples at SAMPLE_RATE) as AAC, in one
    MP4, interleaved second by second."""
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        picture = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "18"})
        picture.width, picture.height = size
        picture.pix_fmt = "yuv420p"
        picture.time_base = Fraction(1, FPS)
        voice = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo") if audio is not None else None
        written = 0
        for index, planes in enumerate(video):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            container.mux(picture.encode(frame))
            if on_frame is not None:
                on_frame(index, planes)
            if voice is not None and audio is not None and (index + 1) % FPS == 0:
                written = _encode_sound(container, voice, audio, written, (index + 1) * SAMPLE_RATE // FPS)
        container.mux(picture.encode(None))
        if voice is not None and audio is not None:
            _encode_sound(container, voice, audio, written, audio.shape[1])
            container.mux(voice.encode(None))


def _encode_sound(container: av.container.OutputContainer, stream: av.AudioStream, audio: NDArray[np.float32],
                  start: int, end: int) -> int:
    """Samples [start, end) of `audio` as AAC frames; returns where it stopped (a whole number of frames)."""
    size = stream.codec_context.frame_size or 1024
    while start + size <= end or (end == audio.shape[1] and start < end):
        chunk = np.ascontiguousarray(audio[:, start:start + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        container.mux(stream.encode(frame))
        start += chunk.shape[1]
    return start

"""Real media for sandbox jobs: H.264 MP4, WebP thumbnail and JPEG spritesheet.

A job's video is rendered from its *recipe* (the segments it is made of), so an
extension re-renders its source's segments followed by the new one: the result is
the source video followed by the new segment, frame for frame.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
from PIL import Image, ImageDraw, ImageOps
from pydantic import BaseModel, Field

from ..media.video import SPRITE_TILES, spritesheet_jpeg, thumbnail_webp, tile_every

FPS = 8

BlobLoader = Callable[[str], bytes]


class Segment(BaseModel):
    """A stretch of generated video: its own look, length and optional first frame."""

    kind: Literal["generated", "upload"] = "generated"
    seconds: int = Field(ge=1)
    seed: str = Field(description="Prompt-derived text that fixes colours and motion.")
    reference: str | None = Field(default=None, description="Blob key of the first-frame image.")
    last_reference: str | None = Field(default=None, description="Blob key of the image its last frame is.")
    tint: list[str] = Field(default_factory=list, description="Edit/remix prompts, each a colour wash.")


class Recipe(BaseModel):
    """Everything needed to render a job's media again, byte for byte."""

    size: tuple[int, int]
    segments: list[Segment]

    @property
    def seconds(self) -> int:
        return sum(s.seconds for s in self.segments)


def _colour(text: str, salt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return digest[0], digest[1], digest[2]


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


def _generated_frames(segment: Segment, size: tuple[int, int], load: BlobLoader) -> Iterator[Image.Image]:
    """Frame 0 is the backdrop itself (the reference image, untouched); then a square moves; the last frame is
    the segment's last image, when it has one."""
    base = _backdrop(segment, size, load)
    width, height = size
    side = max(8, min(size) // 8)
    marker = _colour(segment.seed, "marker")
    count = segment.seconds * FPS
    for index in range(count):
        if index == count - 1 and segment.last_reference is not None:
            yield _image(segment.last_reference, size, load)
            return
        frame = base.copy()
        if index:
            x = (width - side) * index // max(1, count - 1)
            ImageDraw.Draw(frame).rectangle((x, height // 2 - side // 2, x + side, height // 2 + side // 2),
                                            fill=marker)
        yield frame


def _uploaded_frames(segment: Segment, size: tuple[int, int], load: BlobLoader) -> Iterator[Image.Image]:
    """Frames of an uploaded clip, resampled to FPS and to `size`."""
    assert segment.reference is not None
    with av.open(io.BytesIO(load(segment.reference)), "r") as container:
        decoded = [f.to_image() for f in container.decode(video=0)]  # type: ignore[no-untyped-call]
    wanted = segment.seconds * FPS
    for index in range(wanted):
        source = decoded[min(len(decoded) - 1, index * len(decoded) // wanted)]
        yield source if source.size == size else ImageOps.fit(source, size)


def frames(recipe: Recipe, load: BlobLoader) -> Iterator[Image.Image]:
    for segment in recipe.segments:
        source = _uploaded_frames if segment.kind == "upload" else _generated_frames
        for frame in source(segment, recipe.size, load):
            yield _washed(frame, segment.tint) if segment.tint else frame


class Rendered(BaseModel):
    video: bytes
    thumbnail: bytes
    spritesheet: bytes


def render(recipe: Recipe, load: BlobLoader) -> Rendered:
    """Encode the recipe as MP4; the thumbnail and spritesheet come from the same frames."""
    every = tile_every(recipe.seconds * FPS)
    tiles: list[Image.Image] = []

    def keep(index: int, image: Image.Image) -> None:
        if index % every == 0 and len(tiles) < SPRITE_TILES:
            tiles.append(image)

    # faststart (the index before the media, as video services serve MP4) needs a real file.
    with tempfile.TemporaryDirectory() as workdir:
        target = Path(workdir) / "video.mp4"
        encode_mp4(frames(recipe, load), recipe.size, target, on_frame=keep)
        video = target.read_bytes()
    return Rendered(video=video, thumbnail=thumbnail_webp(tiles[0]), spritesheet=spritesheet_jpeg(tiles))


def encode_mp4(
    images: Iterable[Image.Image],
    size: tuple[int, int],
    target: Path,
    on_frame: Callable[[int, Image.Image], None] | None = None,
) -> None:
    """Write `images` as an H.264 MP4 at FPS frames per second."""
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "18"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            frame.pts = index
            container.mux(stream.encode(frame))
            if on_frame is not None:
                on_frame(index, image)
        container.mux(stream.encode(None))

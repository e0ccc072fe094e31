"""Video files read and summarised here: what a player would see (size, duration, frames), a clip's last
frame, and the thumbnail and spritesheet a provider would serve (made here when it serves none)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
from PIL import Image

SPRITE_TILES = 16
_TILE_WIDTH = 256
_SPRITE_COLUMNS = 4


@dataclass(frozen=True)
class VideoInfo:
    size: tuple[int, int]
    seconds: float
    frames: int
    rate: float  # frames per second
    audio: bool = False  # whether it has a sound track


def probe(source: bytes | Path, read_all: bool = False) -> VideoInfo | None:
    """Size and duration of a video; with `read_all`, every packet of the picture and of the sound is read and
    the picture's frames counted (a cut-off body has fewer), its first frame decoded.

    None when the data is not a decodable video (truncated, corrupt, not a video)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(handle, "r") as container:
            stream = container.streams.video[0]
            frames = _read_frames(container) if read_all else stream.frames
            seconds = float(container.duration / av.time_base) if container.duration else 0.0
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            return VideoInfo((stream.codec_context.width, stream.codec_context.height), seconds, frames, rate,
                             bool(container.streams.audio))
    except (av.FFmpegError, IndexError, UnicodeDecodeError):
        return None


def _read_frames(container: av.container.InputContainer) -> int:
    """Read every packet of the picture and the sound (a cut-off body fails or ends early here), decoding the
    picture only until its first frame shows (decoding all of it costs twenty times the reading); the
    picture's frames, 0 when none decodes."""
    frames, shown = 0, False
    for packet in container.demux(*container.streams.video[:1], *container.streams.audio[:1]):
        if packet.stream.type == "video" and packet.size:
            frames += 1
            shown = shown or bool(packet.decode())
    if not shown and frames:
        shown = bool(container.streams.video[0].codec_context.decode(None))  # the decoder holds it back
    return frames if shown else 0


def sound_in(source: BinaryIO) -> bool:
    """Whether a media file (audio or video) has a sound track it can be decoded from."""
    try:
        with av.open(source, "r") as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, UnicodeDecodeError):
        return False


def last_frame(source: Path) -> Image.Image:
    """The clip's last frame, decoding only from the last keyframe on."""
    with av.open(str(source), "r") as container:
        stream = container.streams.video[0]
        if container.duration:
            container.seek(container.duration, backward=True, any_frame=False)
        final = None
        for final in container.decode(stream):  # noqa: B007  # the loop keeps the last one
            pass
        if final is None:
            raise ValueError(f"{source.name} has no frames")
        return final.to_image()  # type: ignore[no-untyped-call,no-any-return]


def tile_every(frames: int) -> int:
    """Which frames make the spritesheet: every this many, from the first, up to SPRITE_TILES of them."""
    return max(1, frames // SPRITE_TILES)


def sprite_tiles(video: Path) -> list[Image.Image]:
    """Up to SPRITE_TILES frames evenly spread over the video, the first frame first (decoded once, and only
    as far as the last tile)."""
    with av.open(str(video), "r") as container:
        stream = container.streams.video[0]
        counted = stream.frames or round(float((container.duration or 0) / av.time_base * (stream.average_rate or 0)))
        every = tile_every(counted)
        tiles: list[Image.Image] = []
        for index, frame in enumerate(container.decode(stream)):
            if index % every == 0:
                tiles.append(frame.to_image())  # type: ignore[no-untyped-call]
                if len(tiles) == SPRITE_TILES:
                    break
        return tiles


def thumbnail_webp(first: Image.Image) -> bytes:
    """The video's first frame at full size, as the provider's `thumbnail` variant (WebP)."""
    out = io.BytesIO()
    first.save(out, "WEBP", quality=80, method=0)
    return out.getvalue()


def spritesheet_jpeg(tiles: Iterable[Image.Image]) -> bytes:
    """Frames in rows of four, each 256 px wide, as the provider's `spritesheet` variant (JPEG)."""
    images = list(tiles)
    width, height = images[0].size
    tile = (_TILE_WIDTH, max(1, height * _TILE_WIDTH // width))
    rows = -(-len(images) // _SPRITE_COLUMNS)
    sheet = Image.new("RGB", (tile[0] * _SPRITE_COLUMNS, tile[1] * rows))
    for index, image in enumerate(images):
        position = (index % _SPRITE_COLUMNS * tile[0], index // _SPRITE_COLUMNS * tile[1])
        sheet.paste(image.resize(tile, Image.Resampling.BILINEAR), position)
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=80)
    return out.getvalue()

"""Reference-image tasks: check dimensions from the header, then make the image exactly the video size."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow._gateway import Reference
from reelflow._images import EXTENSIONS, ImageInfo, OutputFormat, Prepared, prepare, read_info
from reelflow._plan import ResolvedScene
from reelflow._storage import read_source

from ._retry import DEFAULT_RETRIES, transient_only

_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class SourceImage:
    url: str
    data: bytes
    info: ImageInfo


@task(name="validate-dimensions", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def validate_dimensions(url: str, name: str) -> SourceImage:
    """Read the reference image and its header (dimensions, format, mode) without decoding pixels."""
    data = await asyncio.to_thread(read_source, url, name)
    return SourceImage(url, data, read_info(data, name))


def usable_as_is(source: SourceImage, scene: ResolvedScene, accepted: list[str]) -> bool:
    """An image already exactly the size, in an accepted format, uncropped and plain RGB goes unchanged."""
    info = source.info
    return ((info.width, info.height) == scene.dimensions and info.format in accepted and scene.crop is None
            and info.mode == "RGB" and info.frames == 1)


@task(name="transform", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def transform(source: SourceImage, scene: ResolvedScene, output: OutputFormat) -> Prepared:
    """Orient, convert, crop and fit the image to exactly the scene's size (in a worker thread)."""
    return await asyncio.to_thread(
        prepare, source.data, scene.dimensions, fit=scene.fit, pad_color=scene.pad_color, crop=scene.crop,
        output=output, name=f"scene {scene.id!r}: image {source.url}",
    )


def as_reference(prepared: Prepared) -> Reference:
    return Reference(f"reference.{prepared.extension}", prepared.data, _MEDIA_TYPES[prepared.format])


def unchanged_reference(source: SourceImage) -> Reference:
    """The user's file as it is (`usable_as_is` said so)."""
    fmt = source.info.format or "JPEG"
    return Reference(f"reference.{EXTENSIONS[fmt]}", source.data, _MEDIA_TYPES[fmt])

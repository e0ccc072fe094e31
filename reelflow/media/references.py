"""A scene's reference image as it will be sent: the user's file when it already fits, else prepared."""

from __future__ import annotations

from dataclasses import dataclass

from ..plans import ResolvedScene
from ..providers._gateway import Reference
from ..storage import read_source
from .images import EXTENSIONS, ImageInfo, OutputFormat, Prepared, prepare, read_info

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class SourceImage:
    url: str
    data: bytes
    info: ImageInfo


def read_reference(url: str, name: str) -> SourceImage:
    """The image's bytes and header (dimensions, format, mode); pixels are not decoded."""
    data = read_source(url, name)
    return SourceImage(url, data, read_info(data, name))


def usable_as_is(source: SourceImage, scene: ResolvedScene, accepted: list[str]) -> bool:
    """An image already exactly the size, in an accepted format, uncropped and plain RGB goes unchanged."""
    info = source.info
    return ((info.width, info.height) == scene.dimensions and info.format in accepted and scene.crop is None
            and info.mode == "RGB" and info.frames == 1)


def fitted(source: SourceImage, scene: ResolvedScene, output: OutputFormat) -> Prepared:
    """Orient, convert, crop and fit the image to exactly the scene's size."""
    return prepare(source.data, scene.dimensions, fit=scene.fit, pad_color=scene.pad_color, crop=scene.crop,
                   output=output, name=f"scene {scene.id!r}: image {source.url}")


def as_reference(prepared: Prepared) -> Reference:
    return Reference(f"reference.{prepared.extension}", prepared.data, MEDIA_TYPES[prepared.format])


def unchanged_reference(source: SourceImage) -> Reference:
    """The user's file as it is (`usable_as_is` said so)."""
    fmt = source.info.format or "JPEG"
    return Reference(f"reference.{EXTENSIONS[fmt]}", source.data, MEDIA_TYPES[fmt])

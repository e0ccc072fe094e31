"""A scene's reference image as it will be sent: the user's file when it already fits, else prepared."""

from __future__ import annotations

from dataclasses import dataclass

from ..plans import ResolvedScene
from ..providers import Reference
from ..storage import read_source
from .images import EXTENSIONS, ImageInfo, OutputFormat, Prepared, prepare, read_whole

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class SourceImage:
    url: str
    data: bytes
    info: ImageInfo


def read_reference(url: str, name: str) -> SourceImage:
    """The image's bytes and header (dimensions, format, mode), once all of its pixel data decodes."""
    data = read_source(url, name)
    return SourceImage(url, data, read_whole(data, name))


@dataclass(frozen=True)
class Role:
    """Which image of a scene: its first frame (`image`, cropped as the scene says) or the frame it lands on
    (`last_image`, uncropped); `stem` names its file in the scene's folder."""

    stem: str
    cropped: bool


FIRST, LAST = Role("reference", cropped=True), Role("last-frame", cropped=False)


@dataclass(frozen=True)
class SceneImages:
    """The images a scene starts from and lands on, and its subjects, as the user gave them (read, not yet
    prepared)."""

    first: SourceImage | None = None
    last: SourceImage | None = None
    subjects: tuple[SourceImage, ...] = ()

    def of(self, role: Role) -> SourceImage | None:
        return self.first if role is FIRST else self.last

    @classmethod
    def read(cls, scene: ResolvedScene) -> SceneImages:
        """The scene's images, read from where the plan says (outside a run: a run reads them in its tasks)."""
        where = f"scene {scene.id!r}"
        return cls(first=read_reference(scene.image, f"{where}: image") if scene.image else None,
                   last=read_reference(scene.last_image, f"{where}: last_image") if scene.last_image else None,
                   subjects=tuple(read_reference(url, f"{where}: subjects[{n}]")
                                  for n, url in enumerate(scene.subjects)))
SUBJECT = Role("subject", cropped=False)


def usable_as_is(source: SourceImage, scene: ResolvedScene, accepted: list[str], role: Role = FIRST) -> bool:
    """An image already exactly the size, in an accepted format, uncropped and plain RGB goes unchanged."""
    info = source.info
    return ((info.width, info.height) == scene.dimensions and info.format in accepted
            and (scene.crop is None or not role.cropped) and info.mode == "RGB" and info.frames == 1)


def fitted(source: SourceImage, scene: ResolvedScene, output: OutputFormat, role: Role = FIRST) -> Prepared:
    """Orient, convert, crop and fit the image to exactly the scene's size."""
    return prepare(source.data, scene.dimensions, fit=scene.fit, pad_color=scene.pad_color,
                   crop=scene.crop if role.cropped else None, output=output, name=f"scene {scene.id!r}: image "
                   f"{source.url}")


def subject_reference(source: SourceImage, accepted: list[str], output: OutputFormat) -> Reference:
    """A subject image as it is sent: the file itself in an accepted format, else re-encoded at its own size."""
    if source.info.format in accepted and source.info.frames == 1:
        return unchanged_reference(source, SUBJECT)
    image = prepare(source.data, (source.info.width, source.info.height), fit="stretch", output=output,
                    name=source.url)
    return as_reference(image, SUBJECT)


def as_reference(prepared: Prepared, role: Role = FIRST) -> Reference:
    return Reference(f"{role.stem}.{prepared.extension}", prepared.data, MEDIA_TYPES[prepared.format])


def unchanged_reference(source: SourceImage, role: Role = FIRST) -> Reference:
    """The user's file as it is (`usable_as_is` said so)."""
    fmt = source.info.format or "JPEG"
    return Reference(f"{role.stem}.{EXTENSIONS[fmt]}", source.data, MEDIA_TYPES[fmt])

"""Reference images made exactly the requested size: the API rejects a one-pixel mismatch.

Everything here is pure (bytes in, bytes out) so tasks, the batch flow and benchmarks share it.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from typing import IO, Literal

from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ImageError

Fit = Literal["cover", "pad", "stretch"]
OutputFormat = Literal["JPEG", "PNG", "WEBP"]
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str | None
    mode: str
    frames: int


class Crop(BaseModel):
    """A region of the reference image, as fractions of its width and height, applied before fitting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: float = Field(default=0.0, ge=0, le=1, description="Left edge, 0-1 of the width.")
    top: float = Field(default=0.0, ge=0, le=1, description="Top edge, 0-1 of the height.")
    right: float = Field(default=1.0, ge=0, le=1, description="Right edge, 0-1 of the width.")
    bottom: float = Field(default=1.0, ge=0, le=1, description="Bottom edge, 0-1 of the height.")

    @model_validator(mode="after")
    def _ordered(self) -> Crop:
        if self.left >= self.right or self.top >= self.bottom:
            raise ValueError("crop needs left < right and top < bottom")
        return self


@dataclass(frozen=True)
class Prepared:
    data: bytes
    format: OutputFormat
    size: tuple[int, int]
    warnings: list[str] = field(default_factory=list)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _open(source: bytes | IO[bytes], name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{name}: not an image file Pillow can read") from e
    except OSError as e:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({e})") from e


def read_whole(data: bytes, name: str = "image") -> ImageInfo:
    """The header, and every byte of the pixel data decoded (a JPEG at its smallest scale, which still reads all
    of it): an image cut short or damaged whose header still says the right size is refused here, before it goes
    out in a paid request."""
    info = read_info(data, name)
    image = _open(data, name)
    try:
        if image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: the image is damaged or cut short: {e}") from e
    finally:
        image.close()
    return info


def read_info(source: bytes | IO[bytes], name: str = "image") -> ImageInfo:
    """Dimensions and format from the header only (no pixel decoding; from a file, only the header is read)."""
    image = _open(source, name)
    return ImageInfo(image.width, image.height, image.format, image.mode, getattr(image, "n_frames", 1))


def prepare(
    data: bytes,
    size: tuple[int, int],
    *,
    fit: Fit = "cover",
    pad_color: str = "#000000",
    crop: Crop | None = None,
    output: OutputFormat = "JPEG",
    name: str = "image",
) -> Prepared:
    """Decode, orient, crop, fit and encode `data` as an image of exactly `size`."""
    notes: list[str] = []
    image = _open(data, name)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"{name}: animated image ({frames} frames); using the first frame")
    crop = crop or Crop()
    try:
        _draft(image, size, crop)
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, pad_color)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({e})") from e
    region = _region(image.size, crop)
    if _scale(region, size, fit) > 1:
        notes.append(f"{name}: {round(region[2] - region[0])}x{round(region[3] - region[1])} is too small for "
                     f"{size[0]}x{size[1]}; upscaled")
    fitted = _fit(image, region, size, fit, pad_color)
    assert fitted.size == size, (fitted.size, size)
    return _encoded(fitted, output, notes)


def fit_image(image: Image.Image, size: tuple[int, int], *, fit: Fit = "cover", pad_color: str = "#000000",
              output: OutputFormat = "JPEG") -> Prepared:
    """A decoded RGB image (a video frame, say) made exactly `size` and encoded."""
    return _encoded(_fit(image, (0, 0, *image.size), size, fit, pad_color), output, [])


def _encoded(fitted: Image.Image, output: OutputFormat, notes: list[str]) -> Prepared:
    out = io.BytesIO()
    fitted.save(out, output, **({"quality": 95} if output in ("JPEG", "WEBP") else {}))
    return Prepared(out.getvalue(), output, fitted.size, notes)


def letterbox(image: Image.Image, size: tuple[int, int], pad_color: str = "#000000") -> Image.Image:
    """A decoded RGB image fitted whole into `size` (a video frame of another size, say)."""
    return _fit(image, (0, 0, *image.size), size, "pad", pad_color)


def _draft(image: Image.Image, size: tuple[int, int], crop: Crop) -> None:
    """Let the JPEG decoder scale down by up to 8x while keeping the crop at least `size`."""
    if image.format != "JPEG":
        return
    wanted = (math.ceil(size[0] / (crop.right - crop.left)), math.ceil(size[1] / (crop.bottom - crop.top)))
    if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
        wanted = (wanted[1], wanted[0])
    image.draft("RGB", wanted)


def _to_rgb(image: Image.Image, background: str) -> Image.Image:
    """Any mode (CMYK, 16-bit, palette, transparent, bilevel) as RGB; transparency over `background`."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, ImageColor.getrgb(background))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _region(size: tuple[int, int], crop: Crop) -> tuple[float, float, float, float]:
    width, height = size
    return crop.left * width, crop.top * height, crop.right * width, crop.bottom * height


def _scale(region: tuple[float, float, float, float], size: tuple[int, int], fit: Fit) -> float:
    """How much the fit enlarges the region (above 1: upscaling)."""
    horizontal, vertical = size[0] / (region[2] - region[0]), size[1] / (region[3] - region[1])
    return min(horizontal, vertical) if fit == "pad" else max(horizontal, vertical)


def _fit(image: Image.Image, region: tuple[float, float, float, float], size: tuple[int, int], fit: Fit,
         pad_color: str) -> Image.Image:
    left, top, right, bottom = region
    if fit == "stretch":
        return _resize(image, size, region)
    region_ratio = (right - left) / (bottom - top)
    target_ratio = size[0] / size[1]
    if fit == "cover":
        if region_ratio > target_ratio:  # too wide: trim the sides
            keep = (bottom - top) * target_ratio
            left, right = left + ((right - left) - keep) / 2, left + ((right - left) + keep) / 2
        else:  # too tall: trim top and bottom
            keep = (right - left) / target_ratio
            top, bottom = top + ((bottom - top) - keep) / 2, top + ((bottom - top) + keep) / 2
        return _resize(image, size, (left, top, right, bottom))
    inner = ((size[0], max(1, round(size[0] / region_ratio))) if region_ratio > target_ratio
             else (max(1, round(size[1] * region_ratio)), size[1]))
    canvas = Image.new("RGB", size, ImageColor.getrgb(pad_color))
    canvas.paste(_resize(image, inner, region), ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))
    return canvas


def _resize(image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]) -> Image.Image:
    # reducing_gap: a fast integer reduce first, LANCZOS for the last factor of 3 (same look, far less CPU).
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)

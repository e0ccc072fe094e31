"""Reference images of every awkward kind users feed the pipeline."""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageDraw


def photo(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with structure (so crops and rotations are visible), in any mode."""
    image = Image.new("RGB", size, (40, 90, 160))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((0, h * 2 // 3, w, h), fill=(30, 120, 40))
    draw.ellipse((w // 10, h // 10, w // 3, h // 3), fill=(250, 210, 60))
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.linear_gradient("L").resize(size))
    return image if mode in ("RGB", "RGBA") else image.convert(mode)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@functools.cache
def awkward_references() -> dict[str, bytes]:
    """Name -> file bytes: sizes, formats, modes and metadata that must all just work."""
    rotated = photo((720, 1280))
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    frames = [photo((500, 300)), photo((500, 300)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    sixteen = Image.linear_gradient("L").resize((640, 480)).convert("I").point(lambda v: v * 256)
    return {
        "one-pixel-wide.png": encoded(photo((1281, 720)), "PNG"),
        "one-pixel-short.jpg": encoded(photo((1280, 719)), "JPEG"),
        "huge.jpg": encoded(photo((4000, 3000)), "JPEG", quality=85),
        "portrait.webp": encoded(photo((1080, 1920)), "WEBP"),
        "square.png": encoded(photo((1024, 1024)), "PNG"),
        "tiny.png": encoded(photo((64, 36)), "PNG"),
        "panorama.jpg": encoded(photo((3000, 400)), "JPEG"),
        "transparent.png": encoded(photo((800, 600), "RGBA"), "PNG"),
        "palette.png": encoded(photo((800, 450), "P"), "PNG"),
        "grey.png": encoded(photo((1280, 720), "L"), "PNG"),
        "cmyk.jpg": encoded(photo((1600, 900), "CMYK"), "JPEG"),
        "sixteen-bit.png": encoded(sixteen.convert("I;16"), "PNG"),
        "exif-rotated.jpg": encoded(rotated.rotate(90, expand=True), "JPEG", exif=exif),
        "animated.gif": animated.getvalue(),
        "exact.jpg": encoded(photo((1280, 720)), "JPEG"),
    }

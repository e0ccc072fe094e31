"""Reference preparation: any input becomes exactly the requested size, or a clear one-line error."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from reelflow import ImageError
from reelflow.media.images import Crop, prepare, read_info
from tests.images import awkward_references, encoded, photo
from tests.media import psnr


@pytest.mark.parametrize("name", sorted(awkward_references()))
@pytest.mark.parametrize(("fit", "output"), [("cover", "JPEG"), ("pad", "PNG"), ("stretch", "WEBP")])
def test_every_input_comes_out_exactly_the_size(name: str, fit: str, output: str) -> None:
    prepared = prepare(awkward_references()[name], (1280, 720), fit=fit, output=output)  # type: ignore[arg-type]
    image = Image.open(io.BytesIO(prepared.data))
    assert (image.size, image.format, image.mode) == ((1280, 720), output, "RGB")


def test_pad_letterboxes_with_the_pad_colour() -> None:
    prepared = prepare(encoded(photo((720, 1280)), "PNG"), (1280, 720), fit="pad", pad_color="#ff0000", output="PNG")
    image = Image.open(io.BytesIO(prepared.data))
    assert image.getpixel((5, 360)) == (255, 0, 0) and image.getpixel((1275, 360)) == (255, 0, 0)


def test_crop_fractions_apply_before_the_fit() -> None:
    source = Image.new("RGB", (1000, 1000), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 500, 1000))  # left half red
    prepared = prepare(encoded(source, "PNG"), (640, 360), fit="stretch", crop=Crop(right=0.5), output="PNG")
    assert Image.open(io.BytesIO(prepared.data)).getpixel((600, 300)) == (255, 0, 0)


def test_transparency_is_flattened_onto_the_pad_colour() -> None:
    clear = Image.new("RGBA", (1280, 720), (0, 0, 0, 0))
    prepared = prepare(encoded(clear, "PNG"), (1280, 720), pad_color="#00ff00", output="PNG")
    assert Image.open(io.BytesIO(prepared.data)).getpixel((10, 10)) == (0, 255, 0)


def test_fast_path_matches_the_naive_recipe() -> None:
    """Draft decoding and reducing_gap must not visibly change the picture."""
    from PIL import ImageOps

    data = encoded(photo((4000, 3000)), "JPEG", quality=90)
    naive = ImageOps.fit(Image.open(io.BytesIO(data)), (1280, 720), Image.Resampling.LANCZOS)
    fast = Image.open(io.BytesIO(prepare(data, (1280, 720), output="PNG").data))
    assert psnr(naive, fast) > 38


@pytest.mark.parametrize(("data", "message"), [
    (b"%PDF-1.7 this is a document", "not an image file Pillow can read"),
    (encoded(photo((1000, 800)), "JPEG")[:600], "truncated or corrupt"),
    (encoded(photo((1000, 800)), "PNG")[:300], "truncated or corrupt"),
])
def test_unreadable_inputs_are_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        prepare(data, (1280, 720), name="scene 'a': image x.jpg")


def test_decompression_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000 * 1000)
    with pytest.raises(ImageError, match="decompression bomb"):
        prepare(encoded(photo((3000, 3000)), "PNG"), (1280, 720))


def test_the_header_is_enough_to_know_the_dimensions() -> None:
    info = read_info(encoded(photo((1281, 720)), "PNG")[:100])  # header only; the pixels are cut off
    assert (info.width, info.height, info.format) == (1281, 720, "PNG")

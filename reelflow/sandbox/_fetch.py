"""Reference images given by URL, fetched as a provider would, except that nothing leaves the machine: data
URLs are decoded, and http(s) URLs are fetched only from loopback addresses (the tests' object store, say).
Any other host is refused without a network attempt (not even a name lookup)."""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 20 * 2**20  # the size limit providers state for reference images (OpenAI, Google: 20 MB)


class FetchFailed(Exception):
    """The image could not be had; the message says why, in a few words."""


def image_format(data: bytes) -> str | None:
    """The image's format (a Pillow name: JPEG, PNG, WEBP, ...), or None when it is not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.format
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def fetch_image(url: str) -> bytes:
    """The bytes behind `url`: a base64 data URL, or an http(s) URL on a loopback address."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise FetchFailed("expected a base64-encoded data URL")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as e:
            raise FetchFailed("the data URL is not valid base64") from e
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchFailed("expected an http(s) URL or a data URL")
    if not is_loopback(parts.hostname):
        raise FetchFailed(f"{parts.hostname} cannot be reached from the sandbox (it fetches from loopback only)")
    try:
        async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as answer:
            answer.raise_for_status()
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise FetchFailed(f"the image is over {MAX_IMAGE_BYTES // 2**20} MB")
            return bytes(data)
    except httpx.HTTPError as e:
        raise FetchFailed(f"could not download it ({type(e).__name__})") from e

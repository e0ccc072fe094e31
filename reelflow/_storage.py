"""Output storage through fsspec: any URL (file://, memory://, s3://, gs://), written atomically."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ._errors import ImageError, StorageError

UPLOAD_BLOCK_BYTES = 8 * 2**20  # one multipart-upload part (S3's minimum is 5 MiB)
COPY_CHUNK_BYTES = 2**20


class Storage:
    """A folder in some filesystem; every write lands whole or not at all."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        try:
            self.fs, self.root = fsspec.url_to_fs(url, **(options or {}))
        except (ImportError, ValueError) as e:
            raise StorageError(f"{url}: unsupported storage URL: {e}") from e
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def location(self, *parts: str) -> str:
        """The user-facing URL of a file (for manifests and messages)."""
        return str(self.fs.unstrip_protocol(self.path(*parts)))

    def child(self, *parts: str) -> Storage:
        sub = Storage.__new__(Storage)
        sub.fs, sub.root = self.fs, self.path(*parts)
        return sub

    def publish(self, local: Path, *parts: str) -> None:
        """Copy a finished local file into place, holding at most one upload block in memory (an object
        store's own bulk upload may buffer many 50 MB parts at once)."""
        def copy(path: str) -> None:
            if isinstance(self.fs, LocalFileSystem):
                self.fs.put_file(str(local), path)
                return
            with local.open("rb") as source, self.fs.open(path, "wb", block_size=UPLOAD_BLOCK_BYTES) as sink:
                shutil.copyfileobj(source, sink, COPY_CHUNK_BYTES)

        self._atomically(copy, parts)

    def write_bytes(self, data: bytes, *parts: str) -> None:
        self._atomically(lambda path: self.fs.pipe_file(path, data), parts)

    def _atomically(self, write: Callable[[str], object], parts: tuple[str, ...]) -> None:
        """Local disks: write a temporary name, then rename. Object stores upload whole objects,
        visible only once complete, so they are written in place."""
        target = self.path(*parts)
        try:
            self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
            if isinstance(self.fs, LocalFileSystem):
                partial = f"{target}.part-{uuid.uuid4().hex[:8]}"
                write(partial)
                self.fs.mv(partial, target)
            else:
                write(target)
        except OSError as e:
            raise StorageError(f"cannot write {self.location(*parts)}: {e}") from e

    def write_json(self, value: Any, *parts: str) -> None:
        self.write_bytes(json.dumps(value, indent=2, sort_keys=True).encode(), *parts)

    def read_bytes(self, *parts: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self.path(*parts))
        except OSError as e:
            raise StorageError(f"cannot read {self.location(*parts)}: {e}") from e
        return data

    def copy(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        """Copy a stored file within this storage (server-side on object stores)."""
        try:
            self.fs.copy(self.path(*source), self.path(*target))
        except OSError as e:
            raise StorageError(f"cannot copy {self.location(*source)} to {self.location(*target)}: {e}") from e

    def fetch(self, target: Path, *parts: str) -> None:
        """Copy a stored file to a local path, streamed (media files can be large)."""
        try:
            self.fs.get_file(self.path(*parts), str(target))
        except OSError as e:
            raise StorageError(f"cannot read {self.location(*parts)}: {e}") from e

    def open(self, *parts: str) -> BinaryIO:
        """A file for reading (seekable: media libraries read what they need)."""
        try:
            handle: BinaryIO = self.fs.open(self.path(*parts), "rb")
        except OSError as e:
            raise StorageError(f"cannot read {self.location(*parts)}: {e}") from e
        return handle

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))


def read_source(url: str, name: str) -> bytes:
    """Read an input file (a reference image, say) from any fsspec URL or path."""
    try:
        with fsspec.open(url, "rb") as handle:
            data: bytes = handle.read()
    except FileNotFoundError as e:
        raise ImageError(f"{name}: {url} does not exist") from e
    except (OSError, ValueError) as e:
        raise StorageError(f"{name}: cannot read {url}: {getattr(e, 'strerror', None) or e}") from e
    return data

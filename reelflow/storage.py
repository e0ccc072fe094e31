"""Output storage through fsspec: any URL (file://, memory://, s3://, gs://), written atomically."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import ImageError, StorageError

DEFAULT_OUTPUT = "file://./out"  # where a plan that names no output is written
UPLOAD_BLOCK_BYTES = 8 * 2**20  # one multipart-upload part (S3's minimum is 5 MiB)
COPY_CHUNK_BYTES = 2**20
# Failures that waiting cannot mend: a full disk, a read-only or forbidden folder, a name too long.
_LASTING = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENAMETOOLONG,
            errno.ENOTDIR, errno.EISDIR}


def storage_error(what: str, error: Exception) -> StorageError:
    """A storage backend's failure as reelflow's own, once, whatever the backend raised: fsspec's OSErrors,
    and the rest (botocore's NoCredentialsError, google-auth's DefaultCredentialsError, ...), which are about
    configuration, so retrying them is pointless."""
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
        lasting = error.errno in _LASTING or isinstance(error, PermissionError | FileNotFoundError)
    else:
        reason, lasting = f"{error} ({type(error).__name__})", True
    return StorageError(f"{what}: {reason}", transient=not lasting)


def _missing(error: Exception) -> bool:
    return isinstance(error, FileNotFoundError) and not isinstance(error.__cause__, OSError)


def unreadable(url: str, error: Exception) -> str:
    """Why an input file cannot be read, in a few words: "does not exist" only when its storage says so (an
    HTTP server that cannot be reached is not a missing file, though fsspec raises FileNotFoundError for it)."""
    if _missing(error):
        return f"{url} does not exist"
    cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
    reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return f"{url} cannot be read: {reason}"


class Storage:
    """A folder in some filesystem; every write lands whole or not at all."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        try:
            self.fs, self.root = fsspec.url_to_fs(url, **(options or {}))
        except (ImportError, ValueError) as e:
            raise StorageError(f"{url}: unsupported storage URL: {e}", transient=False) from e
        except Exception as e:  # a backend's own complaint about its options
            raise storage_error(f"{url}: cannot open the storage", e) from e
        self.root = self.root.rstrip("/")

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except Exception as e:  # the boundary to any fsspec backend: whatever it raises is mapped here, once
            raise storage_error(what, e) from e

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
        """Local disks: write a temporary name, then rename; the temporary is removed if anything fails (a
        full disk, a signal). Object stores upload whole objects, visible only once complete, so they are
        written in place."""
        target = self.path(*parts)
        with self._translated(f"cannot write {self.location(*parts)}"):
            self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
            if not isinstance(self.fs, LocalFileSystem):
                write(target)
                return
            partial = f"{target}.part-{uuid.uuid4().hex[:8]}"
            try:
                write(partial)
                self.fs.mv(partial, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(partial).unlink(missing_ok=True)
                raise

    @property
    def creates_atomically(self) -> bool:
        """Whether `create` is atomic by this machine's own doing (a hard link on a local disk), rather than by the
        store's word (an object store's conditional put, which some S3-compatible stores ignore)."""
        return isinstance(self.fs, LocalFileSystem)

    def create(self, data: bytes, *parts: str) -> bool:
        """Write a new file whole, only if there is none by that name (atomically: of two writers, one
        wins); False if there was one."""
        target = self.path(*parts)
        with self._translated(f"cannot create {self.location(*parts)}"):
            self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
            try:
                if isinstance(self.fs, LocalFileSystem):
                    self._link_new(data, target)
                else:
                    with self.fs.open(target, "xb") as handle:  # S3: a put with If-None-Match: *
                        handle.write(data)
            except FileExistsError:
                return False
        return True

    def _link_new(self, data: bytes, target: str) -> None:
        """A local file made whole under a temporary name, then linked to its name: a link never replaces."""
        partial = Path(f"{target}.part-{uuid.uuid4().hex[:8]}")
        try:
            partial.write_bytes(data)
            os.link(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def names(self, *parts: str) -> list[str]:
        """The names in a folder (none if it is not there)."""
        with self._translated(f"cannot list {self.location(*parts)}"):
            self.fs.invalidate_cache(self.path(*parts))  # others write here too: an object store's listing is cached
            try:
                listed = self.fs.ls(self.path(*parts), detail=False)
            except FileNotFoundError:
                return []
        return [str(path).rstrip("/").rpartition("/")[2] for path in listed]

    def remove(self, *parts: str) -> None:
        with self._translated(f"cannot remove {self.location(*parts)}"):
            self.fs.rm_file(self.path(*parts))

    def write_json(self, value: Any, *parts: str) -> None:
        self.write_bytes(json.dumps(value, indent=2, sort_keys=True).encode(), *parts)

    def read_bytes(self, *parts: str) -> bytes:
        with self._translated(f"cannot read {self.location(*parts)}"):
            data: bytes = self.fs.cat_file(self.path(*parts))
        return data

    def copy(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        """Copy a stored file within this storage (server-side on object stores)."""
        with self._translated(f"cannot copy {self.location(*source)} to {self.location(*target)}"):
            self.fs.copy(self.path(*source), self.path(*target))

    def fetch(self, target: Path, *parts: str) -> None:
        """Copy a stored file to a local path, streamed (media files can be large)."""
        with self._translated(f"cannot read {self.location(*parts)}"):
            self.fs.get_file(self.path(*parts), str(target))

    def open(self, *parts: str) -> BinaryIO:
        """A file for reading (seekable: media libraries read what they need)."""
        with self._translated(f"cannot read {self.location(*parts)}"):
            handle: BinaryIO = self.fs.open(self.path(*parts), "rb")
        return handle

    def signed_url(self, *parts: str, seconds: int) -> str | None:
        """A URL anyone may fetch the file from for `seconds` (an object store's presigned URL); None where the
        storage signs nothing (a local disk, memory)."""
        with self._translated(f"cannot sign a URL of {self.location(*parts)}"):
            try:
                return str(self.fs.sign(self.path(*parts), expiration=seconds))
            except NotImplementedError:
                return None

    def exists(self, *parts: str) -> bool:
        with self._translated(f"cannot look at {self.location(*parts)}"):
            return bool(self.fs.exists(self.path(*parts)))


def read_source(url: str, name: str) -> bytes:
    """Read an input file (a reference image, say) from any fsspec URL or path."""
    try:
        with fsspec.open(url, "rb") as handle:
            data: bytes = handle.read()
    except Exception as e:  # any fsspec backend's failure
        if _missing(e):
            raise ImageError(f"{name}: {unreadable(url, e)}") from e
        raise storage_error(f"{name}: {unreadable(url, e)}", e) from e
    return data

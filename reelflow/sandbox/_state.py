"""The sandbox's jobs, characters, files and blobs, in memory or in a state directory."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import fsspec
from fsspec.implementations.memory import MemoryFileSystem
from pydantic import BaseModel, Field

from ._media import Recipe

JobKind = Literal["create", "extension", "remix", "edit"]
_QUEUED_FRACTION = 0.1


def request_record(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A request's fields as a job keeps them: texts up to 300 characters as they are, longer ones, bytes and uploads
    by their SHA-256."""
    def kept(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(key): kept(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [kept(item) for item in value]
        if (isinstance(value, str) and len(value) <= 300) or value is None or isinstance(value, bool | int | float):
            return value
        data = value.encode() if isinstance(value, str) else getattr(value, "data", None)
        return f"sha256:{hashlib.sha256(data).hexdigest()}" if isinstance(data, bytes) else repr(value)[:300]

    return {str(key): kept(value) for key, value in fields.items()}


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


class Job(BaseModel):
    """A video job as the sandbox keeps it; its status is derived from the clock."""

    id: str
    kind: JobKind
    seq: int = Field(description="Creation order, for listing.")
    created_at: float
    finishes_at: float
    model: str
    prompt: str
    recipe: Recipe
    failure: dict[str, str] | None = None
    remixed_from_video_id: str | None = None
    endpoint: str | None = Field(default=None, description="The endpoint a queue request was submitted to (fal).")
    extension_count: int = 0
    webhook_sent: bool = False
    request: dict[str, Any] = Field(default_factory=dict, description="The fields of the request that made it, as "
                                    "the pose read them (an image or a long text by its SHA-256), so a test can "
                                    "tell which request a delivered video answers.")

    @property
    def size(self) -> str:
        return "{}x{}".format(*self.recipe.size)

    def status(self, now: float) -> tuple[str, int]:
        """(status, progress) at wall time `now`."""
        if now >= self.finishes_at:
            return ("failed", 0) if self.failure else ("completed", 100)
        span = self.finishes_at - self.created_at
        elapsed = now - self.created_at
        if elapsed < span * _QUEUED_FRACTION:
            return "queued", 0
        return "in_progress", min(99, max(1, int(100 * elapsed / span)))

    def is_terminal(self, now: float) -> bool:
        return now >= self.finishes_at


class _PrivateMemoryFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """A MemoryFileSystem with a store of its own (the stock one shares a process-wide store)."""

    cachable = False

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[str, Any] = {}
        self.pseudo_dirs = [""]


class SandboxState:
    """Jobs, characters and files, written through to blobs when a state directory is given."""

    def __init__(self, state_dir: Path | None) -> None:
        base = fsspec.filesystem("file") if state_dir else _PrivateMemoryFileSystem()
        root = str(state_dir.resolve()) if state_dir else "/sandbox"
        self.fs = fsspec.filesystem("dir", path=root, fs=base)
        self.jobs: dict[str, Job] = {}
        self.characters: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        for path in self._listing("jobs"):
            job = Job.model_validate_json(self.fs.cat_file(path))
            self.jobs[job.id] = job
        for kind, target in (("characters", self.characters), ("files", self.files), ("batches", self.batches)):
            for path in self._listing(kind):
                record = json.loads(self.fs.cat_file(path))
                target[record["id"]] = record

    def _listing(self, folder: str) -> list[str]:
        return sorted(self.fs.glob(f"{folder}/*.json")) if self.fs.exists(folder) else []

    def next_seq(self) -> int:
        return max((job.seq for job in self.jobs.values()), default=0) + 1

    def save_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.put(f"jobs/{job.id}.json", job.model_dump_json().encode())

    def delete_job(self, job_id: str) -> None:
        del self.jobs[job_id]
        for path in (f"jobs/{job_id}.json", f"media/{job_id}"):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def save_record(self, folder: Literal["characters", "files", "batches"], record: dict[str, Any]) -> None:
        getattr(self, folder)[record["id"]] = record
        self.put(f"{folder}/{record['id']}.json", json.dumps(record).encode())

    def put(self, key: str, data: bytes) -> None:
        parent = key.rpartition("/")[0]
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(key, data)

    def keep_image(self, data: bytes) -> str:
        """A reference image stored once by its content: its blob key."""
        key = f"refs/{hashlib.sha256(data).hexdigest()}"
        if not self.has(key):
            self.put(key, data)
        return key

    def get(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(key)
        return data

    def has(self, key: str) -> bool:
        return bool(self.fs.exists(key))


def now() -> float:
    return time.time()

"""Images made exactly one size in a batch: the sources expanded, one job per image, run on every core.

Prefect-free, so that `reelflow prepare` starts in a fraction of a second; the `prepare-images` flow runs the
same batch as a retryable task."""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import fsspec
from pydantic import BaseModel, ConfigDict, Field

from .errors import ReelflowError
from .media.images import EXTENSIONS, Fit, OutputFormat, prepare
from .settings import Settings
from .storage import Storage, read_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}


@dataclass(frozen=True)
class PrepareJob:
    source: str
    target_name: str
    size: tuple[int, int]
    fit: Fit
    pad_color: str
    output_format: OutputFormat
    output: str
    storage_options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedImage:
    source: str
    target: str | None
    warnings: list[str]
    error: str | None = None


def expand_sources(sources: list[str]) -> list[str]:
    """Folders give their images, globs their matches, anything else is taken as one file."""
    found: list[str] = []
    for source in sources:
        fs, path = fsspec.url_to_fs(source)
        if fs.isdir(path):
            matches = [p for p in fs.find(path) if PurePosixPath(p).suffix.lower() in IMAGE_SUFFIXES]
        elif any(ch in path for ch in "*?["):
            matches = fs.glob(path)
        else:
            matches = [path]
        found += [fs.unstrip_protocol(p) if "://" in source else p for p in sorted(matches)]
    return found


def prepare_one(job: PrepareJob) -> PreparedImage:
    """Runs in a worker process: read, prepare, write. Failures are reported, not raised."""
    try:
        result = prepare(read_source(job.source, job.source), job.size, fit=job.fit, pad_color=job.pad_color,
                         output=job.output_format, name=job.source)
        storage = Storage(job.output, job.storage_options)
        storage.write_bytes(result.data, job.target_name)
        return PreparedImage(job.source, storage.location(job.target_name), result.warnings)
    except ReelflowError as e:
        return PreparedImage(job.source, None, [], str(e))


def _executor(jobs: list[PrepareJob]) -> Executor:
    """Processes use every core; in-memory filesystems are per process, so they get threads."""
    in_memory = any(j.output.startswith("memory://") or j.source.startswith("memory://") for j in jobs)
    workers = os.cpu_count() or 1
    return ThreadPoolExecutor(workers) if in_memory else ProcessPoolExecutor(workers)


def prepare_all(jobs: list[PrepareJob]) -> list[PreparedImage]:
    """Every job, side by side on every core."""
    with _executor(jobs) as pool:
        return list(pool.map(prepare_one, jobs, chunksize=max(1, len(jobs) // 32)))


class Batch(BaseModel):
    """What a batch asks for: the sources (files, folders, globs or URLs) and how each is made."""

    model_config = ConfigDict(frozen=True)

    sources: list[str] = Field(description="Image files, folders, globs or URLs.")
    size: str = Field(pattern=r"^[1-9][0-9]*x[1-9][0-9]*$", description="The size every image is made: WIDTHxHEIGHT.")
    output: str = Field(description="The folder the images go to (an fsspec URL).")
    fit: Fit = Field(default="cover", description="cover (crop to fill), pad (letterbox) or stretch.")
    pad_color: str = Field(default="#000000", description="The background of `pad`.")
    output_format: OutputFormat = Field(default="JPEG", description="The images' file format.")

    def jobs(self, settings: Settings) -> list[PrepareJob]:
        width, _, height = self.size.partition("x")
        files = expand_sources(self.sources)
        names = _unique_names(files, EXTENSIONS[self.output_format])
        return [PrepareJob(f, name, (int(width), int(height)), self.fit, self.pad_color, self.output_format,
                           self.output, settings.storage_options) for f, name in zip(files, names, strict=True)]


def _unique_names(files: list[str], suffix: str) -> list[str]:
    """`<stem>.<suffix>`, with `-2`, `-3`... when two sources share a stem."""
    seen: dict[str, int] = {}
    names = []
    for path in files:
        stem = PurePosixPath(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}.{suffix}" if seen[stem] == 1 else f"{stem}-{seen[stem]}.{suffix}")
    return names

"""Batch image preparation: every image from folders, globs or URLs made exactly one size."""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import fsspec
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from reelflow import ReelflowError, Settings
from reelflow.media.images import EXTENSIONS, Fit, OutputFormat, prepare
from reelflow.storage import Storage, read_source
from tasks._retry import DEFAULT_RETRIES, transient_only

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


@task(name="prepare-batch", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
def prepare_batch(jobs: list[PrepareJob]) -> list[PreparedImage]:
    with _executor(jobs) as pool:
        return list(pool.map(prepare_one, jobs, chunksize=max(1, len(jobs) // 32)))


@flow(name="prepare-images")
def prepare_images(sources: list[str], size: str, output: str, fit: Fit = "cover", pad_color: str = "#000000",
                   output_format: OutputFormat = "JPEG") -> list[PreparedImage]:
    """Make every image in `sources` exactly `size` (WIDTHxHEIGHT) and write it to `output`."""
    settings = Settings()
    width, _, height = size.partition("x")
    files = expand_sources(sources)
    names = _unique_names(files, EXTENSIONS[output_format])
    jobs = [PrepareJob(f, name, (int(width), int(height)), fit, pad_color, output_format, output,
                       settings.storage_options) for f, name in zip(files, names, strict=True)]
    return prepare_batch(jobs) if jobs else []


def _unique_names(files: list[str], suffix: str) -> list[str]:
    """`<stem>.<suffix>`, with `-2`, `-3`... when two sources share a stem."""
    seen: dict[str, int] = {}
    names = []
    for path in files:
        stem = PurePosixPath(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}.{suffix}" if seen[stem] == 1 else f"{stem}-{seen[stem]}.{suffix}")
    return names

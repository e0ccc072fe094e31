"""Batch image preparation as a Prefect flow: every image from folders, globs or URLs made exactly one size."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from reelflow import Settings
from reelflow.image_batch import Batch, PreparedImage, PrepareJob, prepare_all
from tasks._retry import DEFAULT_RETRIES, transient_only


@task(name="prepare-batch", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
def prepare_batch(jobs: list[PrepareJob]) -> list[PreparedImage]:
    return prepare_all(jobs)


@flow(name="prepare-images")
def prepare_images(batch: Batch) -> list[PreparedImage]:
    """Make every image of the batch's sources exactly its size, and write them to its output."""
    jobs = batch.jobs(Settings())
    return prepare_batch(jobs) if jobs else []

"""Reference-image tasks: check dimensions from the header, then make the image exactly the video size."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow._images import OutputFormat, Prepared
from reelflow._plan import ResolvedScene
from reelflow._references import SourceImage, fitted, read_reference

from ._retry import DEFAULT_RETRIES, transient_only


@task(name="validate-dimensions", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def validate_dimensions(url: str, name: str) -> SourceImage:
    """Read the reference image and its header (dimensions, format, mode) without decoding pixels."""
    return await asyncio.to_thread(read_reference, url, name)


@task(name="transform", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def transform(source: SourceImage, scene: ResolvedScene, output: OutputFormat) -> Prepared:
    """Orient, convert, crop and fit the image to exactly the scene's size (in a worker thread)."""
    return await asyncio.to_thread(fitted, source, scene, output)

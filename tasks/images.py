"""Reference-image tasks: read the image and check that all of it decodes, then make it exactly the video size."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.media.images import OutputFormat, Prepared, fit_image
from reelflow.media.references import FIRST, Role, SourceImage, fitted, read_reference
from reelflow.media.video import last_frame
from reelflow.plans import ResolvedScene
from reelflow.storage import Storage

from ._retry import DEFAULT_RETRIES, quiet_when_done, transient_only


@task(name="validate-dimensions", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def validate_dimensions(url: str, name: str) -> SourceImage:
    """Read the reference image, its header (dimensions, format, mode), and check that all of it decodes."""
    return await asyncio.to_thread(read_reference, url, name)


@task(name="transform", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def transform(source: SourceImage, scene: ResolvedScene, output: OutputFormat, role: Role = FIRST) -> Prepared:
    """Orient, convert, crop and fit the image to exactly the scene's size (in a worker thread)."""
    return await asyncio.to_thread(fitted, source, scene, output, role)


@task(name="last-frame", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def last_frame_of(storage: Storage, scene: ResolvedScene, clip: str, output: OutputFormat) -> Prepared:
    """The last frame of one of the scene's clips, made exactly the scene's size: the first frame of the next
    clip when the provider cannot extend its videos (in a worker thread)."""
    return await asyncio.to_thread(_last_frame_fitted, storage, scene, clip, output)


def _last_frame_fitted(storage: Storage, scene: ResolvedScene, clip: str, output: OutputFormat) -> Prepared:
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir:
        local = Path(workdir) / "clip.mp4"
        storage.fetch(local, scene.id, clip)
        frame = last_frame(local)
    return fit_image(frame, scene.dimensions, fit=scene.fit, pad_color=scene.pad_color, output=output)


quiet_when_done(validate_dimensions, transform, last_frame_of)

"""The final reel: the plan's finished videos joined in order, written next to the scenes."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from reelflow._reel import join_clips
from reelflow._results import FileRecord
from reelflow._storage import Storage

from ._retry import DEFAULT_RETRIES, transient_only

REEL = "reel.mp4"


@task(name="assemble-reel", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
def assemble_reel(storage: Storage, scene_ids: list[str], video: str = "video.mp4") -> FileRecord:
    """Join each scene's `video` in the given order into `reel.mp4` at the storage's root."""
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir, contextlib.ExitStack() as stack:
        target = Path(workdir) / REEL
        how = join_clips([stack.enter_context(storage.open(scene, video)) for scene in scene_ids], target)
        get_run_logger().info("reel of %d scenes by %s", len(scene_ids), how)
        with target.open("rb") as written:
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        storage.publish(target, REEL)
        return FileRecord(url=storage.location(REEL), bytes=target.stat().st_size, sha256=digest)

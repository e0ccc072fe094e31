"""Videos made here from the provider's clips: a scene stitched from its last-frame continuations, and the
plan's final reel."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import fsspec
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from reelflow import Settings
from reelflow.media.reel import DEFAULT_CROSSFADE_SECONDS, JoinOptions, Music, join_clips
from reelflow.media.sound import LoudnessTarget
from reelflow.media.video import probe
from reelflow.plans import LoudnessGoal, MusicBed, Plan, ResolvedScene
from reelflow.results import FileRecord
from reelflow.storage import Storage

from ._retry import DEFAULT_RETRIES, transient_only
from .videos import VIDEO, Checked, Expected, described, pictures_of, published, verify_video

REEL = "reel.mp4"


@dataclass(frozen=True)
class ReelSpec:
    """How the plan's scenes become its reel: the dissolve between them, the loudness of the whole, the music
    under it, and the fade at a cut (so the sound does not click)."""

    transition_seconds: float = 0.0
    loudness: LoudnessGoal | None = None
    music: MusicBed | None = None
    crossfade_seconds: float = DEFAULT_CROSSFADE_SECONDS

    @classmethod
    def of(cls, plan: Plan, settings: Settings) -> ReelSpec:
        return cls(plan.transition, plan.loudness, plan.music, settings.crossfade_seconds)


@task(name="assemble-reel", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
def assemble_reel(storage: Storage, scene_ids: list[str], spec: ReelSpec, video: str = VIDEO) -> FileRecord:
    """Join each scene's `video` in the given order into `reel.mp4` at the storage's root, sound included."""
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir, contextlib.ExitStack() as stack:
        target = Path(workdir) / REEL
        music = (Music(stack.enter_context(fsspec.open(spec.music.file, "rb")), spec.music.level_db,
                       spec.music.duck_db) if spec.music else None)
        loudness = (LoudnessTarget(spec.loudness.integrated_lufs, spec.loudness.true_peak_dbtp)
                    if spec.loudness else None)
        options = JoinOptions(crossfade_seconds=spec.crossfade_seconds, transition_seconds=spec.transition_seconds,
                              loudness=loudness, music=music)
        joined = join_clips([stack.enter_context(storage.open(scene, video)) for scene in scene_ids], target, options)
        get_run_logger().info("reel of %d scenes: picture by %s, %s", len(scene_ids), joined.picture,
                              "with sound" if joined.sound else "silent")
        record, info = published(target, storage, REEL), probe(target)
        return described(record, target, info) if info else record


@task(name="stitch", cache_policy=NO_CACHE, retry_condition_fn=transient_only, **DEFAULT_RETRIES)
async def stitch(storage: Storage, scene: ResolvedScene, clips: list[str],
                 crossfade_seconds: float = DEFAULT_CROSSFADE_SECONDS, checked: Checked | None = None
                 ) -> dict[str, FileRecord]:
    """Join a scene's clips (names in its folder), each continuing from the last frame of the one before,
    into its video.mp4, every join without a repeated frame, `checked` (its joins too) before it is put in place;
    then make its thumbnail and spritesheet."""
    records = await asyncio.to_thread(_stitched, storage, scene, clips, Stitching(crossfade_seconds, checked))
    get_run_logger().info("scene %r: %d clips stitched", scene.id, len(clips))
    return records


@dataclass(frozen=True)
class Stitching:
    """How a scene's clips are joined (the sound's fade at each join), and how the result is checked."""

    crossfade_seconds: float
    checked: Checked | None


def _stitched(storage: Storage, scene: ResolvedScene, clips: list[str], how: Stitching) -> dict[str, FileRecord]:
    with tempfile.TemporaryDirectory(prefix="reelflow-") as workdir, contextlib.ExitStack() as stack:
        target = Path(workdir) / VIDEO
        options = JoinOptions(seamless=True, crossfade_seconds=how.crossfade_seconds)
        join_clips([stack.enter_context(storage.open(scene.id, clip)) for clip in clips], target, options)
        info = probe(target)
        frame_seconds = 1 / info.rate if info and info.rate else 0.0
        read = verify_video(target, f"scene {scene.id!r}: the stitched video", Expected(
            scene.dimensions, None if how.checked else scene.total_seconds, 0.5 + (len(clips) - 1) * frame_seconds))
        checks = how.checked.of(target) if how.checked else None
        video = published(target, storage, scene.id, VIDEO).model_copy(update={"checks": checks})
        records = {VIDEO: described(video, target, read)}
        records.update(pictures_of(target, storage, scene.id, ["thumbnail", "spritesheet"]))
        return records

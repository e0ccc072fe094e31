"""What a run of a changed scene can take from earlier runs: every step whose fingerprint is unchanged and whose
video can still be had (kept here, or still on the provider), up to the first step that must be paid.

The one decision serves the estimate, the dry run and the run, so what they say is what the run does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .ledger import LEDGER_FOLDER, JobRecord, Ledger, SceneEntry, SceneInputs, sha256
from .media.references import SceneImages
from .plans import Plan, ResolvedScene
from .results import FileRecord
from .settings import Settings
from .storage import Storage, read_source


def clip_name(step: int) -> str:
    """Where a chain stitched here keeps the clip of each step, in the scene's folder."""
    return f"segments/{step}.mp4"


@dataclass(frozen=True)
class Reuse:
    """Of a scene's `steps` jobs, the first `reused` come from earlier runs; `awaited` says whether the next
    one was created by an earlier run and is still being made (waited for, not paid again)."""

    steps: int
    reused: int = 0
    awaited: bool = False
    notes: tuple[str, ...] = ()  # why unchanged steps are paid again
    rendered: bool = False  # finished before and its files verified: nothing to fetch or make

    @property
    def paid(self) -> range:
        """The steps that cost a new job."""
        return range(self.reused + self.awaited, self.steps)

    @property
    def from_earlier_runs(self) -> int:
        return self.reused + self.awaited


def reuse_of(scene: ResolvedScene, entry: SceneEntry | None, kept: Callable[[str], bool], now: float) -> Reuse:
    """Reuse for `scene` given its ledger entry (fingerprints already set for the scene as it is now); `kept`
    says whether a file of the scene's folder is there as recorded."""
    steps = len(scene.segments) + len(scene.revisions)
    if entry is None:
        return Reuse(steps)
    if entry.status == "completed" and entry.files and all(map(kept, entry.files)):
        return Reuse(steps, steps, rendered=True)
    chain = [job for job in entry.chain() if job.status in ("completed", "expired")]
    reused = len(chain)
    notes: list[str] = []
    while reused and (gone := _missing_source(scene, chain[:reused], kept, now)) is not None:
        notes.append(f"step {gone + 1} is unchanged but its video is gone from the provider: paid again")
        reused = gone
    following = entry.current(reused) if reused < steps else None
    awaited = following is not None and following.status == "created"
    return Reuse(steps, reused, awaited, tuple(notes))


def _missing_source(scene: ResolvedScene, reused: list[JobRecord], kept: Callable[[str], bool],
                    now: float) -> int | None:
    """The first reused step whose video is needed and can be had neither from the scene's folder nor from
    the provider, if any. A chain stitched here needs each clip; a chain the provider continues needs the
    last reused video there, to extend or revise it, or to download it."""
    if scene.stitched_locally:
        return next((step for step, job in enumerate(reused[:len(scene.segments)])
                     if not kept(clip_name(step)) and not _on_provider(job, now)), None)
    last = len(reused) - 1
    return None if _on_provider(reused[last], now) else last


def _on_provider(job: JobRecord, now: float) -> bool:
    return job.status == "completed" and job.alive(now)


def kept_in(entry: SceneEntry, storage: Storage) -> Callable[[str], bool]:
    """Whether a file of the scene's folder (`storage` is the plan's) is there as its entry recorded it, and, when it
    was made from a job's video, from a job of the scene's chain as it is now (a plan edited A -> B -> A keeps B's
    clip under A's name: it verifies, and is not A's)."""
    chain = {job.id for job in entry.chain()}

    def kept(name: str) -> bool:
        record = entry.files.get(name)
        return (record is not None and (record.job is None or record.job in chain)
                and verifies(record, storage, entry.scene, name))

    return kept


def verifies(record: FileRecord, storage: Storage, scene_id: str, name: str) -> bool:
    if not storage.exists(scene_id, name):
        return False
    data = storage.read_bytes(scene_id, name)
    return len(data) == record.bytes and sha256(data) == record.sha256


def planned_reuse(plan: Plan, scenes: list[ResolvedScene], storage: Storage, settings: Settings) -> dict[str, Reuse]:
    """What each scene can take from earlier runs of `plan` into `storage` (its folder), judged now, before
    anything is paid (reading the scenes' images and the kept files, as the run will)."""
    if not storage.exists(LEDGER_FOLDER):
        return {}
    ledger = Ledger(storage)
    characters = _recorded_characters(plan, scenes, ledger)
    found: dict[str, Reuse] = {}
    for scene in scenes:
        entry = ledger.load(scene.id)
        if entry is None:
            continue
        inputs = SceneInputs.of(SceneImages.read(scene), scene.provider, settings.reference_format,
                                [characters.get(name, "<to be made>") for name in scene.characters])
        entry = entry.restamped(scene, inputs)
        found[scene.id] = reuse_of(scene, entry, kept_in(entry, storage), time.time())
    return found


def _recorded_characters(plan: Plan, scenes: list[ResolvedScene], ledger: Ledger) -> dict[str, str]:
    """The ids of the characters the ledger has made from the plan's clips as they are now."""
    used = {name for scene in scenes for name in scene.characters}
    records = ledger.characters()
    return {c.name: records[c.name].id for c in plan.characters if c.name in used and c.name in records and
            records[c.name].clip_sha256 == sha256(read_source(c.clip, f"character {c.name!r}: clip"))}

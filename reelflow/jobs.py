"""`reelflow jobs`: what the ledger of a plan's output knows of its jobs and what the provider says of them;
and the two ways out of a step left unknown (its create's answer lost on a provider that lists no jobs):
attach the job by hand (adopt), or pay for it again knowingly."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .errors import ReelflowError, UserError
from .lease import Holder, Lease, holding
from .ledger import JobRecord, Ledger, SceneEntry
from .plans import ResolvedScene
from .providers import Connection, Gateway, open_gateway
from .settings import Settings
from .storage import Storage

UNKNOWN_HELP = ("unknown: its create's answer was lost and the provider lists no jobs, so it may exist and be paid. "
                "Look for it in the provider's dashboard, then either `reelflow jobs PLAN --adopt SCENE=JOB_ID` "
                "(the next run waits for that job) or `reelflow jobs PLAN --retry-unknown` (the next run makes it "
                "again, paying again)")


@dataclass(frozen=True)
class JobRow:
    scene: str
    step: int
    kind: str
    job_id: str | None
    status: str
    recorded_at: float
    current: bool  # made for the scene as it was last run (not for a version of it since changed)
    provider_says: str = ""


def job_rows(scenes: list[ResolvedScene], storage: Storage) -> list[JobRow]:
    """Every job the ledger of `storage` (the plan's folder) has for the plan's scenes, in order."""
    ledger = Ledger(storage)
    rows = []
    for scene in scenes:
        entry = ledger.load(scene.id)
        if entry is None:
            continue
        rows += [JobRow(scene.id, job.step, _kind(scene, job.step), job.id, job.status, job.recorded_at,
                        job.fingerprint is None or job.fingerprint in entry.steps) for job in entry.jobs]
    return rows


def _kind(scene: ResolvedScene, step: int) -> str:
    if step < len(scene.segments):
        return {"create": "clip", "extension": "extension", "last-frame": "continuation"}[scene.segments[step].via]
    return f"revision {step - len(scene.segments) + 1}"


def asked(rows: list[JobRow], connection: Connection, settings: Settings) -> list[JobRow]:
    """`rows` with what the provider says of each job it has an id for."""
    async def ask_all() -> list[JobRow]:
        gateway = open_gateway(connection, settings)
        try:
            return [row if row.job_id is None else
                    JobRow(**{**row.__dict__, "provider_says": await _status(gateway, row.job_id)}) for row in rows]
        finally:
            await gateway.close()

    return asyncio.run(ask_all())


async def _status(gateway: Gateway, job_id: str) -> str:
    try:
        state = await gateway.retrieve(job_id)
    except ReelflowError as e:
        return f"cannot tell: {e}"
    return state.status


def adopt(storage: Storage, scene_id: str, job_id: str) -> str:
    """Attach `job_id` to the scene's step left unknown; the next run waits for that job. Returns what was done."""
    ledger = Ledger(storage)
    with _editing(storage):
        entry, record = _unknown_step(ledger, scene_id)
        record.id, record.status, record.error, record.recorded_at = job_id, "created", None, time.time()
        entry.status, entry.error, entry.transient = "rendering", None, True
        ledger.save(entry)
    return f"scene {scene_id!r}: step {record.step + 1} is job {job_id}; the next run waits for it"


def pay_again(storage: Storage, scene_ids: list[str]) -> list[str]:
    """Let the next run make every step left unknown again (paying again). Returns what was done."""
    done = []
    with _editing(storage):
        ledger = Ledger(storage)
        for scene_id in scene_ids:
            entry = ledger.load(scene_id)
            for record in entry.jobs if entry else []:
                if record.status == "unknown":
                    record.status, record.transient = "failed", True
                    done.append(f"scene {scene_id!r}: step {record.step + 1} will be made again")
            if entry is not None and any(r.status == "failed" and r.transient for r in entry.jobs):
                entry.transient = True
                ledger.save(entry)
    return done


def _unknown_step(ledger: Ledger, scene_id: str) -> tuple[SceneEntry, JobRecord]:
    entry = ledger.load(scene_id)
    unknown = [job for job in entry.jobs if job.status == "unknown"] if entry else []
    if entry is None or not unknown:
        raise UserError(f"scene {scene_id!r} has no step left unknown in {ledger.storage.location()}")
    return entry, unknown[-1]


def _editing(storage: Storage) -> AbstractContextManager[Lease]:
    """Edits to a ledger are made while no run renders to it."""
    seconds = 30.0
    return holding(storage, Holder.me(None, None, seconds), seconds, wait=False)

"""`reelflow jobs`: what the ledger of a plan's output knows of its jobs and what the provider says of them;
and the two ways out of a step left unknown (its create's answer lost on a provider that lists no jobs):
attach the job by hand (adopt), or pay for it again knowingly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

from ._dry_run import scene_jobs
from .errors import JobGoneError, ReelflowError, TransientApiError, UserError
from .lease import Holder, Lease, holding
from .ledger import JobRecord, Ledger, SceneEntry
from .plans import ResolvedScene
from .profiles import ProviderProfile
from .providers import Connection, Gateway, connect_provider, dialect, open_gateway, uses_embedded_sandbox
from .quiet import keep_library_logs_off_the_terminal
from .routes import RoutedPlan
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
    provider: str  # the profile of the route it was made on (asked about it)
    made_on: str  # that route: its provider and model
    provider_says: str = ""


def job_rows(routed: RoutedPlan, storage: Storage) -> list[JobRow]:
    """Every job the ledger of `storage` (the plan's folder) has for the plan's scenes, in order, each with the
    route it was made on."""
    ledger = Ledger(storage)
    rows = []
    for scene in routed.scenes:
        entry = ledger.load(scene.id)
        if entry is None:
            continue
        for job in entry.jobs:
            where = routed.made_where(scene.id, job.route or entry.route).scenes[0]
            rows.append(JobRow(scene.id, job.step, _kind(where, job.step), job.id, job.status, job.recorded_at,
                               job.fingerprint is None or job.fingerprint in entry.steps, where.provider,
                               where.made_on))
    return rows


def step_route(storage: Storage, scene_id: str) -> str:
    """Where the scene's step left for the user to find (see `_open_step`) was sent."""
    entry, record = _open_step(Ledger(storage), scene_id)
    return record.route or entry.route


def _kind(scene: ResolvedScene, step: int) -> str:
    if step < len(scene.segments):
        return {"create": "clip", "extension": "extension", "last-frame": "continuation"}[scene.segments[step].via]
    return f"revision {step - len(scene.segments) + 1}"


class Providers(ExitStack):
    """The providers `reelflow jobs` asks about jobs, each connected when first needed, for as long as the block
    lasts; none where a run would stand up the embedded sandbox (it knows no earlier run's jobs)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._connected: dict[str, Connection | None] = {}

    def connection(self, profile: ProviderProfile) -> Connection | None:
        if profile.name not in self._connected:
            live = not uses_embedded_sandbox(self.settings, profile)
            if live:
                keep_library_logs_off_the_terminal()
            self._connected[profile.name] = self.enter_context(connect_provider(self.settings, profile)) if live \
                else None
        return self._connected[profile.name]

    def asked(self, rows: list[JobRow], routed: RoutedPlan) -> list[JobRow]:
        """`rows` with what the provider of each (the route it was made on) says of its job."""
        for profile in routed.profiles:
            ours = any(row.job_id is not None and row.provider == profile.name for row in rows)
            connection = self.connection(profile) if ours else None
            if connection is not None:
                rows = _asked(rows, connection, self.settings)
        return rows

    def checker(self, profile: ProviderProfile) -> Callable[[str], None] | None:
        """A check that the provider knows a job (see `known_to`); None: nothing to ask."""
        connection = self.connection(profile)
        return None if connection is None else known_to(connection, self.settings)


def _asked(rows: list[JobRow], connection: Connection, settings: Settings) -> list[JobRow]:
    """`rows` with what the provider of `connection` says of each job of its it has an id for."""
    async def ask_all() -> list[JobRow]:
        gateway = open_gateway(connection, settings)
        try:
            return [JobRow(**{**row.__dict__, "provider_says": await _status(gateway, row.job_id)})
                    if row.job_id is not None and row.provider == connection.profile.name else row for row in rows]
        finally:
            await gateway.close()

    return asyncio.run(ask_all())


def known_to(connection: Connection, settings: Settings) -> Callable[[str], None]:
    """A check that the provider of `connection` knows a job: UserError when it says it does not (404), or refuses
    the question (a key refused, say); a provider that does not answer (asked a few times) leaves the id to the
    next run, which says what the provider makes of it."""
    def check(job_id: str) -> None:
        async def ask() -> None:
            gateway = open_gateway(connection, settings)
            try:
                for pause in (1.0, 3.0, None):
                    try:
                        await gateway.retrieve(job_id)
                        return
                    except TransientApiError:
                        if pause is None:
                            return
                        await asyncio.sleep(pause)
            finally:
                await gateway.close()

        try:
            asyncio.run(ask())
        except JobGoneError:
            raise UserError(f"{connection.profile.name} does not know job {job_id} (404): check the id, and that the "
                            "key is the account's that made it") from None
        except ReelflowError as e:
            raise UserError(f"cannot ask {connection.profile.name} about job {job_id}: {e}") from None

    return check


async def _status(gateway: Gateway, job_id: str) -> str:
    try:
        state = await gateway.retrieve(job_id)
    except ReelflowError as e:
        return f"cannot tell: {e}"
    return state.status


@dataclass(frozen=True)
class Adoption:
    """`reelflow jobs --adopt SCENE=JOB_ID`: the job a user found for a scene's step left unknown (or whose job the
    provider no longer knows), as the provider's dashboard shows its id; `checked` asks the provider whether it
    knows the job (None: nothing to ask, the embedded sandbox)."""

    scene: ResolvedScene
    given: str
    profile: ProviderProfile
    checked: Callable[[str], None] | None = None


def adoption(routed: RoutedPlan, storage: Storage, given: tuple[ResolvedScene, str], providers: Providers) -> Adoption:
    """`--adopt SCENE=JOB_ID` (`given`: the scene and the id) for the route the scene's open step was sent on."""
    scene, job_id = given
    made = routed.made_where(scene.id, step_route(storage, scene.id))
    return Adoption(made.scenes[0], job_id, made.profile, providers.checker(made.profile))


def adopt(storage: Storage, adoption: Adoption, scenes: list[ResolvedScene], settings: Settings) -> str:
    """Attach the job to the scene's step left unknown, once its id has the provider's shape, is no other step's,
    and (where the provider can be asked) is known to the provider; the next run waits for that job. Nothing is
    written before all of that holds. Returns what was done."""
    ledger, scene = Ledger(storage), adoption.scene
    with _editing(storage):
        entry, record = _open_step(ledger, scene.id)
        job_id = _adoptable(adoption, record.step, settings)
        _not_held(job_id, ledger, scenes, (scene.id, record.step))
        if adoption.checked is not None:
            adoption.checked(job_id)
        record.adopted(job_id)
        entry.resumable()
        ledger.save(entry)
    return f"scene {scene.id!r}: step {record.step + 1} is job {job_id}; the next run waits for it"


def _adoptable(adoption: Adoption, step: int, settings: Settings) -> str:
    """The provider's id of the job the user gave, in the shape its dialect records (fal's bare request id gets the
    endpoint the step's request goes to)."""
    profile = adoption.profile
    job = scene_jobs(adoption.scene, profile, settings)[step][0]
    request = dialect(profile.api).describe(job, profile)
    try:
        return dialect(profile.api).adopted_id(adoption.given, request)
    except ValueError as e:
        raise UserError(f"--adopt {adoption.scene.id}={adoption.given[:80]}: {e}") from None


def _not_held(job_id: str, ledger: Ledger, scenes: list[ResolvedScene], step: tuple[str, int]) -> None:
    """A job is one step's: refuse one the ledger already holds for another scene, or another step."""
    for scene in scenes:
        entry = ledger.load(scene.id)
        for record in entry.jobs if entry else []:
            if record.id == job_id and (scene.id, record.step) != step:
                raise UserError(f"job {job_id} is already scene {scene.id!r}'s step {record.step + 1} in the ledger: "
                                "a job makes one step's video")


def pay_again(storage: Storage, scene_ids: list[str]) -> list[str]:
    """Let the next run make every step left unknown again (paying again). Returns what was done."""
    done = []
    with _editing(storage):
        ledger = Ledger(storage)
        for scene_id in scene_ids:
            entry = ledger.load(scene_id)
            for record in entry.jobs if entry else []:
                if record.status == "unknown":
                    record.paid_again()
                    done.append(f"scene {scene_id!r}: step {record.step + 1} will be made again")
            if entry is not None and any(r.status == "failed" and r.transient for r in entry.jobs):
                entry.resumable()
                ledger.save(entry)
    return done


def _open_step(ledger: Ledger, scene_id: str) -> tuple[SceneEntry, JobRecord]:
    """The scene's step whose job is for the user to find: left unknown, gone from the provider, or whose create's
    answer never reached the ledger (`submitting`: no run is sending it, as this holds the output)."""
    entry = ledger.load(scene_id)
    open_steps = [job for job in entry.chain() if job.status in ("unknown", "gone", "submitting")] if entry else []
    if entry is None or not open_steps:
        raise UserError(f"scene {scene_id!r} has no step left unknown, or whose job the provider no longer knows, in "
                        f"{ledger.storage.location()}")
    return entry, open_steps[-1]


def _editing(storage: Storage) -> AbstractContextManager[Lease]:
    """Edits to a ledger are made while no run renders to it."""
    seconds = 30.0
    return holding(storage, Holder.me(None, None, seconds), seconds, wait=False)

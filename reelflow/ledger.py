"""The job ledger: which paid jobs exist for which scene, kept durably beside the outputs.

A job id is recorded the moment the provider returns it, before any waiting, so a run that dies
can be resumed without paying twice. Each scene has its own small JSON file, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from .errors import StorageError
from .plans import ResolvedScene
from .results import Choice, FileRecord, Paid, RejectedTake
from .storage import Storage

if TYPE_CHECKING:
    from .media.references import SceneImages

LEDGER_FOLDER = "ledger"
Record = TypeVar("Record", bound=BaseModel)


JobStatus = Literal["submitting", "created", "completed", "failed", "expired", "unknown", "gone", "rejected"]
# The job's state machine: where each status may move, and nowhere else. Only the ledger moves a job (the methods
# of JobRecord below), and `needs_new_job` is the one rule for paying for a step again.
MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    "submitting": frozenset({"created", "unknown", "failed"}),  # answered; answer lost; refused in a batch
    "created": frozenset({"completed", "failed", "gone", "expired"}),  # gone: the provider forgot it (404)
    "completed": frozenset({"completed", "expired", "gone", "rejected"}),  # asked again; its files gone; the job
    # forgotten; its take failed the checks and is made again (`qa: retake`)
    "unknown": frozenset({"created", "failed"}),  # adopted by hand; or made again, knowingly (--retry-unknown)
    "gone": frozenset({"created"}),  # adopted by hand (--retry-failed makes a new job instead)
    "failed": frozenset(),  # a new job is made instead, when `needs_new_job` says so
    "expired": frozenset(),
    "rejected": frozenset(),  # its step is made again: a new job, recorded before it is sent, like any
}


class LedgerStateError(RuntimeError):
    """A move of a job that the state machine does not have: a mistake in reelflow, never the user's."""


class JobRecord(BaseModel):
    step: int = Field(description="0: the create; k: the k-th job after it (extension, continuation, revision).")
    fingerprint: str | None = Field(default=None, description="The step's identity when it was made (None: "
                                    "recorded before steps had one; stamped when its scene is seen unchanged).")
    id: str | None = Field(default=None, description="None while `submitting`: the answer has not arrived yet.")
    status: JobStatus = Field(default="submitting", description="expired: completed, but its files are gone "
                              "from the provider; unknown: its create's answer was lost and the provider cannot "
                              "be asked, so it may exist (and be paid); gone: the provider answers 404 for it "
                              "(expired, or made with another account), so only a new, paid job brings it back.")
    error: str | None = None
    transient: bool = Field(default=False, description="A failed job whose cause may pass: created again.")
    recorded_at: float = Field(default_factory=time.time)
    expires_at: float | None = Field(default=None, description="When the provider deletes its files, if it says.")
    list_usd: float | None = Field(default=None, description="What the job costs at the profile's list price.")
    billed_usd: float | None = Field(default=None, description="What the provider says it billed for the job "
                                     "(OpenRouter's usage.cost), once finished, where it says.")
    route: str = Field(default="", description="Where it was made: its provider and model (\"\": recorded before "
                       "jobs named theirs; the scene's route).")

    def alive(self, now: float, margin: float = 120) -> bool:
        """Its files can still be fetched from (or built on at) the provider, as far as it said."""
        return self.expires_at is None or self.expires_at - margin > now

    def _move(self, to: JobStatus, error: str | None = None) -> None:
        if to not in MOVES[self.status]:
            raise LedgerStateError(f"job {self.id or '(not yet named)'} of step {self.step + 1}: {self.status} -> "
                                   f"{to} is no move of the ledger's state machine")
        self.status, self.error = to, error

    def created(self, job_id: str) -> None:
        """The provider named the job: it is paid for, and recorded before any waiting."""
        self._move("created")
        self.id = job_id

    def adopted(self, job_id: str) -> None:
        """The job a person found for a step left unknown, gone, or whose answer was never recorded."""
        self._move("created")  # (from submitting too: no run is sending it, as the adoption holds the output)
        self.id, self.recorded_at = job_id, time.time()

    def finished(self, expires_at: float | None, billed_usd: float | None) -> None:
        """Made: kept with when its files go and what the provider billed (asked again, as a retry that fetches
        its files does, the answer is kept anew)."""
        self._move("completed")
        self.expires_at, self.billed_usd = expires_at, billed_usd

    def failed(self, error: str, may_pass: bool) -> None:
        """The provider ended it failed (or refused it in a batch); a cause that `may_pass` gets a new job."""
        self._move("failed", error)
        self.transient = may_pass

    def lost(self, error: str) -> None:
        """Its create's answer was lost and the provider lists no jobs to tell: it may exist, and be paid."""
        self._move("unknown", error)

    def paid_again(self) -> None:
        """Left unknown, made again by the next run, knowingly (`reelflow jobs --retry-unknown`)."""
        self._move("failed")
        self.transient = True

    def forgotten(self, error: str, free: bool) -> None:
        """The provider no longer knows it (404): gone, so a new job is the user's decision; on a provider whose
        jobs cost nothing (the embedded sandbox) its files are merely expired, and it is made again."""
        self._move("expired" if free else "gone", error)

    def rejected(self) -> None:
        """Made, but its take failed the checks: the step is made again (a retake, a new paid job)."""
        self._move("rejected")

    def expired(self) -> None:
        """Its files are gone from the provider (or its step is paid again): a new job makes them."""
        self._move("expired")

    def files_gone(self, at: float) -> None:
        """The provider no longer has its files, whatever expiry it announced."""
        self.expires_at = at


def needs_new_job(record: JobRecord | None, retry_failed: bool) -> bool:
    """The never-pay-twice rule: whether a step needs a new, paid job. It does with no job yet, with its job's files
    gone (expired), or when its job failed for a cause that may pass; when it failed for good, or the provider no
    longer knows it, only when the user asks (`retry_failed`). A job being made, made, or whose create's answer was
    lost (unknown: it may exist, and be paid) never gets another."""
    if record is None:
        return True
    match record.status:
        case "expired" | "rejected":
            return True
        case "failed":
            return record.transient or retry_failed
        case "gone":
            return retry_failed
        case _:
            return False


class RouteMove(BaseModel):
    """A scene leaving a route for the next one: which (its provider and model), why, when."""

    route: str
    reason: str = Field(description="What the route did, said after its name: `refused it (moderation_blocked)`.")
    at: float = Field(default_factory=time.time)

    def describe(self) -> str:
        return f"{self.route} {self.reason}"


class SceneEntry(BaseModel):
    scene: str
    fingerprint: str = Field(description="Hash of everything that shapes the scene's output.")
    steps: list[str] = Field(default_factory=list, description="Each step's fingerprint: over its own inputs and "
                             "the one before it, so a step is the same only when every step up to it is.")
    status: Literal["rendering", "completed", "failed"] = "rendering"
    jobs: list[JobRecord] = Field(default_factory=list, description="Every job made for the scene, also of "
                                  "steps since changed (they are paid: the ledger keeps them).")
    files: dict[str, FileRecord] = Field(default_factory=dict)
    error: str | None = None
    transient: bool = False
    request: str = Field(default="", description="What the scene asked for, wherever made (`request_fingerprint`).")
    route: str = Field(default="", description="The route it is (or was last) made on.")
    moves: list[RouteMove] = Field(default_factory=list, description="Each time it left a route for the next, "
                                   "and why.")
    rejected: list[RejectedTake] = Field(default_factory=list, description="Its takes that failed the checks and "
                                         "were made again (their jobs rejected, their files kept under their own "
                                         "names).")

    def current(self, step: int) -> JobRecord | None:
        """The latest job made for `step` as it is now (its fingerprint), if any."""
        wanted = self.steps[step] if step < len(self.steps) else None
        return next((j for j in reversed(self.jobs) if j.step == step and j.fingerprint == wanted), None)

    def intend(self, step: int, list_usd: float | None = None) -> JobRecord:
        """A new job for `step` (costing `list_usd` at list price), recorded before its create is sent."""
        record = JobRecord(step=step, fingerprint=self.steps[step] if step < len(self.steps) else None,
                           list_usd=list_usd, route=self.route)
        self.jobs.append(record)
        return record

    def withdraw(self, record: JobRecord) -> None:
        """An intent whose create made nothing (refused, or the provider never reached): gone from the ledger, so
        no later run asks after a job that cannot exist."""
        if record.status != "submitting":
            raise LedgerStateError(f"step {record.step + 1}: a {record.status} job is no intent to withdraw")
        self.jobs.remove(record)

    def rendering(self) -> None:
        """The scene is being rendered (again)."""
        self.status, self.error, self.transient = "rendering", None, False

    def completed(self) -> None:
        self.status, self.error, self.transient = "completed", None, False

    def failed(self, error: str, transient: bool) -> None:
        """The scene failed; `transient`: no verdict on it (a later run renders it without being asked)."""
        self.status, self.error, self.transient = "failed", error, transient

    def retaken(self, files: dict[str, FileRecord]) -> RejectedTake:
        """Its take failed the checks and is made again: the jobs of its chain rejected (so each step gets a new
        one, recorded before it is sent), its files (`files`, under their kept names) kept in the record."""
        take = RejectedTake(number=len(self.rejected) + 1, jobs=[job.id for job in self.chain() if job.id],
                            files=files)
        for job in self.chain():
            job.rejected()
        self.rejected.append(take)
        return take

    def moved(self, reason: str) -> None:
        """The scene leaves its route for the next (its jobs there stay: they are paid)."""
        if self.making():
            raise LedgerStateError(f"scene {self.scene}: a job of it may still be made on {self.route}; it cannot "
                                   "move to another route")
        self.moves.append(RouteMove(route=self.route, reason=reason))

    def on_route(self, route: str) -> None:
        """The scene is made on `route` (its provider and model) from now on."""
        self.route = route

    def making(self) -> bool:
        """Whether a job of the scene may still be made where it was sent (being sent, made, or its create's
        answer lost): then the scene stays on its route, so as not to pay for it twice."""
        return any(job.status in ("submitting", "created", "unknown") for job in self.chain())

    def resumable(self) -> None:
        """A step of the failed scene was resolved by hand (a job adopted): the next run renders it."""
        self.status, self.error, self.transient = "rendering", None, True

    def chain(self) -> list[JobRecord]:
        """The current job of each step, as far as the steps have one."""
        found = []
        for step in range(len(self.steps)):
            record = self.current(step)
            if record is None:
                break
            found.append(record)
        return found

    @classmethod
    def new(cls, scene: ResolvedScene, inputs: SceneInputs) -> SceneEntry:
        return cls(scene=scene.id, fingerprint=fingerprint(scene, inputs), steps=step_fingerprints(scene, inputs),
                   request=request_fingerprint(scene, inputs))

    def restamped(self, scene: ResolvedScene, inputs: SceneInputs) -> SceneEntry:
        """This entry for the scene as it is now. Finished, and asked for the same (see `request_fingerprint`), it
        stands, on whatever route it was made; unchanged, its jobs from before step fingerprints get theirs;
        changed, it starts rendering again and keeps its jobs, whose steps may still match."""
        request, steps = request_fingerprint(scene, inputs), step_fingerprints(scene, inputs)
        if self.status == "completed" and self.request == request:
            return self
        if fingerprint(scene, inputs) == self.fingerprint:
            for job in self.jobs:
                if job.fingerprint is None and job.step < len(steps):
                    job.fingerprint = steps[job.step]
            return self.model_copy(update={"steps": steps, "request": request})
        moves = self.moves if request == self.request else []  # (those of what it asked for before: past)
        return self.model_copy(update={"fingerprint": fingerprint(scene, inputs), "steps": steps, "request": request,
                                       "status": "rendering", "error": None, "transient": False, "moves": moves})


def paid_for(made: Iterable[JobRecord]) -> Paid:
    """What the jobs a run sent creates for cost: those the provider named were paid for (at list price; billed as
    the provider says, where it does); those whose answer was lost may have been; a create never sent cost
    nothing."""
    made = list(made)
    named = [job for job in made if job.id is not None]
    billed = [job.billed_usd for job in named if job.billed_usd is not None]
    return Paid(jobs=len(named), list_usd=round(sum(job.list_usd or 0.0 for job in named), 4),
                billed_usd=round(sum(billed), 4) if billed else None, billed_jobs=len(billed),
                unknown_jobs=sum(1 for job in made if job.id is None and job.status == "unknown"))


class CharacterRecord(BaseModel):
    id: str = Field(description="The provider's character id.")
    clip_sha256: str = Field(description="Which clip it was made from: another clip makes another character.")


CHARACTERS = "characters.json"
REVIEW = "_review.json"  # not a safe name, so never a scene's entry


class ChoiceRecord(BaseModel):
    """A person's choice for a scene, and the takes it was made on (each take's jobs): it stands while they do."""

    made_of: list[list[str]]
    choice: Choice
BATCH, BATCH_INPUT = "batch.json", "batch.jsonl"


class BatchRecord(BaseModel):
    """The plan's batch: which scenes' first jobs it carries and how far it got, so a run that dies mid-way
    picks it up instead of sending another."""

    scenes: list[str] = Field(description="Scene ids, each the custom_id of its line.")
    input_file_id: str | None = Field(default=None, description="The uploaded input file (None: not yet).")
    create_sent: bool = Field(default=False, description="A create was sent: its batch may exist unrecorded.")
    batch_id: str | None = None
    done: bool = Field(default=False, description="Its results are in the scenes' entries.")


class Ledger:
    """Per-scene entries under `<plan folder>/ledger/`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def load(self, scene_id: str) -> SceneEntry | None:
        """The scene's entry; None when there is none or it is unreadable (the scene is rendered anew)."""
        return self._record(f"{scene_id}.json", SceneEntry)

    def save(self, entry: SceneEntry) -> None:
        """Write the entry whole; a failure here is fatal for the scene (a paid job could be lost)."""
        try:
            self.storage.write_json(entry.model_dump(mode="json"), LEDGER_FOLDER, f"{entry.scene}.json")
        except StorageError as e:
            raise StorageError(f"scene {entry.scene!r}: cannot record its jobs in the ledger: {e}",
                               transient=e.transient) from e

    def characters(self) -> dict[str, CharacterRecord]:
        return self._records(CHARACTERS, CharacterRecord)

    def batch(self) -> BatchRecord | None:
        return self._record(BATCH, BatchRecord)

    def _record(self, name: str, model: type[Record]) -> Record | None:
        if not self.storage.exists(LEDGER_FOLDER, name):
            return None
        try:
            return model.model_validate_json(self.storage.read_bytes(LEDGER_FOLDER, name))
        except ValidationError:
            return None

    def save_batch(self, record: BatchRecord, jsonl: bytes | None = None) -> None:
        """Record the batch (and first its input, so a resumed run can upload the very same requests)."""
        if jsonl is not None:
            self.storage.write_bytes(jsonl, LEDGER_FOLDER, BATCH_INPUT)
        self.storage.write_json(record.model_dump(mode="json"), LEDGER_FOLDER, BATCH)

    def batch_input(self) -> bytes:
        return self.storage.read_bytes(LEDGER_FOLDER, BATCH_INPUT)

    def choices(self) -> dict[str, ChoiceRecord]:
        """Each reviewed scene's choice, by scene id (an unreadable file: none, so they are asked again)."""
        return self._records(REVIEW, ChoiceRecord)

    def _records(self, name: str, model: type[Record]) -> dict[str, Record]:
        if not self.storage.exists(LEDGER_FOLDER, name):
            return {}
        try:
            raw = json.loads(self.storage.read_bytes(LEDGER_FOLDER, name))
            return {key: model.model_validate(record) for key, record in raw.items()}
        except (ValueError, ValidationError, AttributeError):
            return {}

    def save_choices(self, records: dict[str, ChoiceRecord]) -> None:
        self.storage.write_json({scene: r.model_dump(mode="json") for scene, r in records.items()}, LEDGER_FOLDER,
                                REVIEW)

    def save_characters(self, records: dict[str, CharacterRecord]) -> None:
        self.storage.write_json({name: r.model_dump() for name, r in records.items()}, LEDGER_FOLDER, CHARACTERS)


@dataclass(frozen=True)
class SceneInputs:
    """What shapes a scene's video besides the scene itself: its images by content (sha256), the format they
    are sent in, the provider, and the ids of its characters (a character made from a new clip is new)."""

    provider: str
    reference_format: str
    characters: tuple[str, ...] = ()
    image: str | None = None
    last_image: str | None = None
    subjects: tuple[str, ...] = ()

    @classmethod
    def of(cls, images: SceneImages, provider: str, reference_format: str, characters: list[str]) -> SceneInputs:
        return cls(provider, reference_format, tuple(characters),
                   image=sha256(images.first.data) if images.first else None,
                   last_image=sha256(images.last.data) if images.last else None,
                   subjects=tuple(sha256(subject.data) for subject in images.subjects))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(shape: object) -> str:
    return sha256(json.dumps(shape, sort_keys=True).encode())


def fingerprint(scene: ResolvedScene, inputs: SceneInputs) -> str:
    """Everything that shapes a scene's output. (What a scene does not set, a last image say, hashes as it did
    before that setting existed: its ledger still resumes.)"""
    unset = {name for name in ("audio", "seed", "negative", "subjects") if getattr(scene, name) in (None, [])}
    shape = scene.model_dump(mode="json", exclude={"id", "image", "last_image", "characters", "notes", "shot", "take",
                                                "provider", "route", "request",
                                                *unset})
    shape.update(image_sha256=inputs.image, reference_format=inputs.reference_format if inputs.image else None,
                 provider=inputs.provider, characters=list(inputs.characters))
    if inputs.last_image is not None:
        shape.update(last_image_sha256=inputs.last_image, reference_format=inputs.reference_format)
    if inputs.subjects:
        shape.update(subjects=list(inputs.subjects))
    return _digest(shape)


def request_fingerprint(scene: ResolvedScene, inputs: SceneInputs) -> str:
    """What the scene asks for wherever it is made (see `ResolvedScene.request`), with its images by content, its
    characters and its take's seed: a scene finished on any route is taken as it is while this is unchanged, even
    when the plan's routes changed."""
    return _digest({"request": scene.request, "seed": scene.seed, "image": inputs.image,
                    "last_image": inputs.last_image, "subjects": list(inputs.subjects),
                    "characters": list(inputs.characters)})


def step_fingerprints(scene: ResolvedScene, inputs: SceneInputs) -> list[str]:
    """One fingerprint per step (the clip, each extension or continuation, each revision), each over the step's
    own request and the fingerprint of the step before: a step is unchanged exactly when it and every step
    before it are. What the whole scene shares (model, size, sound, images, ...) comes first."""
    shared = scene.model_dump(mode="json", exclude={"id", "prompt", "image", "last_image", "characters", "notes",
                                                   "provider", "route", "request",
                                                   "segments", "revisions", "subjects", "shot", "take"})
    shared.update(image_sha256=inputs.image, reference_format=inputs.reference_format, provider=inputs.provider,
                  characters=list(inputs.characters), subjects=list(inputs.subjects))
    before, steps = _digest(shared), []
    for number, segment in enumerate(scene.segments):
        shape: dict[str, object] = {"after": before, "segment": segment.model_dump(mode="json")}
        if number == len(scene.segments) - 1 and inputs.last_image is not None:
            shape["lands_on"] = inputs.last_image  # the last clip lands on the last image
        before = _digest(shape)
        steps.append(before)
    for revision in scene.revisions:
        before = _digest({"after": before, "revision": revision.model_dump(mode="json")})
        steps.append(before)
    return steps

"""The job ledger: which paid jobs exist for which scene, kept durably beside the outputs.

A job id is recorded the moment the provider returns it, before any waiting, so a run that dies
can be resumed without paying twice. Each scene has its own small JSON file, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from .errors import StorageError
from .plans import ResolvedScene
from .results import FileRecord
from .storage import Storage

LEDGER_FOLDER = "ledger"
Record = TypeVar("Record", bound=BaseModel)


class JobRecord(BaseModel):
    step: int = Field(description="0: the create; k: the k-th extension.")
    id: str | None = Field(default=None, description="None while `submitting`: the answer has not arrived yet.")
    status: Literal["submitting", "created", "completed", "failed"] = "submitting"
    error: str | None = None
    transient: bool = Field(default=False, description="A failed job whose cause may pass: created again.")
    recorded_at: float = Field(default_factory=time.time)


class SceneEntry(BaseModel):
    scene: str
    fingerprint: str = Field(description="Hash of everything that shapes the scene's output.")
    status: Literal["rendering", "completed", "failed"] = "rendering"
    jobs: list[JobRecord] = Field(default_factory=list)
    files: dict[str, FileRecord] = Field(default_factory=dict)
    error: str | None = None
    transient: bool = False

    def current(self, step: int) -> JobRecord | None:
        """The latest job for `step`, if any."""
        return next((j for j in reversed(self.jobs) if j.step == step), None)


class CharacterRecord(BaseModel):
    id: str = Field(description="The provider's character id.")
    clip_sha256: str = Field(description="Which clip it was made from: another clip makes another character.")


CHARACTERS = "characters.json"
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
        if not self.storage.exists(LEDGER_FOLDER, CHARACTERS):
            return {}
        try:
            raw = json.loads(self.storage.read_bytes(LEDGER_FOLDER, CHARACTERS))
            return {name: CharacterRecord.model_validate(record) for name, record in raw.items()}
        except (ValueError, ValidationError):
            return {}

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

    def save_characters(self, records: dict[str, CharacterRecord]) -> None:
        self.storage.write_json({name: r.model_dump() for name, r in records.items()}, LEDGER_FOLDER, CHARACTERS)


def fingerprint(scene: ResolvedScene, image: bytes | None, reference_format: str, provider: str,
                character_ids: list[str], last_image: bytes | None = None, subjects: list[bytes] | None = None) -> str:
    """Everything that shapes a scene's output; a change means the scene is rendered anew. A character
    made from a new clip has a new id, so its scenes are rendered anew too. (What a scene without a last
    image hashes is what it hashed before there were last images: its ledger still resumes.)"""
    # (what a scene does not set hashes as it did before those settings existed: its ledger still resumes)
    unset = {name for name in ("audio", "seed", "negative", "subjects") if getattr(scene, name) in (None, [])}
    shape = scene.model_dump(mode="json", exclude={"id", "image", "last_image", "characters", "notes", *unset})
    shape.update(image_sha256=hashlib.sha256(image).hexdigest() if image is not None else None,
                 reference_format=reference_format if image is not None else None, provider=provider,
                 characters=character_ids)
    if last_image is not None:
        shape.update(last_image_sha256=hashlib.sha256(last_image).hexdigest(), reference_format=reference_format)
    if subjects:
        shape.update(subjects=[hashlib.sha256(data).hexdigest() for data in subjects])
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()

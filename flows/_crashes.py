"""A run killed outright (SIGKILL) leaves its flow run RUNNING forever; the next run of the plan closes it."""

from __future__ import annotations

import json
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.states import Crashed

from reelflow import StorageError
from reelflow.ledger import LEDGER_FOLDER
from reelflow.storage import Storage

OWNER = "run.json"


def take_over(storage: Storage) -> None:
    """Record this flow run as the plan's owner; a previous owner still marked running is marked Crashed."""
    current = str(flow_run.id)
    previous = _previous_owner(storage)
    if previous and previous != current:
        _close_if_running(UUID(previous), current)
    storage.write_json({"flow_run_id": current}, LEDGER_FOLDER, OWNER)


def _previous_owner(storage: Storage) -> str | None:
    if not storage.exists(LEDGER_FOLDER, OWNER):
        return None
    try:
        return str(json.loads(storage.read_bytes(LEDGER_FOLDER, OWNER))["flow_run_id"])
    except (StorageError, ValueError, KeyError):
        return None


def _close_if_running(previous: UUID, current: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            state = client.read_flow_run(previous).state
        except ObjectNotFound:
            return  # recorded by another Prefect server: nothing to close here
        if state is not None and not state.is_final():
            client.set_flow_run_state(previous, Crashed(
                message=f"The process running this flow run stopped without reporting; resumed by {current}."),
                force=True)
            get_run_logger().warning("marked the earlier flow run %s of this plan as crashed", previous)

"""One run per output: the plan's run holds the output's lease. A run killed outright (SIGKILL) leaves its
flow run RUNNING forever and its lease unrenewed; the next run takes the lease over and closes that flow run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.states import Crashed

from reelflow import Settings
from reelflow.lease import Holder, Lease, holding
from reelflow.storage import Storage


@contextlib.contextmanager
def owning(storage: Storage, settings: Settings, wait: bool) -> Iterator[Lease]:
    """This flow run holds the output of `storage` (a plan's folder) for the block."""
    current = str(flow_run.id)
    me = Holder.me(current, flow_run.name, settings.lease_seconds)
    with holding(storage, me, settings.lease_seconds, wait) as lease:
        previous = lease.previous
        if previous is not None and previous.flow_run_id is not None and previous.flow_run_id != current:
            get_run_logger().warning("took over %s from a run that stopped renewing its lease (%s)",
                                     storage.location(), previous.describe())
            _close_if_running(UUID(previous.flow_run_id), current)
        yield lease
        if lease.lost:
            get_run_logger().error("this run stalled past its lease on %s and another run took it over",
                                   storage.location())


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

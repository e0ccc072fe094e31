"""One run per output: a second run on the same output stops at once naming the first (or waits for it with
--wait), no job is paid twice, and the output of a run that was killed is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reelflow.lease import Holder, Lease, OutputBusy, acquire
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tests.pipeline.test_crash import PLAN

PLAN_JOBS = {"create": 3, "extension": 1}


@pytest.fixture(params=["file", "s3"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A plan's folder on a local disk, and on S3 (moto), where a lease must hold across machines."""
    if request.param == "file":
        return Storage(f"file://{tmp_path}").child("plan")
    return Storage(request.getfixturevalue("s3_output"), {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}).child("p")


def someone(name: str, seconds: float = 30) -> Holder:
    return Holder.me(f"id-{name}", name, seconds).model_copy(update={"host": f"machine-{name}"})


def contended(folder: Storage, runs: int) -> tuple[list[Lease], list[str]]:
    """`runs` runs (threads, each a holder of its own) that find `folder` free at once: the leases they got, and
    what the others were told."""
    start, won, refused = threading.Barrier(runs), list[Lease](), list[str]()

    def contend(name: str) -> None:
        start.wait()
        try:
            won.append(acquire(folder, someone(name), 30, wait=False))
        except OutputBusy as e:
            refused.append(str(e))

    threads = [threading.Thread(target=contend, args=(f"run{n}",)) for n in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, refused


def test_of_runs_that_find_the_output_free_together_exactly_one_holds_it(folder: Storage) -> None:
    won, refused = contended(folder, 6)
    assert len(won) == 1 and len(refused) == 5
    holder = won[0].holder
    assert all(f"host {holder.host}, pid {holder.pid}, Prefect flow run {holder.flow_run_name}" in line
               for line in refused)
    won[0].release()
    acquire(folder, someone("after"), 30, wait=False).release()  # released: free at once


def test_a_lease_no_longer_renewed_is_taken_over_once_it_expired(folder: Storage) -> None:
    stalled = acquire(folder, someone("stalled", 2), 2, wait=False)
    stalled._stop.set()  # its machine is gone: no more renewals
    began = time.monotonic()
    with pytest.raises(OutputBusy):
        acquire(folder, someone("next", 2), 2, wait=False)
    taken = acquire(folder, someone("next", 2), 2, wait=True)
    assert time.monotonic() - began <= 2 + 1
    assert taken.previous is not None and taken.previous.flow_run_name == "stalled"
    taken.release()


def test_a_held_lease_is_renewed_past_its_length(folder: Storage) -> None:
    held = acquire(folder, someone("long", 1.5), 1.5, wait=False)
    time.sleep(3)
    with pytest.raises(OutputBusy):
        acquire(folder, someone("next", 1.5), 1.5, wait=False)
    held.release()
    assert not held.lost


def start_run(plan: Path, output: Path, sandbox: RunningSandbox, *options: str,
              **settings: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url,
           "REELFLOW_PROVIDER": "sandbox", "REELFLOW_POLL_MIN_SECONDS": "0.2",
           **{f"REELFLOW_{name.upper()}": value for name, value in settings.items()}}
    return subprocess.Popen([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{output}",
                             *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    return plan


@pytest.mark.parametrize("apart", [0, 2])
def test_a_second_run_on_the_same_output_stops_naming_the_first_and_nothing_is_paid_twice(
        apart: float, plan_file: Path, tmp_path: Path, local_prefect_server: str) -> None:
    with run_sandbox(job_seconds=3) as sandbox:
        first = start_run(plan_file, tmp_path / "out", sandbox)
        time.sleep(apart)
        second = start_run(plan_file, tmp_path / "out", sandbox)
        outcomes = {run.pid: (run.communicate(timeout=600), run.returncode) for run in (first, second)}
        jobs = sandbox.stats()["jobs_by_kind"]
    assert jobs == PLAN_JOBS
    (winner,) = [pid for pid, (_, code) in outcomes.items() if code == 0]
    (loser,) = [pid for pid, (_, code) in outcomes.items() if code != 0]
    line = outcomes[loser][0][1].strip().splitlines()[-1]
    assert line.startswith(f"error: file://{tmp_path}/out/crash is being rendered by another run (host ")
    assert f", pid {winner}, Prefect flow run " in line and "(`reelflow run --wait` waits for it)" in line


def test_with_wait_the_second_run_waits_and_then_pays_nothing(plan_file: Path, tmp_path: Path,
                                                               local_prefect_server: str) -> None:
    with run_sandbox(job_seconds=2) as sandbox:
        first = start_run(plan_file, tmp_path / "out", sandbox)
        while not (tmp_path / "out" / "crash" / "ledger" / "lease").exists():
            assert first.poll() is None, first.communicate()
            time.sleep(0.1)
        second = start_run(plan_file, tmp_path / "out", sandbox, "--wait")
        (_, first_err), (second_out, second_err) = first.communicate(timeout=600), second.communicate(timeout=600)
        assert (first.returncode, second.returncode) == (0, 0), (first_err, second_err)
        assert sandbox.stats()["jobs_by_kind"] == PLAN_JOBS
    assert "4 jobs made by earlier runs on this output were reused, not paid again" in second_out


def test_after_a_sigkill_of_the_owner_the_next_run_takes_over_within_the_lease(
        plan_file: Path, tmp_path: Path, local_prefect_server: str) -> None:
    with run_sandbox(job_seconds=10) as sandbox:
        owner = start_run(plan_file, tmp_path / "out", sandbox, lease_seconds="5")
        lease = tmp_path / "out" / "crash" / "ledger" / "lease" / "1.json"
        while sandbox.stats()["jobs_by_kind"].get("create", 0) < 3:
            assert owner.poll() is None, owner.communicate()
            time.sleep(0.1)
        os.killpg(owner.pid, signal.SIGKILL)
        owner.communicate()
        # as from another machine: its lease is not renewed, and it may still be there
        held = Holder.model_validate_json(lease.read_text()).model_copy(update={"host": "another-machine"})
        lease.write_text(held.model_dump_json())
        taker = start_run(plan_file, tmp_path / "out", sandbox, "--wait", lease_seconds="5")
        while not (lease.parent / "2.json").exists():
            assert taker.poll() is None, taker.communicate()
            time.sleep(0.1)
        took_over_at = time.time()
        _, stderr = taker.communicate(timeout=600)
        assert taker.returncode == 0, stderr
        assert sandbox.stats()["jobs_by_kind"] == PLAN_JOBS
    began_waiting = Holder.model_validate_json((lease.parent / "2.json").read_text()).started_at
    # once the killed owner's lease ran out, or the taker began to wait for it, if later; with a look every 1.7 s
    assert took_over_at <= max(held.expires_at, began_waiting) + 2

"""The ledger is the jobs' state machine: every move of a job is one of its methods, legal only from the states
its table lists; `needs_new_job` is the one rule for paying for a step again; and no other module assigns a
job's or a scene's status."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from reelflow.ledger import MOVES, JobRecord, JobStatus, LedgerStateError, SceneEntry, needs_new_job

REPO = Path(__file__).resolve().parent.parent
STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)


def job(status: JobStatus, transient: bool = False) -> JobRecord:
    return JobRecord(step=0, id=None if status == "submitting" else "job-1", status=status, transient=transient)


@pytest.mark.parametrize(("status", "transient", "retry_failed", "pays"), [
    ("submitting", False, False, False),  # being sent, or sent by a run that stopped: asked after, never resent
    ("submitting", False, True, False),
    ("created", False, True, False),  # being made: waited for
    ("completed", False, True, False),  # made: its files fetched
    ("unknown", False, True, False),  # its answer lost: may exist and be paid; only the user resolves it
    ("expired", False, False, True),  # its files are gone: only a new job makes them
    ("failed", True, False, True),  # a cause that may pass
    ("failed", False, False, False),  # a refusal: not paid again unasked
    ("failed", False, True, True),
    ("gone", False, False, False),  # the provider forgot it: a new job is the user's decision
    ("gone", False, True, True),
    ("rejected", False, False, True),  # made, but its take failed the checks: a retake is a new job
])
def test_a_step_pays_for_a_new_job_only_when_the_rule_says(status: JobStatus, transient: bool, retry_failed: bool,
                                                          pays: bool) -> None:
    assert needs_new_job(job(status, transient), retry_failed) is pays


def test_a_step_without_a_job_pays_for_one() -> None:
    assert needs_new_job(None, retry_failed=False)


def test_every_status_is_in_the_table_and_every_rule_covers_it() -> None:
    assert set(MOVES) == set(STATUSES)
    assert all(targets <= set(STATUSES) for targets in MOVES.values())


MOVED_BY = {  # each move of the state machine, as the ledger's methods make it
    "created": lambda record: record.created("job-2"),
    "completed": lambda record: record.finished(expires_at=None, billed_usd=0.4),
    "failed": lambda record: record.failed("refused", may_pass=False),
    "unknown": lambda record: record.lost("its answer was lost"),
    "gone": lambda record: record.forgotten("404", free=False),
    "expired": lambda record: record.expired(),
    "rejected": lambda record: record.rejected(),
}


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("target", sorted(MOVED_BY))
def test_a_job_moves_only_where_the_table_lets_it(start: JobStatus, target: str) -> None:
    record = job(start)
    if target in MOVES[start]:
        MOVED_BY[target](record)
        assert record.status == target
    else:
        with pytest.raises(LedgerStateError):
            MOVED_BY[target](record)
        assert record.status == start


def test_an_adopted_job_is_created_with_its_error_cleared_and_its_time_renewed() -> None:
    record = JobRecord(step=0, status="unknown", error="lost", recorded_at=0.0)
    record.adopted("job-9")
    assert (record.status, record.id, record.error) == ("created", "job-9", None) and record.recorded_at > 0
    with pytest.raises(LedgerStateError):
        job("completed").adopted("job-9")  # a made job is no step to adopt for


def test_only_an_intent_is_withdrawn() -> None:
    entry = SceneEntry(scene="a", fingerprint="f", steps=["s0"])
    intent = entry.intend(0, 0.4)
    entry.withdraw(intent)
    assert entry.jobs == []
    made = entry.intend(0, 0.4)
    made.created("job-1")
    with pytest.raises(LedgerStateError):
        entry.withdraw(made)


def test_a_retake_rejects_the_take_s_jobs_and_its_steps_get_new_ones_recorded_first() -> None:
    entry = SceneEntry(scene="a", fingerprint="f", steps=["s0", "s1"])
    for step in (0, 1):
        made = entry.intend(step, 0.4)
        made.created(f"job-{step}")
        made.finished(expires_at=None, billed_usd=None)
    take = entry.retaken({})
    assert (take.number, take.jobs) == (1, ["job-0", "job-1"])
    assert [job.status for job in entry.jobs] == ["rejected", "rejected"]
    assert all(needs_new_job(entry.current(step), retry_failed=False) for step in (0, 1))
    again = entry.intend(0, 0.4)  # the retake's first job: an intent, before anything is sent
    assert entry.current(0) is again and again.status == "submitting"


TARGET = r"[\w.\[\]]+"  # a name, an attribute, an item
ASSIGNS_A_STATUS = re.compile(rf"^\s*(?:{TARGET}\s*,\s*)*[\w.\[\]]*\.status\s*(?:,\s*{TARGET}\s*)*=(?!=)")


HTTP_STATUSES = ("reelflow/errors.py", "reelflow/sandbox/", "reelflow/testing/")  # an answer's status, not a job's


def test_no_module_but_the_ledger_assigns_a_jobs_or_a_scenes_status() -> None:
    sources = [path for folder in ("reelflow", "flows", "tasks") for path in (REPO / folder).rglob("*.py")
               if path.relative_to(REPO).as_posix() != "reelflow/ledger.py"
               and not path.relative_to(REPO).as_posix().startswith(HTTP_STATUSES)]
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}" for path in sources
             for number, line in enumerate(path.read_text().splitlines(), start=1) if ASSIGNS_A_STATUS.search(line)]
    assert not found, found

"""The fault matrix, for every built-in dialect through its own SDK: a one-scene plan rendered by `reelflow run`
while the wire between reelflow and the sandbox posing as the provider fails once, in one way (reelflow.testing's
CASES: creates answered 5xx after the provider made the job, lost, dropped, timed out; status checks and result
fetches answered 5xx or 404; downloads answered 403 or 410, cut short, reset). Under every case: the provider made
no more jobs than were delivered or left "unknown, may be paid"; the delivered video is the one made for the
scene's request; the exit code says whether the scene was rendered; one line for the user, no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelflow.cli import app
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from reelflow.testing import CASES, FaultCase, ledgered, sha256, wire_faults
from tests.pipeline.conftest import FAST

PROFILES = ["sandbox", "openrouter", "google-vertex", "fal"]  # one profile of each built-in dialect


@pytest.fixture(params=PROFILES)
def pose(request: pytest.FixtureRequest, prefect_harness: None) -> Iterator[RunningSandbox]:
    with run_sandbox(profile=request.param, job_seconds=0.2) as running:
        yield running


def lists_jobs(pose: RunningSandbox) -> bool:
    return pose.sandbox.profile.list_jobs


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_no_fault_on_the_wire_pays_twice_or_delivers_another_video(
        case: FaultCase, pose: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = pose.sandbox.pose.fault_routes
    faults = case.faults(routes)
    if faults is None:
        pytest.skip(f"{pose.sandbox.profile.api} has no such request")
    prompt = f"a lighthouse in a storm ({case.name})"
    plan = tmp_path / "matrix.json"
    plan.write_text(json.dumps({"name": "matrix", "scenes": [{"id": "shot", "prompt": prompt}]}))
    output = f"memory://matrix-{abs(hash(case.name))}"
    with wire_faults(pose.base_url, *faults) as wire:
        settings = {"REELFLOW_PROVIDER": pose.sandbox.profile.name, "REELFLOW_API_KEY": pose.api_key,
                    "REELFLOW_BASE_URL": wire.base_url, **FAST, "REELFLOW_TASK_RETRIES": "4"}
        if case.request_timeout is not None:
            settings["REELFLOW_REQUEST_TIMEOUT_SECONDS"] = str(case.request_timeout)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        done = CliRunner().invoke(app, ["run", str(plan), "--output", output])
        fired = wire.fired()
    assert fired, f"the fault never fired: {[f.describe() for f in wire.faults]}"

    folder = Storage(output).child("matrix")
    left = ledgered(folder.read_bytes, folder.exists, {"shot": 1})
    made = [job for job in pose.sandbox.state.jobs.values() if job.prompt == prompt]
    assert len(made) <= left.delivered_steps + left.unknown_steps, (made, left, done.output)
    for scene, video in left.delivered.items():  # the video of a job made for this scene's request
        assert scene == "shot" and video in {sha256(pose.sandbox.state.get(f"media/{job.id}/video.mp4"))
                                             for job in made if pose.sandbox.state.has(f"media/{job.id}/video.mp4")}
    delivers = case.outcome == "delivered" or lists_jobs(pose)
    assert (done.exit_code, bool(left.delivered)) == ((0, True) if delivers else (1, False)), done.output
    assert "Traceback" not in done.output, done.output
    if not delivers:
        failed = [line for line in done.output.splitlines() if line.startswith("scene 'shot' failed")]
        assert len(failed) == 1 and "may have been made" in failed[0], done.output

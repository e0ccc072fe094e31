"""Lost answers on providers that list no jobs: a create whose answer never came is never sent again unasked.
Over a 20-scene soak with the sandbox's `lost` fault (the request is handled, a job may be made, the answer
never arrives), no step is ever paid twice; the steps left unknown are listed by `reelflow jobs`, and resolved
by hand: adopted where the job exists (as a user finds it in the dashboard), made again where it does not."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.render_plan import RenderFailed, render_plan
from reelflow import parse_plan
from reelflow.cli import app
from reelflow.results import SceneResult
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tests.pipeline.conftest import FAST, point_at
from tests.pipeline.test_openrouter import use_openrouter

OUT = "memory://lost"
PLAN = {"name": "soak", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
    {"id": f"shot-{i:02d}", "prompt": f"shot number {i}",
     **({"extensions": [{"prompt": f"and then {i}", "seconds": 4}]} if i % 5 == 0 else {})} for i in range(20)]}


@pytest.fixture(params=["litellm", "openrouter"])
def listless(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
             prefect_harness: None) -> Iterator[RunningSandbox]:
    """A sandbox posing as a provider that lists no jobs, losing one answer in ten (and dropping a few
    requests unanswered before handling them, which the client cannot tell apart)."""
    with run_sandbox(profile=request.param, job_seconds=0.3, faults="lost=0.1,drop=0.03,5xx=0.05", seed=7) as pose:
        if request.param == "openrouter":
            use_openrouter(monkeypatch, pose)
        else:
            point_at(monkeypatch, pose.base_url, pose.api_key)
            monkeypatch.setenv("REELFLOW_PROVIDER", "litellm")
            monkeypatch.setenv("REELFLOW_BASE_URL", pose.base_url)
        for name, value in {**FAST, "REELFLOW_TASK_RETRIES": "8", "REELFLOW_MAX_CONCURRENT": "6"}.items():
            monkeypatch.setenv(name, value)
        yield pose


def made_per_step(pose: RunningSandbox) -> Counter[str]:
    """How many jobs the provider made for each request (each step of the plan has a prompt of its own)."""
    return Counter(job.prompt for job in pose.sandbox.state.jobs.values())


def jobs_command(plan: Path, *options: str) -> str:
    done = CliRunner().invoke(app, ["jobs", str(plan), "--output", OUT, *options])
    assert done.exit_code == 0, done.output
    return done.output


def test_no_step_is_paid_twice_and_the_unknown_ones_are_listed_and_resolved(listless: RunningSandbox,
                                                                             tmp_path: Path) -> None:
    plan_file = tmp_path / "soak.json"
    plan_file.write_text(json.dumps(PLAN))
    with pytest.raises(RenderFailed) as raised:
        render_plan(parse_plan(PLAN), output=OUT)
    assert listless.stats()["faults"].get("lost", 0) >= 2
    assert max(made_per_step(listless).values()) == 1
    unknown = [s for s in raised.value.result.scenes if s.status == "failed"]
    assert unknown and all("lists no jobs" in (s.error or "") for s in unknown)

    listed = jobs_command(plan_file)
    assert f"{len(unknown)} steps are unknown: its create's answer was lost" in listed.replace("\n", " ")
    assert all(s.id in listed for s in unknown)

    before = sum(made_per_step(listless).values())
    with pytest.raises(RenderFailed):  # run again without resolving them: nothing more is paid for them
        render_plan(parse_plan(PLAN), output=OUT)
    assert sum(made_per_step(listless).values()) == before

    for _ in range(8):  # each round resolves the unknown steps; a run may lose new answers, left unknown again
        resolve(unknown, listless, plan_file)
        try:
            final = render_plan(parse_plan(PLAN), output=OUT)
            break
        except RenderFailed as failed:
            unknown = [s for s in failed.result.scenes if s.status == "failed"]
        assert max(made_per_step(listless).values()) == 1
    assert all(scene.status == "completed" for scene in final.scenes)
    assert max(made_per_step(listless).values()) == 1  # adopted where made, made again only where not
    assert sum(made_per_step(listless).values()) == 24  # 20 clips, 4 extensions or continuations


def resolve(unknown: list[SceneResult], pose: RunningSandbox, plan_file: Path) -> None:
    """What a user does: adopt each unknown step's job where the dashboard shows one, make the rest again."""
    made = {job.prompt: job.id for job in pose.sandbox.state.jobs.values()}
    for scene in unknown:
        if (prompt := _unknown_prompt(scene.id)) is not None and prompt in made:
            assert "the next run waits for it" in jobs_command(plan_file, "--adopt", f"{scene.id}={made[prompt]}")
    jobs_command(plan_file, "--retry-unknown")


def _unknown_prompt(scene_id: str) -> str | None:
    """The prompt of the scene's step left unknown, as the provider's dashboard shows it (None: it has none)."""
    entry = json.loads(Storage(OUT).child("soak").read_bytes("ledger", f"{scene_id}.json"))
    step = next((job["step"] for job in entry["jobs"] if job["status"] == "unknown"), None)
    if step is None:
        return None
    number = int(scene_id.removeprefix("shot-"))
    return f"shot number {number}" if step == 0 else f"and then {number}"

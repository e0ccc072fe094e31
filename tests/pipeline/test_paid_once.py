"""Money defects found from outside, each a case that failed before its fix: a chain stitched here edited A -> B -> A
delivers A again; `reelflow jobs --adopt` takes only a job id of the provider's shape that no other step holds
(and fal's bare request id); a recorded job the provider no longer knows says so, with a way out that names its
price; a job id that cannot be recorded is printed; a reference image cut short is refused before any paid
create; what the provider billed is kept and summed beside the estimate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.render_plan import render_plan
from reelflow import StorageError, parse_plan
from reelflow.cli import app
from reelflow.ledger import Ledger
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from reelflow.testing import Fault, wire_faults
from tests.media import video_frames
from tests.pipeline.conftest import FAST
from tests.pipeline.test_openrouter import use_openrouter


@pytest.fixture
def openrouter(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[RunningSandbox]:
    with run_sandbox(profile="openrouter", job_seconds=0.2) as pose:
        use_openrouter(monkeypatch, pose)
        yield pose


def solid(path: Path, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (1280, 720), colour).save(path)
    return str(path)


def first_colour(video: bytes) -> tuple[int, ...]:
    return tuple(int(c) for c in np.asarray(video_frames(video)[0].convert("RGB")).reshape(-1, 3).mean(axis=0))


def run_cli(plan: Path, *options: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, [*options[:1], str(plan), *options[1:]])
    return done.exit_code, done.output


def test_a_chain_stitched_here_edited_a_b_a_starts_on_a_again(openrouter: RunningSandbox, tmp_path: Path) -> None:
    red, blue = solid(tmp_path / "red.png", (220, 20, 20)), solid(tmp_path / "blue.png", (20, 20, 220))

    def rendered(image: str) -> bytes:
        stitched = {"size": "1280x720", "seconds": 4, "model": "kwaivgi/kling-v3.0-std"}  # (no continuation)
        plan = parse_plan({"name": "aba", "defaults": stitched, "scenes": [
            {"id": "shot", "prompt": "a harbour", "image": image,
             "extensions": [{"prompt": "a boat leaves", "seconds": 4}]}]})
        render_plan(plan, output=f"file://{tmp_path / 'out'}")
        return (tmp_path / "out" / "aba" / "shot" / "video.mp4").read_bytes()

    first, second, third = rendered(red), rendered(blue), rendered(red)
    assert first_colour(first)[0] > 150 and first_colour(second)[2] > 150
    assert first_colour(third)[0] > 150, "the third run stitched the blue run's clips under the red run's jobs"


PROMPTS = {"a": "a lighthouse", "b": "a harbour"}
SCENES = [{"id": scene, "prompt": prompt} for scene, prompt in PROMPTS.items()]
PLAN = {"name": "adopt", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": SCENES}


def lost_first_create(pose: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A run whose first create's answer was lost: one scene left unknown, the other rendered. Returns the plan
    file and the output."""
    plan, output = tmp_path / "plan.json", f"file://{tmp_path / 'out'}"
    plan.write_text(json.dumps(PLAN))
    with wire_faults(pose.base_url, Fault(*pose.sandbox.pose.fault_routes.create, "lose")) as wire:
        monkeypatch.setenv("REELFLOW_BASE_URL", wire.base_url)
        monkeypatch.setenv("REELFLOW_MAX_CONCURRENT", "1")
        code, said = run_cli(plan, "run", "--output", output)
    monkeypatch.setenv("REELFLOW_BASE_URL", pose.base_url)
    assert code == 1 and "may have been made" in said, said
    return plan, output


def ledger_of(output: str) -> Ledger:
    return Ledger(Storage(output).child("adopt"))


def test_adopt_refuses_what_is_no_job_id_or_another_steps_and_writes_nothing(
        openrouter: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, output = lost_first_create(openrouter, tmp_path, monkeypatch)
    unknown = next(s for s in ("a", "b") if ledger_of(output).load(s).chain()[0].status == "unknown")  # type: ignore[union-attr]
    other = ({"a", "b"} - {unknown}).pop()
    others_job = ledger_of(output).load(other).chain()[0].id  # type: ignore[union-attr]
    before = {s: ledger_of(output).load(s) for s in ("a", "b")}
    for given, said in (("x" * 10_000, "is not a job id"), ("../x", "is not a job id"),
                        (str(others_job), f"is already scene '{other}'")):
        code, output_text = run_cli(plan, "jobs", "--output", output, "--adopt", f"{unknown}={given}")
        assert code == 2 and said in output_text and "Traceback" not in output_text, output_text
        assert len(output_text.strip().splitlines()) == 1, output_text
    assert {s: ledger_of(output).load(s) for s in ("a", "b")} == before

    made = next(job for job in openrouter.sandbox.state.jobs.values() if job.prompt == PROMPTS[unknown])
    code, said = run_cli(plan, "jobs", "--output", output, "--adopt", f"{unknown}={made.id}")
    assert code == 0 and "the next run waits for it" in said, said
    code, said = run_cli(plan, "run", "--output", output)
    assert code == 0, said
    assert openrouter.stats()["jobs"] == 2  # each scene paid once


def test_fals_bare_request_id_is_adopted_with_the_scenes_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 prefect_harness: None) -> None:
    with run_sandbox(profile="fal", job_seconds=0.2) as fal:
        for name, value in {"REELFLOW_PROVIDER": "fal", "FAL_KEY": "fal-key-id:secret", **FAST}.items():
            monkeypatch.setenv(name, value)
        plan, output = lost_first_create(fal, tmp_path, monkeypatch)
        unknown = next(s for s in ("a", "b") if ledger_of(output).load(s).chain()[0].status == "unknown")  # type: ignore[union-attr]
        made = next(job for job in fal.sandbox.state.jobs.values() if job.prompt == PROMPTS[unknown])
        code, said = run_cli(plan, "jobs", "--output", output, "--adopt", f"{unknown}={made.id}")  # a bare UUID
        assert code == 0 and f"{made.endpoint}/requests/{made.id}" in said, said
        code, said = run_cli(plan, "run", "--output", output)
        assert code == 0 and "Traceback" not in said, said
        assert fal.stats()["jobs"] == 2


def test_a_job_the_provider_no_longer_knows_is_said_with_a_way_out_and_its_price(
        openrouter: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, output = tmp_path / "plan.json", f"file://{tmp_path / 'out'}"
    plan.write_text(json.dumps({**PLAN, "scenes": SCENES[:1]}))
    assert run_cli(plan, "run", "--output", output)[0] == 0
    ledger = ledger_of(output)
    entry = ledger.load("a")
    assert entry is not None
    entry.status, entry.jobs[0].status = "rendering", "created"  # as a run left it, waiting for its job
    ledger.save(entry)
    with run_sandbox(profile="openrouter", job_seconds=0.2) as forgetful:  # another server: it knows no such job
        monkeypatch.setenv("REELFLOW_BASE_URL", forgetful.base_url)
        code, said = run_cli(plan, "run", "--output", output)
        assert code == 1 and "no longer knows job" in said and "--retry-failed` makes it again ($0.40" in said, said
        assert "reused, not paid again" not in said and forgetful.stats()["jobs"] == 0
        code, said = run_cli(plan, "run", "--output", output, "--retry-failed")
        assert code == 0 and forgetful.stats()["jobs"] == 1, said


def test_a_job_id_that_cannot_be_recorded_is_printed_and_adopted_later(
        openrouter: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, output = tmp_path / "plan.json", f"file://{tmp_path / 'out'}"
    plan.write_text(json.dumps({**PLAN, "scenes": SCENES[:1]}))
    saved = Ledger.save

    def full_disk(self: Ledger, entry: object) -> None:
        if any(job.status == "created" for job in getattr(entry, "jobs", [])):
            raise StorageError("cannot write ledger/a.json: [Errno 28] No space left on device", transient=False)
        saved(self, entry)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "save", full_disk)
    code, said = run_cli(plan, "run", "--output", output)
    monkeypatch.setattr(Ledger, "save", saved)
    (job,) = openrouter.sandbox.state.jobs.values()
    assert code == 1 and f"--adopt a={job.id}" in said, said
    assert run_cli(plan, "jobs", "--output", output, "--adopt", f"a={job.id}")[0] == 0
    code, said = run_cli(plan, "run", "--output", output)
    assert code == 0 and openrouter.stats()["jobs"] == 1, said


def test_a_reference_image_cut_short_is_refused_before_any_paid_create(
        openrouter: RunningSandbox, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.linear_gradient("L").resize((1280, 720)).convert("RGB").save(whole, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # its header still says 1280x720
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "cut", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "a", "prompt": "a harbour", "image": str(cut), "last_image": str(whole)}]}))
    code, said = run_cli(plan, "validate")
    assert code == 2 and "scene 'a': image:" in said and "cut short" in said, said
    code, said = run_cli(plan, "run", "--output", f"file://{tmp_path / 'out'}")
    assert code != 0 and "cut short" in said and "Traceback" not in said, said
    assert openrouter.stats()["jobs"] == 0


def test_what_the_provider_billed_is_kept_per_job_and_summed_beside_the_estimate(
        openrouter: RunningSandbox, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({**PLAN, "name": "billed"}))
    code, said = run_cli(plan, "run", "--output", f"file://{tmp_path / 'out'}")
    assert code == 0, said
    assert openrouter.stats()["jobs"] == 2
    manifest = json.loads((tmp_path / "out" / "billed" / "manifest.json").read_text())
    assert manifest["paid"] == {"jobs": 2, "list_usd": 0.8, "billed_usd": 0.8, "billed_jobs": 2, "unknown_jobs": 0}
    assert "paid 2 jobs, $0.80 at list price (billed $0.80 for 2 of them); estimated $0.80" in said
    entry = json.loads((tmp_path / "out" / "billed" / "ledger" / "a.json").read_text())
    assert entry["jobs"][0]["billed_usd"] == 0.4 and entry["jobs"][0]["list_usd"] == 0.4
    assert "billed $0.80" in (tmp_path / "out" / "billed" / "report.html").read_text()

"""Editing a rendered plan pays only for what changed: each step of a scene (its clip, each extension or
continuation, each revision) is reused while it and every step before it are unchanged, counted here in the
jobs the sandbox was paid for; the estimate says the same before anything is paid."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.render_plan import render_plan
from reelflow import Settings, parse_plan, validate_plan
from reelflow.cli import app
from reelflow.costs import Estimate, estimate
from reelflow.providers import active_profile
from reelflow.reuse import planned_reuse
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tests.pipeline.conftest import point_at
from tests.pipeline.test_openrouter import use_openrouter

OUT = "memory://out"
STEPS = [{"prompt": "the boat turns", "seconds": 4}, {"prompt": "it heads out", "seconds": 4},
         {"prompt": "it reaches the open sea", "seconds": 4}]


def plan_with(extensions: int, **changes: Any) -> dict[str, Any]:
    """A two-scene plan whose scene 'long' is a clip and its first `extensions` extensions."""
    plan: dict[str, Any] = {"name": "edits", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "long", "prompt": "a harbour at dawn", "seconds": 4, "extensions": copy.deepcopy(STEPS[:extensions])},
        {"id": "short", "prompt": "gulls over the pier", "seconds": 4}]}
    plan.update(changes)
    return plan


def paid(sandbox: RunningSandbox) -> int:
    return int(sandbox.stats()["jobs"])


def planned(plan: dict[str, Any]) -> Estimate:
    """What `reelflow estimate --output memory://out` says the plan costs now."""
    settings = Settings()
    profile = active_profile(settings)
    loaded = parse_plan(plan)
    scenes = validate_plan(loaded, profile)
    folder = Storage(OUT, settings.storage_options).child(loaded.name)
    return estimate(loaded, scenes, profile, settings, planned_reuse(loaded, scenes, folder, settings))


def rendered_then(first: dict[str, Any], then: dict[str, Any], sandbox: RunningSandbox) -> tuple[Estimate, int]:
    """Render `first`, then `then` on the same output: its estimate and the jobs it was paid."""
    render_plan(parse_plan(first), output=OUT)
    before, costs = paid(sandbox), planned(then)
    render_plan(parse_plan(then), output=OUT)
    return costs, paid(sandbox) - before


def test_a_step_added_to_a_finished_scene_costs_one_job(provider: RunningSandbox) -> None:
    costs, spent = rendered_then(plan_with(2), plan_with(3), provider)
    assert spent == 1
    assert (costs.cost_of("long").jobs, costs.cost_of("long").reused, costs.cost_of("short").jobs) == (1, 3, 0)
    assert costs.total_usd == round(4 * costs.cost_of("long").price_per_second, 4)
    before = paid(provider)
    again = render_plan(parse_plan(plan_with(3)), output=OUT)
    assert paid(provider) == before and again.scenes[0].reused_jobs == 4  # and now it is finished


def test_changing_step_two_of_four_costs_three_jobs(provider: RunningSandbox) -> None:
    changed = plan_with(3)
    changed["scenes"][0]["extensions"][0]["prompt"] = "the boat turns the other way"
    costs, spent = rendered_then(plan_with(3), changed, provider)
    assert spent == 3 and costs.cost_of("long").jobs == 3 and costs.cost_of("long").reused == 1


def test_what_does_not_shape_the_pixels_costs_nothing(provider: RunningSandbox) -> None:
    render_plan(parse_plan(plan_with(2, assemble=False)), output=OUT)
    reordered = plan_with(2, budget_usd=50, assemble=True)
    reordered["scenes"].reverse()
    before = dict(provider.stats()["requests"])
    costs = planned(reordered)
    result = render_plan(parse_plan(reordered), output=OUT)
    assert provider.stats()["requests"] == before  # not even a status request
    assert costs.total_usd == 0 and result.reel is not None and [s.reused_jobs for s in result.scenes] == [1, 3]


def test_a_revision_added_to_a_finished_scene_costs_one_revision_job(provider: RunningSandbox) -> None:
    revised = plan_with(1)
    revised["scenes"][0]["revisions"] = [{"edit": "make it dusk"}]
    before = dict(provider.stats()["jobs_by_kind"])
    costs, spent = rendered_then(plan_with(1), revised, provider)
    made = {kind: n - before.get(kind, 0) for kind, n in provider.stats()["jobs_by_kind"].items()}
    assert spent == 1 and made["edit"] == 1 and costs.cost_of("long").jobs == 1


@pytest.fixture
def expiring(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[RunningSandbox]:
    """A sandbox whose videos can be downloaded for 3 s only."""
    with run_sandbox(job_seconds=0.2, asset_ttl_seconds=3) as sandbox:
        point_at(monkeypatch, sandbox.base_url, sandbox.api_key)
        yield sandbox


def test_after_the_provider_expired_the_videos_an_edit_costs_what_the_estimate_said(
        expiring: RunningSandbox) -> None:
    render_plan(parse_plan(plan_with(2)), output=OUT)
    time.sleep(3.5)
    costs, before = planned(plan_with(3)), paid(expiring)
    assert costs.cost_of("long").jobs == 4 and any("gone from the provider" in n for n in costs.cost_of("long").notes)
    assert costs.cost_of("short").jobs == 0  # finished, its files kept here: nothing to fetch
    render_plan(parse_plan(plan_with(3)), output=OUT)
    assert paid(expiring) - before == sum(scene.jobs for scene in costs.scenes) == 4


def test_a_chain_stitched_here_continues_from_its_kept_clips_after_they_expired(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    stitched = {"size": "1280x720", "model": "kwaivgi/kling-v3.0-std"}  # a model that does not continue its videos
    with run_sandbox(profile="openrouter", job_seconds=0.2, asset_ttl_seconds=3) as pose:
        use_openrouter(monkeypatch, pose)
        render_plan(parse_plan(plan_with(1, defaults=stitched)), output=OUT)
        time.sleep(3.5)
        costs, before = planned(plan_with(2, defaults=stitched)), paid(pose)
        result = render_plan(parse_plan(plan_with(2, defaults=stitched)), output=OUT)
        assert paid(pose) - before == costs.cost_of("long").jobs == 1
        assert result.scenes[0].reused_jobs == 2 and result.scenes[0].seconds == 12


def test_a_provider_that_lost_the_videos_it_did_not_say_would_expire_gets_the_chain_made_again_in_the_same_run(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    with run_sandbox(job_seconds=0.2) as first:
        point_at(monkeypatch, first.base_url, first.api_key)
        render_plan(parse_plan(plan_with(1)), output=OUT)
    with run_sandbox(job_seconds=0.2) as forgetful:  # knows none of the first one's videos
        point_at(monkeypatch, forgetful.base_url, forgetful.api_key)
        result = render_plan(parse_plan(plan_with(2)), output=OUT)
        made = forgetful.stats()["jobs_by_kind"]
    assert [scene.status for scene in result.scenes] == ["completed", "completed"]
    assert made == {"create": 1, "extension": 2}  # 'long' from its start; 'short' kept here, untouched
    assert [scene.reused_jobs for scene in result.scenes] == [0, 1] and result.scenes[0].seconds == 12


def test_the_estimate_and_the_dry_run_say_what_is_reused_before_anything_is_paid(provider: RunningSandbox,
                                                                                  tmp_path: Path) -> None:
    render_plan(parse_plan(plan_with(2)), output=OUT)
    plan_file = tmp_path / "edits.json"
    plan_file.write_text(json.dumps(plan_with(3)))
    before = dict(provider.stats()["requests"])
    estimated = CliRunner().invoke(app, ["estimate", str(plan_file), "--output", OUT])
    dry = CliRunner().invoke(app, ["run", str(plan_file), "--output", OUT, "--dry-run"])
    assert (estimated.exit_code, dry.exit_code) == (0, 0), (estimated.output, dry.output)
    assert "in 1 jobs; 4 more made by earlier runs on this output, not paid again" in estimated.output
    assert "scene 'long': 16 s, 1 job to pay (3 more from earlier runs)" in dry.output
    assert dry.output.count("made (or being made) by an earlier run on this output: not sent") == 4
    assert "POST /v1/videos/extensions" in dry.output and provider.stats()["requests"] == before

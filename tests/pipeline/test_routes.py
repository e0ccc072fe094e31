"""Routes across providers (#36), against sandbox poses of OpenRouter and fal configured as a user configures both
(each provider's own key and base URL): a scene leaves its route for the next when the provider refuses it, no
longer offers the model (404), wants payment (402) or has been failing too long, and only then; a create whose
answer was lost stays; what is finished is never paid again when the routes change; the estimate prices each
scene's route and the worst case, and the budget stops a move that would cross it."""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from flows.render_plan import RenderFailed, render_plan
from flows.render_scene import render_scene
from flows.review import PausedReview
from reelflow import PlanError, Settings, UserError, parse_plan
from reelflow.cli import app
from reelflow.costs import estimate
from reelflow.report import markdown_summary, table_rows
from reelflow.results import PlanResult
from reelflow.routes import checked_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from reelflow.testing import FaultMatrix
from tasks.fleet import Fleet, set_up_fleet
from tests.conftest import free_port
from tests.pipeline.conftest import FAST
from tests.pipeline.test_takes import reviewed

OUT = "memory://routes"
OPENROUTER_MODEL = "google/veo-3.1-fast"  # the openrouter profile's default
FAL_MODEL = "kling-v3-pro"  # the fal profile's default


@dataclass
class Poses:
    openrouter: RunningSandbox
    fal: RunningSandbox

    def made(self, pose: RunningSandbox, word: str = "") -> int:
        """Creates the pose made a job for (refused ones included), of prompts with `word`."""
        return sum(1 for job in pose.sandbox.state.jobs.values() if word in job.prompt)


@pytest.fixture
def poses(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[Poses]:
    """Both providers' sandboxes, each with the knobs the test's `knobs` marker gives it, reached through each
    provider's own variables."""
    marker = request.node.get_closest_marker("knobs")
    knobs: dict[str, dict[str, Any]] = marker.kwargs if marker else {}
    with (run_sandbox(profile="openrouter", job_seconds=0.2, **knobs.get("openrouter", {})) as openrouter,
          run_sandbox(profile="fal", job_seconds=0.2, **knobs.get("fal", {})) as fal):
        for name, value in {"OPENROUTER_API_KEY": "sk-or-v1-test", "OPENROUTER_BASE_URL": openrouter.base_url,
                            "FAL_KEY": "fal-key-id:secret", "FAL_QUEUE_URL": fal.base_url, **FAST}.items():
            monkeypatch.setenv(name, value)
        yield Poses(openrouter, fal)


def plan_of(*scenes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "routes", "providers": ["openrouter", "fal"], "defaults": {"size": "1280x720", "seconds": 4},
            "scenes": list(scenes), **fields}


HARBOUR = {"id": "harbour", "prompt": "a harbour at dawn"}
LIGHTHOUSE = {"id": "lighthouse", "prompt": "a lighthouse in a storm"}
MARKET = {"id": "market", "prompt": "a market at noon"}


def rendered(plan: dict[str, Any]) -> PlanResult:
    try:
        return render_plan(parse_plan(plan), output=OUT)
    except RenderFailed as e:
        return e.result


def routes_of(result: PlanResult) -> dict[str, str]:
    return {scene.id: scene.route for scene in result.scenes}


ON_OPENROUTER, ON_FAL = f"openrouter {OPENROUTER_MODEL}", f"fal {FAL_MODEL}"


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_a_scene_refused_on_the_first_route_is_rendered_on_the_next_and_the_others_stay(poses: Poses) -> None:
    plan = plan_of(HARBOUR, LIGHTHOUSE, MARKET)
    result = rendered(plan)
    assert [scene.status for scene in result.scenes] == ["completed"] * 3
    assert routes_of(result) == {"harbour": ON_OPENROUTER, "lighthouse": ON_FAL, "market": ON_OPENROUTER}
    assert (poses.made(poses.openrouter, "lighthouse"), poses.made(poses.fal, "lighthouse")) == (1, 1)
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == (3, 1)
    (moved,) = [scene for scene in result.scenes if scene.moves]
    (refused,) = moved.moves
    assert refused.startswith(f"{ON_OPENROUTER} refused it (gen-vid-") and "blocked by our moderation" in refused
    why = f"{refused}; rendered by {ON_FAL}"
    assert moved.routing == why
    folder = Storage(OUT).child("routes")
    manifest = json.loads(folder.read_bytes("manifest.json"))
    assert [scene["moves"] for scene in manifest["scenes"]] == [[], [refused], []]
    assert why in html.unescape(folder.read_bytes("report.html").decode())
    routed = checked_plan(parse_plan(plan), Settings())
    costs = estimate(parse_plan(plan), routed.scenes, routed.profiles, Settings())
    assert [row["route"] for row in table_rows(result, costs)] == [ON_OPENROUTER, why, ON_OPENROUTER]
    assert f"- **lighthouse**: {why}" in markdown_summary(result, costs, {})
    assert result.paid.jobs == 4  # the refused create is paid for, at its list price, and counted


@pytest.mark.knobs(openrouter={"retired": [OPENROUTER_MODEL]})
def test_a_model_retired_on_the_first_route_moves_only_the_scenes_that_asked_for_it(poses: Poses) -> None:
    still_offered = {**MARKET, "model": "google/veo-3.1"}  # (not on fal: this scene has one route)
    result = rendered(plan_of(HARBOUR, LIGHTHOUSE, still_offered))
    assert routes_of(result) == {"harbour": ON_FAL, "lighthouse": ON_FAL, "market": "openrouter google/veo-3.1"}
    assert all(scene.status == "completed" for scene in result.scenes)
    assert "does not offer the model (" in result.scenes[0].moves[0]
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == (1, 2)  # a 404 makes nothing


@pytest.mark.knobs(openrouter={"out_of_credit": True})
def test_an_account_out_of_credit_moves_its_scenes_and_pays_nothing_there(poses: Poses) -> None:
    pinned = {**MARKET, "provider": "fal"}
    result = rendered(plan_of(HARBOUR, pinned))
    assert routes_of(result) == {"harbour": ON_FAL, "market": ON_FAL}
    assert [len(scene.moves) for scene in result.scenes] == [1, 0]
    assert "wants payment (" in result.scenes[0].moves[0]
    assert (poses.made(poses.openrouter), poses.made(poses.fal), result.paid.jobs) == (0, 2, 2)


@pytest.mark.knobs(openrouter={"down_seconds": 600})
def test_an_outage_moves_the_scenes_that_sent_it_nothing_and_a_lost_create_stays(
        poses: Poses, monkeypatch: pytest.MonkeyPatch) -> None:
    """One scene at a time: the first one's create is answered 503 (it may have been made, and OpenRouter lists no
    jobs to tell), so it stays, unknown; the provider has been failing longer than the settings allow by the time
    the others would send theirs, so they go to fal."""
    monkeypatch.setenv("REELFLOW_MAX_CONCURRENT", "1")
    monkeypatch.setenv("REELFLOW_ROUTE_OUTAGE_SECONDS", "0.01")
    result = rendered(plan_of(HARBOUR, LIGHTHOUSE, MARKET))
    first, *others = result.scenes
    assert first.status == "failed" and not first.moves and "may have been made" in (first.error or "")
    assert [(scene.status, scene.route) for scene in others] == [("completed", ON_FAL)] * 2
    assert all("has been failing since" in scene.moves[0] for scene in others)
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == (0, 2)


@pytest.mark.knobs(openrouter={"api_keys": ["sk-or-v1-the-right-one"]})
@pytest.mark.parametrize("trouble", ["the key refused", "no one answers"])
def test_a_provider_that_refuses_the_key_or_cannot_be_reached_moves_its_scenes_and_the_run_goes_on(
        trouble: str, poses: Poses, monkeypatch: pytest.MonkeyPatch) -> None:
    if trouble == "no one answers":
        monkeypatch.setenv("OPENROUTER_BASE_URL", f"http://127.0.0.1:{free_port()}/api/v1")
    pinned = {**MARKET, "provider": "openrouter"}  # (no other route: it fails, alone)
    result = rendered(plan_of(HARBOUR, LIGHTHOUSE, pinned))
    assert [(scene.status, scene.route) for scene in result.scenes] == [
        ("completed", ON_FAL), ("completed", ON_FAL), ("failed", ON_OPENROUTER)]
    said = {"the key refused": "refused the key", "no one answers": "could not be reached"}[trouble]
    assert [scene.moves for scene in result.scenes[:2]] == [[f"{ON_OPENROUTER} {said}"]] * 2
    assert (poses.made(poses.openrouter), poses.made(poses.fal), result.paid.jobs) == (0, 2, 2)


def test_the_cheapest_route_is_tried_first_and_the_estimate_says_the_worst_case(poses: Poses) -> None:
    longer = {**HARBOUR, "seconds": 6}
    routes = [{"provider": "openrouter", "model": "google/veo-3.1"}, "fal"]  # $0.40/s there, kling $0.168/s on fal
    plan = parse_plan(plan_of(longer, LIGHTHOUSE, providers=routes, prefer="cheapest"))
    routed = checked_plan(plan, Settings())
    assert [scene.route for scene in routed.scenes] == ["fal", "fal"]
    assert routed.worst_usd(Settings()) == round(6 * (0.40 + 0.168) + 4 * (0.40 + 0.168), 4)
    listed = checked_plan(plan.model_copy(update={"prefer": "listed"}), Settings())
    assert [scene.route for scene in listed.scenes] == ["openrouter/google/veo-3.1"] * 2


def test_routes_that_cannot_make_a_scene_are_skipped_with_the_reason_and_a_scene_none_can_make_is_refused(
        poses: Poses) -> None:
    wide = {**MARKET, "size": "1920x1080"}  # OpenRouter's veo-3.1-fast makes it; fal's kling does not
    routed = checked_plan(parse_plan(plan_of(HARBOUR, wide)), Settings())
    assert routed.routes_of(routed.scenes[1]) == routed.routes["market"] and len(routed.routes["market"]) == 1
    assert routed.skipped == {"harbour": [], "market": [
        "fal: size: 1920x1080 is not available for kling-v3-pro on fal (choose from 1280x720, 720x1280, 720x720)"]}
    with pytest.raises(PlanError, match=r"scene 'market': no route can make it \(openrouter: size: .*; fal: size"):
        checked_plan(parse_plan(plan_of({**MARKET, "size": "1000x1000"})), Settings())


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_a_budget_the_worst_case_exceeds_stops_before_the_create_that_would_cross_it(
        poses: Poses, tmp_path: Path) -> None:
    budget = 4 * 0.10 + 4 * 0.10  # both scenes on OpenRouter; the refused one's move to fal ($0.672) would cross it
    (tmp_path / "plan.json").write_text(json.dumps(plan_of(HARBOUR, LIGHTHOUSE, budget_usd=budget)))
    done = CliRunner().invoke(app, ["run", str(tmp_path / "plan.json"), "--output", OUT])
    assert done.exit_code == 1, done.output
    assert "At most $2.14 if every scene is paid on every route it may take" in done.output
    manifest = json.loads(Storage(OUT).child("routes").read_bytes("manifest.json"))
    lighthouse = next(scene for scene in manifest["scenes"] if scene["id"] == "lighthouse")
    assert "past the budget" in lighthouse["error"] and lighthouse["moves"]
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == (2, 0)


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_reordered_or_fewer_routes_pay_nothing_for_finished_scenes(poses: Poses) -> None:
    first = rendered(plan_of(HARBOUR, LIGHTHOUSE))
    assert routes_of(first) == {"harbour": ON_OPENROUTER, "lighthouse": ON_FAL}
    made = (poses.made(poses.openrouter), poses.made(poses.fal))
    for providers in (["fal", "openrouter"], ["fal"], ["openrouter"]):
        again = rendered(plan_of(HARBOUR, LIGHTHOUSE, providers=providers))
        assert [scene.status for scene in again.scenes] == ["completed"] * 2, providers
        assert again.paid.jobs == 0 and routes_of(again) == routes_of(first), providers
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == made


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_jobs_asks_each_job_of_the_provider_it_was_made_on(poses: Poses, tmp_path: Path) -> None:
    """`reelflow jobs` on a plan whose scene moved: its refused job is asked of OpenRouter, its take of fal."""
    plan = plan_of(HARBOUR, LIGHTHOUSE, output=OUT)
    rendered(plan)
    (file := tmp_path / "plan.yaml").write_text(json.dumps(plan))
    listed = CliRunner().invoke(app, ["jobs", str(file)], env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in listed.output.splitlines()
            if line.startswith("│") and "clip" in line]
    said = {(row[0], row[4]): (row[5], row[7]) for row in rows}  # (scene, made on): (status, provider says)
    assert said == {("harbour", ON_OPENROUTER): ("completed", "completed"),
                    ("lighthouse", ON_OPENROUTER): ("failed", "failed"),
                    ("lighthouse", ON_FAL): ("completed", "completed")}, listed.output


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_a_reviews_redo_starts_where_its_scene_was_made_and_moves_on_when_refused(poses: Poses) -> None:
    """The redo of a scene made on fal starts on fal (not on OpenRouter, which refused it); the redo of a scene made
    on OpenRouter whose new prompt OpenRouter refuses moves on to fal, as any scene does."""
    def answer(review: PausedReview) -> None:
        review.answer({"harbour": "redo", "lighthouse": "redo"},
                      {"harbour": "a harbour with a lighthouse", "lighthouse": "a lighthouse at night"})

    result = reviewed(plan_of(HARBOUR, LIGHTHOUSE, review=True, name="routes-redo", output=OUT), answer)
    assert [(scene.take, scene.status, scene.route) for scene in result.scenes] == [
        ("harbour.redo", "completed", ON_FAL), ("lighthouse.redo", "completed", ON_FAL)]
    assert (poses.made(poses.openrouter, "lighthouse"), poses.made(poses.fal, "lighthouse")) == (2, 3)
    assert (poses.made(poses.openrouter), poses.made(poses.fal)) == (3, 3)


@pytest.mark.knobs(openrouter={"refuse": ["lighthouse"]})
def test_a_fleet_sets_up_and_holds_each_providers_own_limits(poses: Poses) -> None:
    """On a fleet (REELFLOW_SCENE_DEPLOYMENT), each provider of the plan gets limits of its own at its rate; a
    scene's create takes its route's turn, also after it moved (one create a minute: each provider's turn is taken
    once, and a create that took another provider's would wait a minute for it)."""
    plan = parse_plan(plan_of(LIGHTHOUSE, output=OUT))
    profiles = checked_plan(plan, Settings()).profiles
    with pytest.raises(UserError, match=r"each provider's request rate \(openrouter, fal's is not in its profile\)"):
        asyncio.run(set_up_fleet(profiles, Settings()))
    asyncio.run(set_up_fleet(profiles, Settings(requests_per_minute=1, max_concurrent=3)))
    fleets = [Fleet("openrouter"), Fleet("fal")]

    async def limits() -> dict[str, tuple[int, int]]:
        async with get_client() as client:
            found = [await client.read_global_concurrency_limit_by_name(name) for fleet in fleets
                     for name in (fleet.jobs, fleet.creates)]
        return {limit.name: (limit.limit, limit.active_slots) for limit in found}

    taken = {"reelflow-jobs-openrouter": (3, 0), "reelflow-creates-openrouter": (1, 0), "reelflow-jobs-fal": (3, 0),
             "reelflow-creates-fal": (1, 0)}
    assert asyncio.run(limits()) == taken
    began = time.monotonic()
    result = render_scene(plan, fleet=True)
    assert (result.status, result.route) == ("completed", ON_FAL) and time.monotonic() - began < 50
    assert asyncio.run(limits()) == taken | {"reelflow-creates-openrouter": (1, 1), "reelflow-creates-fal": (1, 1)}


def test_one_base_url_for_every_route_is_refused_in_one_line(poses: Poses, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFLOW_BASE_URL", poses.fal.base_url)
    with pytest.raises(UserError, match="REELFLOW_BASE_URL would send every route to one provider: unset it"):
        checked_plan(parse_plan(plan_of(HARBOUR)), Settings())


class TestTheFaultMatrixOnTwoRoutes(FaultMatrix):
    """The fault matrix of the dialect contract on a plan with `providers: [openrouter, fal]`, the wire to
    OpenRouter failing: no fault of the wire moves the scene (nothing is paid on fal), nor pays twice."""

    fallback = "fal"

    @pytest.fixture
    def profile_name(self, prefect_harness: None) -> str:
        return "openrouter"

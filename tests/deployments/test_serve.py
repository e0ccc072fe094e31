"""Deployments on a real Prefect server: `reelflow serve` in its own process, a plan run from the UI's
form through `run_deployment`, the schedule's next runs, and the form's schema."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.deployments.conftest import CRON, ZONE
from tests.media import probe_video


def test_a_plan_entered_in_the_form_renders_through_run_deployment(served: str, tmp_path: Path) -> None:
    plan = {"name": "from-the-ui", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "quay", "prompt": "boats at the quay", "extensions": [{"prompt": "a boat leaves", "seconds": 4}]},
        {"id": "gull", "prompt": {"subject": "a gull", "action": "lands on a post"}, "size": "720x1280"}]}
    with temporary_settings({PREFECT_API_URL: served}):
        run: FlowRun = run_deployment("render-plan-form/manual",  # type: ignore[assignment]
                                      parameters={"plan": plan, "output": f"file://{tmp_path}"}, timeout=600)
    assert run.state is not None and run.state.is_completed(), run.state
    for scene, size, seconds in (("quay", (1280, 720), 8.0), ("gull", (720, 1280), 4.0)):
        info = probe_video((tmp_path / "from-the-ui" / scene / "video.mp4").read_bytes())
        assert (info.size, info.seconds) == (size, seconds)
    assert (tmp_path / "from-the-ui" / "report.html").exists()


def test_the_form_refuses_a_size_the_provider_does_not_offer(served: str) -> None:
    plan = {"name": "wrong", "scenes": [{"id": "a", "prompt": "x", "size": "1000x1000"}]}
    with temporary_settings({PREFECT_API_URL: served}), pytest.raises(Exception, match=r"1000x1000"):
        run_deployment("render-plan-form/manual", parameters={"plan": plan}, timeout=0)


def test_the_schedule_keeps_its_cron_and_time_zone(served: str) -> None:
    with temporary_settings({PREFECT_API_URL: served}):
        runs = asyncio.run(scheduled_runs("render-plan-file", "scheduled"))
    assert len(runs) >= 3
    for run in runs:
        assert run.expected_start_time is not None
        local = run.expected_start_time.astimezone(ZoneInfo(ZONE))
        assert (local.hour, local.minute, local.weekday() < 5) == (7, 30, True)
        assert run.expected_start_time > datetime.now(ZoneInfo(ZONE))
        assert run.parameters == {"plan_url": "deployments/plans/demo.yaml"}


async def scheduled_runs(flow: str, name: str, seconds: float = 120) -> list[FlowRun]:
    """The scheduler service's upcoming runs of a deployment (it makes them within seconds)."""
    deadline = time.monotonic() + seconds
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(f"{flow}/{name}")
        schedule: Any = deployment.schedules[0].schedule
        assert (schedule.cron, schedule.timezone) == (CRON, ZONE)
        while True:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=10)
            if len(runs) >= 3 or time.monotonic() > deadline:
                return sorted(runs, key=lambda r: r.expected_start_time or datetime.min)
            await asyncio.sleep(1)


def test_the_form_schema_has_nested_scenes_enums_and_descriptions() -> None:
    from flows.plan_form import render_plan_form

    schema = render_plan_form.parameters.model_dump()
    definitions = schema["definitions"]
    assert schema["properties"]["plan"]["$ref"] == "#/definitions/Plan"
    assert schema["properties"]["output"]["description"].startswith("Where to write")
    scenes = definitions["Plan"]["properties"]["scenes"]
    assert scenes["type"] == "array" and scenes["items"]["$ref"] == "#/definitions/Scene"
    scene = definitions["Scene"]["properties"]
    assert scene["size"]["enum"] == ["720x1280", "1280x720", "1024x1792", "1792x1024", "1080x1920", "1920x1080"]
    assert scene["model"]["enum"] == ["sora-2", "sora-2-pro"]
    assert scene["fit"]["enum"] == ["cover", "pad", "stretch"]
    assert definitions["SceneDefaults"]["properties"]["size"]["enum"][1] == "1280x720"
    described: list[dict[str, Any]] = [*definitions["Plan"]["properties"].values(), *scene.values()]
    assert all(field.get("description") for field in described)


def test_the_form_reads_like_the_plan() -> None:
    """What a scene must have first, one output, and optional fields as their own types: the Prefect UI shows a
    field whose schema allows null as a switch with `Property is type "None"` under it."""
    from flows.plan_form import render_plan_form

    schema = render_plan_form.parameters.model_dump()
    definitions = schema["definitions"]
    assert list(definitions["Scene"]["properties"])[:2] == ["id", "prompt"]
    assert list(definitions["Plan"]["properties"])[:2] == ["name", "scenes"]
    assert "output" not in definitions["Plan"]["properties"]  # the flow's own is the form's one output
    assert schema["properties"]["output"] == {
        "default": "", "description": "Where to write (an fsspec URL, e.g. s3://reels/renders); empty: ./out.",
        "position": 1, "title": "output", "type": "string"}
    nullable = {(model, name) for model, definition in definitions.items()
                for name, field in definition["properties"].items() if {"type": "null"} in field.get("anyOf", [])}
    # Left: true-or-false fields whose None is the provider's own choice (the form's switch has no third state),
    # and the reel's loudness, whose null (its sound as the scenes have it) is not its default.
    assert nullable == {("Scene", "audio"), ("SceneDefaults", "audio"), ("Route", "audio"), ("Plan", "loudness")}
    assert "enum" not in definitions["Route"]["properties"]["model"]  # (a route's model is its own provider's)
    no_defaults_given = [definitions["Scene"]["properties"][name] for name in ("size", "image", "seed", "crop")]
    assert all("default" not in field for field in no_defaults_given)
    assert definitions["MusicBed"]["properties"]["level_db"]["description"].endswith("Default: -18.")
    assert "default" not in definitions["MusicBed"]["properties"]["level_db"]  # music stays out unless given


def test_a_scene_entered_with_only_an_id_and_a_prompt_gets_the_providers_default_size() -> None:
    from flows.plan_form import render_plan_form
    from reelflow import load_profile, validate_plan

    sent = {  # what the Prefect UI's form sends for a plan named, and a scene given only its id and prompt
        "output": "", "retry_failed": False, "plan": {
            "assemble": False, "transition": 0, "review": False, "review_timeout_seconds": 3600, "mode": "direct",
            "defaults": {"fit": "cover", "pad_color": "#000000", "audio": None},
            "loudness": {"integrated_lufs": -14, "true_peak_dbtp": -1},
            "scenes": [{"takes": 1, "audio": None, "id": "dawn", "prompt": "a harbour at dawn"}], "name": "form-test"}}
    plan = render_plan_form.validate_parameters(sent)["plan"]
    profile = load_profile("sandbox")
    (scene,) = validate_plan(plan, profile)
    assert (scene.size, scene.model, scene.audio) == (profile.default_size, profile.default_model, None)
    assert plan.output is None and plan.style is None and plan.music is None and scene.crop is None

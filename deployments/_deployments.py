"""The deployments, built from settings: the scheduled plan file, cron and time zone."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import Flow, serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.plan_form import render_plan_form
from flows.prepare_images import prepare_images
from flows.render_plan_file import render_plan_file
from flows.render_scene import render_scene
from reelflow import Settings

# flow name/deployment name, as `run_deployment` and `prefect deployment run` name them.
DEPLOYMENTS = {
    "scheduled": "render-plan-file/scheduled",
    "manual": "render-plan-form/manual",
    "prepare": "prepare-images/prepare",
    "scene": "render-scene/scene",
}


def _deployment(flow: Flow[..., Any], name: str, description: str, **options: Any) -> RunnerDeployment:
    """Flows are found by module path (`flows.render_scene:render_scene`), so a worker runs them from any
    folder where reelflow is installed; parameters are checked against the form when a run is created."""
    return RunnerDeployment.from_flow(flow, name, description=description, tags=["reelflow"],
                                      entrypoint_type=EntrypointType.MODULE_PATH, **options)


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    return [
        _deployment(render_plan_file, "scheduled", f"Renders {settings.schedule_plan} on a schedule.",
                    schedule=Cron(settings.schedule_cron, timezone=settings.schedule_timezone),
                    parameters={"plan_url": settings.schedule_plan}),
        _deployment(render_plan_form, "manual", "Renders a scene plan entered in the form (Run > Custom run)."),
        _deployment(prepare_images, "prepare", "Makes a batch of images exactly one size."),
        _deployment(render_scene, "scene", "Renders one scene: what a plan fans out to across workers."),
    ]


def deploy_to_pool(settings: Settings, pool: str) -> list[str]:
    """Register every deployment with a process work pool (created if missing); its workers run them."""
    asyncio.run(_ensure_process_pool(pool))
    for deployment in build_deployments(settings):
        deployment.apply(work_pool_name=pool)
    return list(DEPLOYMENTS.values())


async def _ensure_process_pool(name: str) -> None:
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def serve_deployments(settings: Settings) -> None:
    """Serve every deployment from this process until interrupted (Ctrl-C, SIGTERM)."""
    serve(*build_deployments(settings), print_starting_message=False)

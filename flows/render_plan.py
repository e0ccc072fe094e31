"""A whole scene plan: validated up front, scenes rendered concurrently, a manifest at the end."""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger

from reelflow import AuthenticationError, Plan, ReelflowError, ResolvedScene, Settings, validate_plan
from reelflow._provider import connect_provider
from reelflow._results import PlanResult, SceneResult
from reelflow._storage import Storage

from ._crashes import take_over
from .render_scene import SceneRun, run_scene

DEFAULT_OUTPUT = "file://./out"


class RenderFailed(ReelflowError):
    """Some scenes failed; the others were rendered. `result` has every scene's outcome."""

    def __init__(self, result: PlanResult) -> None:
        self.result = result
        super().__init__(result.summary())


@flow(name="render-plan")
def render_plan(plan: Plan, output: str | None = None, retry_failed: bool = False) -> PlanResult:
    """Render every scene of `plan` into `<output>/<plan name>/`; fails if any scene failed.

    Re-running the same plan to the same output resumes: finished scenes are skipped, jobs in flight
    are awaited rather than created again, and permanently failed scenes are reported as they were
    unless `retry_failed`."""
    settings = Settings()
    logger = get_run_logger()
    with connect_provider(settings) as connection:
        logger.info(connection.describe())
        scenes = validate_plan(plan, connection.profile)
        storage = Storage(output or plan.output or DEFAULT_OUTPUT, settings.storage_options).child(plan.name)
        take_over(storage)

        async def render_all() -> list[SceneResult]:
            async with SceneRun.open(connection, storage, settings, scenes, retry_failed) as run:
                return await _render_concurrently(scenes, run, settings.max_concurrent)

        results = asyncio.run(render_all())
    result = PlanResult(plan=plan.name, provider=connection.profile.name, output=storage.location(),
                        scenes=results)
    storage.write_json(result.model_dump(mode="json"), "manifest.json")
    if result.failed:
        raise RenderFailed(result)
    return result


async def _render_concurrently(scenes: list[ResolvedScene], run: SceneRun, limit: int) -> list[SceneResult]:
    """At most `limit` scenes in flight; a rejected API key cancels the rest at once."""
    slots = asyncio.Semaphore(limit)

    async def one(scene: ResolvedScene) -> SceneResult:
        async with slots:
            return await run_scene(scene, run)

    try:
        async with asyncio.TaskGroup() as group:
            pending = [group.create_task(one(scene)) for scene in scenes]
    except* AuthenticationError as raised:
        raise raised.exceptions[0] from None
    return [task.result() for task in pending]

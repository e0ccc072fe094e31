"""A whole scene plan: validated up front, scenes rendered concurrently, a manifest at the end."""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from reelflow import AuthenticationError, Plan, ReelflowError, ResolvedScene, Settings, validate_plan
from reelflow._estimate import Estimate, estimate
from reelflow._provider import active_profile, connect_provider
from reelflow._report import html_report, markdown_summary, table_rows
from reelflow._results import PlanResult, SceneResult
from reelflow._storage import Storage
from tasks.reel import assemble_reel

from ._cast import cast
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
    unless `retry_failed`. A plan whose estimate exceeds its budget is refused before any call."""
    settings = Settings()
    profile = active_profile(settings)
    scenes = validate_plan(plan, profile)
    costs = estimate(plan, scenes, profile, settings)
    costs.check()
    with connect_provider(settings) as connection:
        get_run_logger().info(connection.describe())
        storage = Storage(output or plan.output or DEFAULT_OUTPUT, settings.storage_options).child(plan.name)
        take_over(storage)

        async def render_all() -> list[SceneResult]:
            async with SceneRun.open(connection, storage, settings, scenes, costs, retry_failed) as run:
                run.character_ids = await cast(plan.characters, scenes, run)
                return await _render_concurrently(scenes, run, settings.max_concurrent)

        results = asyncio.run(render_all())
    result = PlanResult(plan=plan.name, provider=profile.name, output=storage.location(), scenes=results,
                        estimate_usd=costs.total_usd)
    if plan.assemble:
        result = _with_reel(result, storage)
    _publish(result, scenes, costs, storage)
    if result.failed:
        raise RenderFailed(result)
    return result


def _with_reel(result: PlanResult, storage: Storage) -> PlanResult:
    if result.failed:
        note = f"reel.mp4 not assembled: {len(result.failed)} of {len(result.scenes)} scenes failed"
        return result.model_copy(update={"warnings": [*result.warnings, note]})
    return result.model_copy(update={"reel": assemble_reel(storage, [s.id for s in result.scenes])})


def _publish(result: PlanResult, scenes: list[ResolvedScene], costs: Estimate, storage: Storage) -> None:
    """The manifest and the contact sheet next to the videos; the same summary on the flow run in the UI."""
    storage.write_json(result.model_dump(mode="json"), "manifest.json")
    storage.write_bytes(html_report(result, scenes, costs, storage).encode(), "report.html")
    create_table_artifact(table_rows(result, costs), key=_artifact_key(result.plan, "scenes"),
                          description=f"Scenes of {result.plan}")
    create_markdown_artifact(markdown_summary(result, costs), key=_artifact_key(result.plan, "summary"),
                             description=f"Run report of {result.plan}")


def _artifact_key(plan: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in f"{plan}-{kind}".lower())


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

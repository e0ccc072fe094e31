"""A whole scene plan: validated up front, scenes rendered concurrently, a manifest at the end."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NoReturn
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.flow_runs import wait_for_flow_run
from prefect.runtime import flow_run

from reelflow import (
    Plan,
    ReelflowError,
    ResolvedScene,
    Settings,
    UserError,
)
from reelflow.costs import Estimate, estimate
from reelflow.ledger import JobRecord, Ledger, paid_for
from reelflow.plans import counted
from reelflow.progress import report
from reelflow.providers import connect_providers
from reelflow.report import html_report, markdown_summary, table_rows, thumbnails
from reelflow.results import Paid, PlanResult, SceneResult
from reelflow.reuse import planned_reuse
from reelflow.routes import RoutedPlan, check_route_images, checked_plan
from reelflow.storage import DEFAULT_OUTPUT, Storage
from tasks.fleet import set_up_fleet
from tasks.reel import ReelSpec, assemble_reel

from ._batch import batched
from ._board import RunBoard, artifact_key, on_the_run_page
from ._cast import cast
from ._crashes import owning
from ._scene_run import SceneRun
from ._stoppable import run_stoppable
from .render_scene import recorded_result, render_concurrently
from .review import Review, chosen_takes, shots_of


class RenderFailed(ReelflowError):
    """Some scenes failed; the others were rendered. `result` has every scene's outcome."""

    def __init__(self, result: PlanResult) -> None:
        self.result = result
        super().__init__(result.summary())


class _ToldFailures(logging.Filter):
    """Drops Prefect's records of a RenderFailed (its traceback): the run's own log has already said what
    failed, one line per scene, and the flow run still ends Failed with the failure as its message.

    Prefect 3.9 logs an exception that ends a flow run twice, each with its traceback, on the flow run's logger
    (`prefect.flow_runs`, which sends it to the run's page): "Encountered exception during execution" in
    `FlowRunEngine.run_context`, and, in a deployment's run, "Engine execution exited with unexpected exception"
    in `run_flow`, given the run's logger as `error_logger` (prefect/flow_engine.py). Returning a `Failed` state
    instead of raising avoids only the first: `run_flow_sync` ends with `engine.result()`, which raises the
    state's exception for the second. A filter on that logger is what stops both, and only for this failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], RenderFailed))


_TOLD_FAILURES = _ToldFailures()


@dataclass(frozen=True)
class PlanRun:
    """A plan being rendered: its scenes checked against its routes, where they go, what they cost."""

    plan: Plan
    routed: RoutedPlan
    settings: Settings
    output: str  # where the plan's folder is
    retry_failed: bool = False
    costs: Estimate | None = None  # priced once the output is held (what earlier runs made there is not paid again)

    @property
    def scenes(self) -> list[ResolvedScene]:
        """Each scene's takes, on their first route."""
        return self.routed.scenes

    @cached_property
    def storage(self) -> Storage:
        """The plan's folder."""
        return Storage(self.output, self.settings.storage_options).child(self.plan.name)

    @property
    def estimate(self) -> Estimate:
        assert self.costs is not None, "priced once the output is held"
        return self.costs


@flow(name="render-plan")
def render_plan(plan: Plan, output: str | None = None, retry_failed: bool = False, wait: bool = False,
                review: bool = False) -> PlanResult:
    """Render every scene of `plan` into `<output>/<plan name>/`; fails if any scene failed.

    Re-running the same plan to the same output resumes: finished scenes are skipped, a changed scene
    pays only from its first changed step on, jobs in flight are awaited rather than created again, and
    permanently failed scenes are reported as they were unless `retry_failed`. A plan whose estimate
    (of what is left to pay) exceeds its budget is refused before any call. One run renders to an output
    at a time: another run on it stops at once, naming this one, or with `wait` waits for it. With `review` (or
    the plan's own), the run pauses once the scenes are rendered for a person to choose what becomes of each."""
    run = _checked(plan.model_copy(update={"review": True}) if review else plan, output, retry_failed)
    with owning(run.storage, run.settings, wait):
        run = _priced(run)
        with on_the_run_page(plan.name, [s.id for s in run.scenes], run.settings.ui_update_seconds) as board:
            results, paid = _fan_out(run) if run.settings.scene_deployment else _render_here(run)
        result = PlanResult(plan=plan.name, provider=run.estimate.provider, output=run.storage.location(),
                            scenes=results, estimate_usd=run.estimate.total_usd, paid=paid,
                            warnings=[board.gone] if board.gone else [])
        if plan.assemble:
            result = _with_reel(result, run)
        board.show_table(table_rows(result, run.estimate))
        _publish(result, run, board)
    _FINISHED[plan.name] = result
    if result.failed:
        _fail(result)
    return result


_FINISHED: dict[str, PlanResult] = {}  # each plan's outcome as its run's body ended, in this process


def finished_result(plan: str) -> PlanResult | None:
    """The outcome of the plan's run in this process, as the flow's body ended it: for a caller whose Prefect engine
    failed after the body had finished (the Prefect server went away, and the run's end could not be recorded)."""
    return _FINISHED.pop(plan, None)


def _checked(plan: Plan, output: str | None, retry_failed: bool) -> PlanRun:
    """The plan checked against its provider before any call: its settings, its scenes, how its images travel."""
    settings = Settings()
    run = PlanRun(plan, checked_plan(plan, settings), settings, output or plan.output or DEFAULT_OUTPUT, retry_failed)
    check_route_images(run.routed, run.storage)
    return run


def _priced(run: PlanRun) -> PlanRun:
    """The plan's cost less what earlier runs on its output made, refused over its budget; said on the run page."""
    plan, scenes = run.plan, run.scenes
    costs = estimate(plan, scenes, run.routed.profiles, run.settings,
                     planned_reuse(plan, scenes, run.storage, run.settings))
    costs.check()
    if plan.providers:
        costs.worst_usd = run.routed.worst_usd(run.settings)
    get_run_logger().info("plan %r: %s on %s to %s; estimate $%.2f%s%s, %d jobs to pay, %d reused", plan.name,
                          counted(scenes), costs.provider, run.storage.location(), costs.total_usd,
                          f" (at most ${costs.worst_usd:.2f} on every route)" if costs.worst_usd is not None else "",
                          f" ({retakes})" if (retakes := costs.retakes_note()) else "",
                          sum(s.jobs for s in costs.scenes), sum(s.reused for s in costs.scenes))
    return replace(run, costs=costs)


def _fail(result: PlanResult) -> NoReturn:
    """End the run with its failed scenes: one line each, last in its log, and no traceback."""
    for scene in result.failed:
        get_run_logger().error("scene %r failed: %s", scene.id, scene.error)
    logging.getLogger("prefect.flow_runs").addFilter(_TOLD_FAILURES)  # the logger of flow_run_logger()
    raise RenderFailed(result)


def _render_here(plan_run: PlanRun) -> tuple[list[SceneResult], Paid]:
    """Every scene rendered by this process (each take) on the plan's provider, then one result per scene of the
    plan: the take chosen for it, in a review or by default; and what the run paid for, every take and redo
    included."""
    plan, scenes, settings = plan_run.plan, plan_run.scenes, plan_run.settings
    review = Review(plan.name, plan.review, plan.review_timeout_seconds)
    with connect_providers(settings, plan_run.routed.profiles) as connections:
        for connection in connections:
            get_run_logger().info(connection.describe())

        async def render_all() -> tuple[list[SceneResult], Paid]:
            async with SceneRun.open(connections, plan_run.storage, settings, plan_run.estimate,
                                     plan_run.retry_failed) as run:
                run.routes, run.qa = plan_run.routed, plan.qa
                run.expect(scenes)
                run.character_ids = await cast(plan.characters, scenes, run)
                if plan.mode == "batch":
                    await batched(scenes, run)
                takes = await render_concurrently(scenes, run, settings.max_concurrent)
                return await chosen_takes(shots_of(scenes, takes), run, review), paid_for(run.made)

        return run_stoppable(render_all())


def _fan_out(run: PlanRun) -> tuple[list[SceneResult], Paid]:
    """Each scene as a run of the scene deployment, so the workers serving it share the plan; Prefect's
    global limits keep all of them together under the provider's limits. Outcomes, and what was paid, come
    from the ledger."""
    plan, settings, storage = run.plan, run.settings, run.storage
    if plan.characters or plan.mode == "batch" or plan.review or any(scene.takes > 1 for scene in plan.scenes):
        raise UserError(f"plan {plan.name!r}: characters, takes, review and batch mode are for one process for now; "
                        "render this plan without REELFLOW_SCENE_DEPLOYMENT")
    asyncio.run(set_up_fleet(run.routed.profiles, settings))
    started, deployment = time.time(), settings.scene_deployment or ""

    async def all_finished() -> list[FlowRun]:
        runs = [await arun_deployment(
            deployment, timeout=0, idempotency_key=f"{flow_run.id}:{scene.id}",
            parameters={"plan": plan.model_copy(update={"scenes": [scene], "output": run.output}).model_dump(
                mode="json", exclude_none=True), "retry_failed": run.retry_failed, "fleet": True},
        ) for scene in plan.scenes]
        return list(await asyncio.gather(*(_finished(scene.id, scene_run.id)
                                           for scene, scene_run in zip(run.scenes, runs, strict=True))))

    finished = run_stoppable(all_finished())
    results = [recorded_result(scene, storage) or _lost(scene, scene_run)
               for scene, scene_run in zip(run.scenes, finished, strict=True)]
    return results, paid_for(job for scene in run.scenes for job in _jobs_since(scene, storage, started))


def _jobs_since(scene: ResolvedScene, storage: Storage, started: float) -> list[JobRecord]:
    """The jobs the scene's ledger entry records as sent since `started` (by the scene's own run, elsewhere)."""
    entry = Ledger(storage).load(scene.id)
    return [job for job in entry.jobs if job.recorded_at >= started] if entry else []


async def _finished(scene_id: str, run_id: UUID) -> FlowRun:
    run: FlowRun = await wait_for_flow_run(run_id, poll_interval=2)
    report(scene_id, "done" if run.state and run.state.is_completed() else "failed")
    return run


def _lost(scene: ResolvedScene, run: FlowRun) -> SceneResult:
    state = run.state.name if run.state else "no state"
    return SceneResult(id=scene.id, status="failed", size=scene.size, seconds=scene.total_seconds,
                       error=f"its run {run.name} ended {state} without recording an outcome")


def _with_reel(result: PlanResult, run: PlanRun) -> PlanResult:
    if result.failed:
        note = f"reel.mp4 not assembled: {len(result.failed)} of {len(result.scenes)} scenes failed"
        return result.model_copy(update={"warnings": [*result.warnings, note]})
    reel = assemble_reel(run.storage, [s.folder for s in result.kept], ReelSpec.of(run.plan, run.settings))
    return result.model_copy(update={"reel": reel})


def _publish(result: PlanResult, run: PlanRun, board: RunBoard) -> None:
    """The manifest and the contact sheet next to the videos; the same summary on the flow run in the UI (while
    the Prefect server answers)."""
    storage, costs = run.storage, run.estimate
    storage.write_json(result.model_dump(mode="json"), "manifest.json")
    pictures = thumbnails(result, storage)
    storage.write_bytes(html_report(result, run.scenes, costs, pictures).encode(), "report.html")
    board.write(lambda: create_markdown_artifact(markdown_summary(result, costs, pictures),
                                                 key=artifact_key(result.plan, "summary"),
                                                 description=f"Run report of {result.plan}: thumbnails, failures"))

"""One scene, start to finish: reference image, job, extensions, downloads."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prefect import flow, get_run_logger

from reelflow import AuthenticationError, ReelflowError, ResolvedScene, Scene, Settings, TransientApiError
from reelflow._gateway import Gateway, JobState, Reference, connect
from reelflow._plan import Plan, validate_plan
from reelflow._provider import Connection, connect_provider
from reelflow._results import FileRecord, SceneResult
from reelflow._storage import Storage
from tasks._retry import tuned
from tasks.images import as_reference, transform, unchanged_reference, usable_as_is, validate_dimensions
from tasks.videos import WaitPolicy, await_video, download, extend, submit


@dataclass
class SceneRun:
    """Everything a scene's steps share within one run."""

    gateway: Gateway
    storage: Storage
    settings: Settings

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, connection: Connection, storage: Storage, settings: Settings) -> AsyncIterator[SceneRun]:
        """A gateway to the provider for the life of the block (inside the run's event loop)."""
        gateway = connect(connection.base_url, connection.api_key.get_secret_value(), connection.profile,
                          requests_per_minute=settings.requests_per_minute, retries=settings.request_retries,
                          timeout=settings.request_timeout_seconds)
        try:
            yield cls(gateway, storage, settings)
        finally:
            await gateway.close()

    @property
    def policy(self) -> WaitPolicy:
        s = self.settings
        return WaitPolicy(s.poll_min_seconds, s.poll_max_seconds, s.job_timeout_seconds)


async def run_scene(scene: ResolvedScene, run: SceneRun) -> SceneResult:
    """Render one scene; its own failure becomes a failed result, except a rejected key, which stops the run."""
    result = SceneResult(id=scene.id, status="failed", size=scene.size, seconds=scene.total_seconds)
    try:
        reference = await _reference(scene, run, result)
        video = await _generate(scene, reference, run, result)
        for extension in scene.extensions:
            job = await tuned(extend, run.settings)(run.gateway, video, extension)
            result.job_ids.append(job.id)
            video = await tuned(await_video, run.settings)(run.gateway, job, run.policy)
        result.files.update(await tuned(download, run.settings)(run.gateway, video, scene, run.storage))
        result.status = "completed"
    except AuthenticationError:
        raise
    except ReelflowError as e:
        result.error = str(e)
        get_run_logger().error("scene %r failed: %s", scene.id, e)
    return result


async def _reference(scene: ResolvedScene, run: SceneRun, result: SceneResult) -> Reference | None:
    if scene.image is None:
        return None
    source = await tuned(validate_dimensions, run.settings)(scene.image, f"scene {scene.id!r}: image")
    if usable_as_is(source, scene, run.gateway.profile.reference_formats):
        reference = unchanged_reference(source)
    else:
        prepared = await tuned(transform, run.settings)(source, scene, run.settings.reference_format)
        result.warnings += prepared.warnings
        reference = as_reference(prepared)
    run.storage.write_bytes(reference.data, scene.id, reference.filename)
    result.files[reference.filename] = FileRecord(
        url=run.storage.location(scene.id, reference.filename), bytes=len(reference.data),
        sha256=hashlib.sha256(reference.data).hexdigest())
    return reference


async def _generate(scene: ResolvedScene, reference: Reference | None, run: SceneRun,
                    result: SceneResult) -> JobState:
    """Create and await the scene's job; a generation that fails for a transient reason is created anew."""
    attempts_left = run.settings.generation_attempts
    while True:
        job = await tuned(submit, run.settings)(run.gateway, scene, reference)
        result.job_ids.append(job.id)
        try:
            return await tuned(await_video, run.settings)(run.gateway, job, run.policy)
        except TransientApiError:
            attempts_left -= 1
            if attempts_left == 0:
                raise


@flow(name="render-scene")
def render_scene(scene: Scene, output: str, plan_name: str = "scenes") -> SceneResult:
    """Render a single scene into `<output>/<plan_name>/<scene id>/`."""
    settings = Settings()
    plan = Plan(name=plan_name, output=output, scenes=[scene])
    with connect_provider(settings) as connection:
        (resolved,) = validate_plan(plan, connection.profile)
        storage = Storage(output, settings.storage_options).child(plan_name)

        async def render() -> SceneResult:
            async with SceneRun.open(connection, storage, settings) as run:
                return await run_scene(resolved, run)

        return asyncio.run(render())

"""What a scene's steps share within one run (`SceneRun`), a scene being rendered (`Chain`), and one paid step of
it (`Step`): the objects the pipeline passes along instead of long parameter lists."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prefect.context import AsyncClientContext

from reelflow import ResolvedScene, Settings
from reelflow.costs import Estimate, Spend
from reelflow.ledger import JobRecord, Ledger, SceneEntry, SceneInputs, fingerprint, needs_new_job, step_fingerprints
from reelflow.media.references import SceneImages
from reelflow.progress import Watch
from reelflow.providers import Connection, Gateway, JobState, Reference, open_gateway
from reelflow.reuse import clip_name, kept_in
from reelflow.storage import Storage
from tasks._retry import tuned
from tasks.fleet import Fleet
from tasks.images import validate_dimensions
from tasks.videos import FILENAMES, PICTURES, Attempt, Delivery, Expected, WaitPolicy

Signature = tuple[str, str, int]


def request_signatures(scene: ResolvedScene) -> list[Signature]:
    """What the provider shows of each job of the scene: prompt, size and seconds (an extension shows the
    stitched total; a last-frame continuation is a clip of its own; a revision is the whole video again)."""
    signatures: list[Signature] = []
    shown = 0
    for segment in scene.segments:
        shown = shown + segment.seconds if segment.via == "extension" else segment.seconds
        signatures.append((segment.prompt, scene.size, shown))
    return signatures + [(revision.prompt, scene.size, scene.total_seconds) for revision in scene.revisions]


def revision_name(number: int) -> str:
    """Where the scene's video is kept after `number` revisions (0: before the first)."""
    return f"video.rev{number}.mp4"


@dataclass
class SceneRun:
    """Everything a scene's steps share within one run."""

    gateway: Gateway
    storage: Storage
    settings: Settings
    estimate: Estimate
    retry_failed: bool = False
    requests: Counter[Signature] = field(default_factory=Counter)
    known_ids: set[str] = field(default_factory=set)
    spend: Spend = field(default_factory=lambda: Spend(None))
    character_ids: dict[str, str] = field(default_factory=dict)
    fleet: Fleet | None = None
    warnings: dict[str, list[str]] = field(default_factory=dict)  # by scene, gathered before its own run
    embedded_sandbox: bool = False  # the provider is the sandbox started for this run: its jobs cost nothing
    made: list[JobRecord] = field(default_factory=list)  # every job this run sent (or is sending) a create for

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, connection: Connection, storage: Storage, settings: Settings, costs: Estimate,
                   retry_failed: bool = False) -> AsyncIterator[SceneRun]:
        """A gateway to the provider, and one Prefect client for every task run, for the life of the block (inside
        the run's event loop: each task run would otherwise open a client of its own, about 60 ms of CPU)."""
        gateway = open_gateway(connection, settings)
        try:
            async with AsyncClientContext():
                yield cls(gateway, storage, settings, costs, retry_failed, spend=Spend(costs.budget_usd),
                          embedded_sandbox=connection.embedded_sandbox)
        finally:
            await gateway.close()

    def expect(self, scenes: list[ResolvedScene]) -> None:
        """Count the jobs `scenes` will ask for: a lost create is adopted only when no other job asks the same."""
        self.requests.update(signature for scene in scenes for signature in request_signatures(scene))

    def attempt(self, record: JobRecord, signature: Signature, answer_may_be_lost: bool) -> Attempt:
        return Attempt(since=record.recorded_at, answer_may_be_lost=answer_may_be_lost,
                       adoptable=self.requests[signature] == 1, known_ids=self.known_ids)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.storage)

    @property
    def policy(self) -> WaitPolicy:
        return WaitPolicy.of(self.settings)

    async def images_of(self, scene: ResolvedScene) -> SceneImages:
        """The scene's images as the user gave them, each read whole."""
        read = tuned(validate_dimensions, self.settings)
        return SceneImages(
            first=await read(scene.image, f"scene {scene.id!r}: image") if scene.image else None,
            last=await read(scene.last_image, f"scene {scene.id!r}: last_image") if scene.last_image else None,
            subjects=tuple([await read(url, f"scene {scene.id!r}: subjects[{n}]")
                            for n, url in enumerate(scene.subjects)]))

    def entry_of(self, scene: ResolvedScene, images: SceneImages) -> SceneEntry:
        """The ledger's entry for the scene as it is now: a changed scene renders again, keeping the jobs of the
        steps that did not change."""
        inputs = SceneInputs.of(images, self.gateway.profile.name, self.settings.reference_format,
                                [self.character_ids[name] for name in scene.characters])
        expected, steps = fingerprint(scene, inputs), step_fingerprints(scene, inputs)
        entry = self.ledger.load(scene.id)
        if entry is None:
            return SceneEntry(scene=scene.id, fingerprint=expected, steps=steps)
        return entry.restamped(expected, steps)


@dataclass
class Chain:
    """A scene being rendered in a run: what it starts from, its ledger entry, the references its clips send
    (once prepared), and the warnings gathered on the way."""

    scene: ResolvedScene
    images: SceneImages
    entry: SceneEntry
    run: SceneRun
    warnings: list[str] = field(default_factory=list)
    references: dict[str, Reference] = field(default_factory=dict)  # by file name in the scene's folder

    @classmethod
    async def of(cls, scene: ResolvedScene, run: SceneRun) -> Chain:
        images = await run.images_of(scene)
        return cls(scene, images, run.entry_of(scene, images), run, run.warnings.pop(scene.id, []))

    @property
    def steps(self) -> int:
        return len(self.scene.segments) + len(self.scene.revisions)

    def save(self) -> None:
        self.run.ledger.save(self.entry)


@dataclass(frozen=True)
class Step:
    """One paid step of a scene's chain in this run: its clip, an extension or continuation, or a revision; and
    the video of the step before it, which an extension, a continuation or a revision builds on."""

    chain: Chain
    number: int
    before: JobState | None = None

    @property
    def scene(self) -> ResolvedScene:
        return self.chain.scene

    @property
    def run(self) -> SceneRun:
        return self.chain.run

    @property
    def record(self) -> JobRecord | None:
        """The ledger's job for the step as it is now, if any."""
        return self.chain.entry.current(self.number)

    @property
    def signature(self) -> Signature:
        return request_signatures(self.scene)[self.number]

    @property
    def usd(self) -> float:
        segments = self.scene.segments
        seconds = segments[self.number].seconds if self.number < len(segments) else self.scene.total_seconds
        return self.run.estimate.cost_of(self.scene.id).segment_usd(seconds)

    @property
    def what(self) -> str:
        return f"scene {self.scene.id!r}: " + (f"job {self.number + 1} of its chain" if self.number else "the clip")

    @property
    def revision(self) -> int:
        """The revisions made before this step's video (negative while the chain is still being extended)."""
        return self.number - len(self.scene.segments) + 1

    @property
    def watch(self) -> Watch:
        if self.revision > 0:
            return Watch(self.scene.id, f"revising {self.revision}/{len(self.scene.revisions)}")
        extensions = len(self.scene.segments) - 1
        return Watch(self.scene.id, f"extending {self.number}/{extensions}" if self.number else "rendering")

    def delivery(self) -> Delivery | None:
        """What the step's video leaves in the scene's folder, if anything: a clip to stitch, the video a revision
        starts from (when that revision is to be made), or, from the last step, the scene's files."""
        scene, run, revision = self.scene, self.run, self.revision
        if scene.stitched_locally:
            return self._kept_video(clip_name(self.number), scene.segments[self.number].seconds)
        if revision == len(scene.revisions):
            offered = run.gateway.profile.variants
            return Delivery(scene.id, run.storage, {FILENAMES[variant]: variant for variant in offered},
                            Expected(scene.dimensions, scene.total_seconds),
                            tuple(variant for variant in PICTURES if variant not in offered))
        if revision >= 0 and needs_new_job(self.chain.entry.current(self.number + 1), run.retry_failed):
            return self._kept_video(revision_name(revision), scene.total_seconds)
        return None

    def _kept_video(self, name: str, seconds: int) -> Delivery | None:
        """A video of the chain kept in the scene's folder (a clip to stitch, a video before a revision), once."""
        if kept_in(self.chain.entry, self.run.storage)(name):
            return None
        return Delivery(self.scene.id, self.run.storage, {name: "video"}, Expected(self.scene.dimensions, seconds))

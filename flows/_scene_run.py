"""What a scene's steps share within one run (`SceneRun`), a scene being rendered (`Chain`), and one paid step of
it (`Step`): the objects the pipeline passes along instead of long parameter lists."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prefect.context import AsyncClientContext

from reelflow import ProviderOutageError, ResolvedScene, Settings
from reelflow.costs import Estimate, Spend, price_per_second
from reelflow.ledger import JobRecord, Ledger, SceneEntry, SceneInputs, needs_new_job
from reelflow.media.checks import Expectation
from reelflow.media.references import SceneImages
from reelflow.plans import TakeChecks, redo_of
from reelflow.profiles import ProviderProfile
from reelflow.progress import Watch
from reelflow.providers import Connection, Gateway, JobState, Reference, open_gateway
from reelflow.reuse import clip_name, kept_in
from reelflow.routes import RoutedPlan
from reelflow.storage import Storage
from tasks._retry import tuned
from tasks.fleet import Fleet
from tasks.images import validate_dimensions
from tasks.videos import FILENAMES, PICTURES, Attempt, Checked, Delivery, Expected, WaitPolicy

Signature = tuple[str, str, int]
FIRST_REFERENCE, LAST_REFERENCE = "first", "last"  # a chain's images as sent, by name (`Chain.references`)


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
    """Everything a scene's steps share within one run: the providers (a gateway to each of the plan's, the first
    route's first), where the scenes go, the settings, the estimate and what the run has paid for."""

    gateways: dict[str, Gateway]  # by provider profile name
    storage: Storage
    settings: Settings
    estimate: Estimate
    retry_failed: bool = False
    requests: Counter[Signature] = field(default_factory=Counter)
    known_ids: set[str] = field(default_factory=set)
    spend: Spend = field(default_factory=lambda: Spend(None))
    character_ids: dict[str, str] = field(default_factory=dict)
    fleet: bool = False  # hold each provider's fleet limits (`tasks.fleet`), set up by the plan's run
    warnings: dict[str, list[str]] = field(default_factory=dict)  # by scene, gathered before its own run
    embedded_sandbox: bool = False  # the provider is the sandbox started for this run: its jobs cost nothing
    made: list[JobRecord] = field(default_factory=list)  # every job this run sent (or is sending) a create for
    routes: RoutedPlan | None = None  # where each scene may go next, when a plan has routes
    qa: TakeChecks = field(default_factory=TakeChecks)  # how each take is checked, and how often made again

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, connections: list[Connection], storage: Storage, settings: Settings, costs: Estimate,
                   retry_failed: bool = False) -> AsyncIterator[SceneRun]:
        """A gateway to each provider, and one Prefect client for every task run, for the life of the block (inside
        the run's event loop: each task run would otherwise open a client of its own, about 60 ms of CPU)."""
        gateways = {c.profile.name: open_gateway(c, settings, storage.location()) for c in connections}
        try:
            async with AsyncClientContext():
                yield cls(gateways, storage, settings, costs, retry_failed, spend=Spend(costs.budget_usd),
                          embedded_sandbox=all(c.embedded_sandbox for c in connections))
        finally:
            for gateway in gateways.values():
                await gateway.close()

    @property
    def gateway(self) -> Gateway:
        """The first route's provider: what a plan with one provider renders on (its characters, its batch)."""
        return next(iter(self.gateways.values()))

    def gateway_of(self, scene: ResolvedScene) -> Gateway:
        return self.gateways[scene.provider]

    def fleet_of(self, scene: ResolvedScene) -> Fleet | None:
        """The fleet limits a job of `scene` holds: its provider's (none outside a fleet)."""
        return Fleet(scene.provider) if self.fleet else None

    @property
    def profiles(self) -> list[ProviderProfile]:
        return [gateway.profile for gateway in self.gateways.values()]

    @property
    def has_routes(self) -> bool:
        """Whether a scene may move to another route (a provider unusable for one is then no reason to stop)."""
        return self.routes is not None and any(len(options) > 1 for options in self.routes.routes.values())

    def next_route(self, scene: ResolvedScene) -> ResolvedScene | None:
        """The scene (this take of it) on the route after its own, if it has one."""
        options = self.routes.routes_of(scene) if self.routes else []
        keys = [routed.route.key for routed in options]
        if scene.route not in keys or keys.index(scene.route) + 1 == len(keys):
            return None
        following = options[keys.index(scene.route) + 1].scenes
        if scene.is_redo:  # a review's redo: its scene on the next route, redone with the same prompt
            base = next((s for s in following if s.id == scene.shot_id), None)
            return None if base is None else redo_of(base, scene.prompt)
        return next((s for s in following if s.id == scene.id), None)

    def made_where(self, scene: ResolvedScene, made_on: str) -> ResolvedScene:
        """`scene` as requested on the route `made_on` names (its provider and model), where the plan has it."""
        return self.routes.made_where(scene.id, made_on).scenes[0] if self.routes else scene

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
        inputs = SceneInputs.of(images, scene.provider, self.settings.reference_format,
                                [self.character_ids[name] for name in scene.characters])
        entry = self.ledger.load(scene.id)
        return SceneEntry.new(scene, inputs) if entry is None else entry.restamped(scene, inputs)


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
    def gateway(self) -> Gateway:
        """The provider of the scene's route."""
        return self.run.gateway_of(self.scene)

    @property
    def steps(self) -> int:
        return len(self.scene.segments) + len(self.scene.revisions)

    def check_outage(self) -> None:
        """Before a new create: a provider that has been failing for longer than `route_outage_seconds` gets none
        from a scene that can move to another route (nothing is sent; see `moves_on`)."""
        since, now = self.gateway.health.failing_since, time.time()
        if since is None or now - since < self.run.settings.route_outage_seconds or not self.run.next_route(self.scene):
            return
        raise ProviderOutageError(f"has been failing since {time.strftime('%H:%M:%S', time.localtime(since))} "
                                  f"({now - since:.0f} s); nothing was sent")

    def save(self) -> None:
        self.run.ledger.save(self.entry)

    def checked(self) -> Checked:
        """How the scene's video is checked: its length and size as ordered; sound where it asked for it, or its
        model makes it unasked; its first (and last) frame against the images it was sent, as prepared (unless
        revisions changed its look); each join of a chain stitched here."""
        scene = self.scene
        limits = self.gateway.profile.model_limits(scene.model)
        makes_sound = limits.audio if limits else None
        sound = makes_sound if scene.audio is None or makes_sound is None else scene.audio and makes_sound
        first, last = (None, None) if scene.revisions else (self.references.get(FIRST_REFERENCE),
                                                            self.references.get(LAST_REFERENCE))
        joins = [float(sum(s.seconds for s in scene.segments[:n])) for n in range(1, len(scene.segments))]
        return Checked(Expectation(seconds=scene.total_seconds, size=scene.dimensions, sound=sound,
                                   reference=first.data if first else None, last_image=last.data if last else None,
                                   joins=joins if scene.stitched_locally else []), self.run.qa)


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
        """The step's job at its route's list price."""
        segments, scene = self.scene.segments, self.scene
        seconds = segments[self.number].seconds if self.number < len(segments) else scene.total_seconds
        return round(seconds * price_per_second(self.chain.gateway.profile, scene.model, scene.size,
                                                self.run.settings), 4)

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
            offered = self.chain.gateway.profile.variants
            return Delivery(scene.id, run.storage, {FILENAMES[variant]: variant for variant in offered},
                            Expected(scene.dimensions, None), tuple(variant for variant in PICTURES
                                                                    if variant not in offered),
                            checked=self.chain.checked())
        if revision >= 0 and needs_new_job(self.chain.entry.current(self.number + 1), run.retry_failed):
            return self._kept_video(revision_name(revision), scene.total_seconds)
        return None

    def _kept_video(self, name: str, seconds: int) -> Delivery | None:
        """A video of the chain kept in the scene's folder (a clip to stitch, a video before a revision), once."""
        if kept_in(self.chain.entry, self.run.storage)(name):
            return None
        return Delivery(self.scene.id, self.run.storage, {name: "video"}, Expected(self.scene.dimensions, seconds))

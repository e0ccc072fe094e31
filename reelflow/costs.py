"""What a plan costs before it runs, and the budget a run may not cross.

Prices are per second of output, by model and size: the provider profile's list, overridden by the
`prices_per_second` setting. A job counts as spent when it is created, whatever becomes of it (an
upper bound: a provider may not bill failed jobs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field, PrivateAttr

from .errors import ProfileError, UserError
from .plans import Plan, ResolvedScene
from .profiles import ProviderProfile
from .reuse import Reuse
from .settings import Settings


class BudgetExceeded(UserError):
    """The plan, or the next job, would cost more than the budget allows."""


class SceneCost(BaseModel):
    id: str
    provider: str = Field(default="", description="The provider profile it is priced on (its planned route's).")
    model: str
    size: str
    seconds: int = Field(description="Seconds of the finished video, extensions included.")
    billed_seconds: int = Field(description="Seconds of output paid for: each new job of the chain, and each "
                                "new revision's whole video.")
    jobs: int = Field(description="Jobs to pay for: the clip, each continuation, each revision, less what is "
                      "taken from earlier runs.")
    reused: int = Field(default=0, description="Jobs taken from earlier runs on the same output: not paid again.")
    price_per_second: float = Field(description="USD per second of output.")
    notes: list[str] = Field(default_factory=list, description="How the provider's limits shaped the scene.")
    retakes: int = Field(default=0, description="Times it may be made again, whole, should its take fail the "
                         "checks (the plan's `qa: retake`).")
    take_seconds: int = Field(default=0, description="Seconds of output paid for by one whole take (a retake).")

    @property
    def usd(self) -> float:
        return round(self.billed_seconds * self.price_per_second, 4)

    @property
    def retakes_usd(self) -> float:
        """What its retakes cost at most."""
        return round(self.retakes * self.take_seconds * self.price_per_second, 4)


class Estimate(BaseModel):
    provider: str = Field(description="The providers it is priced on, the first route's first.")
    scenes: list[SceneCost]
    budget_usd: float | None = None
    worst_usd: float | None = Field(default=None, description="With routes: what the plan costs at most, every "
                                    "scene paid on every route it may take.")
    _by_id: tuple[list[SceneCost], dict[str, SceneCost]] | None = PrivateAttr(default=None)  # for which list

    @property
    def total_usd(self) -> float:
        return round(sum(s.usd for s in self.scenes), 4)

    @property
    def retakes_usd(self) -> float:
        """What the retakes cost should every scene's take fail its checks every time (`qa: retake`)."""
        return round(sum(s.retakes_usd for s in self.scenes), 4)

    @property
    def with_retakes_usd(self) -> float:
        """The worst case with retakes: the estimate and every retake the plan allows."""
        return round(self.total_usd + self.retakes_usd, 4)

    @property
    def retakes_allowed(self) -> bool:
        """Retakes are made only when the estimate with all of them stays within the budget."""
        return self.budget_usd is None or self.with_retakes_usd <= self.budget_usd + 1e-9

    def retakes_note(self) -> str | None:
        """What the retakes may cost, and whether the budget lets them be made; None without retakes."""
        if not self.retakes_usd:
            return None
        if self.retakes_allowed:
            return f"with retakes at most ${self.with_retakes_usd:.2f}"
        return (f"with retakes ${self.with_retakes_usd:.2f}, over the budget ${self.budget_usd or 0:.2f}: a take that "
                "fails its checks is not made again")

    def cost_of(self, scene_id: str) -> SceneCost:
        """By id, in constant time: every scene of a long plan asks for its own."""
        if self._by_id is None or self._by_id[0] is not self.scenes:
            self._by_id = (self.scenes, {scene.id: scene for scene in self.scenes})
        return self._by_id[1][scene_id]

    def check(self, source: str = "plan") -> None:
        """Refuse before any paid call when the whole plan costs more than the budget."""
        if self.budget_usd is not None and self.total_usd > self.budget_usd + 1e-9:
            raise BudgetExceeded(f"{source}: the estimate ${self.total_usd:.2f} exceeds the budget "
                                 f"${self.budget_usd:.2f}; nothing was submitted")


def price_per_second(profile: ProviderProfile, model: str, size: str, settings: Settings) -> float:
    limits = profile.model_limits(model)
    listed = limits.price_per_second if limits else {}
    override = settings.prices_per_second.get(model, {})
    price = override.get(size, listed.get(size))
    if price is None:
        raise ProfileError(f"no price for {model} at {size} on provider {profile.name!r}; add it to the profile "
                           "or to REELFLOW_PRICES_PER_SECOND")
    return price


Profiles = ProviderProfile | Sequence[ProviderProfile]


def estimate(plan: Plan, scenes: list[ResolvedScene], profiles: Profiles, settings: Settings,
             reuse: Mapping[str, Reuse] | None = None) -> Estimate:
    """What the plan costs, each scene on its route's provider (one of `profiles`); with `reuse` (what the
    output's ledger already has), only what is left to pay."""
    budgets = [b for b in (plan.budget_usd, settings.budget_usd) if b is not None]
    return Estimate(provider=", ".join(p.name for p in _listed(profiles)),
                    scenes=_scene_costs(scenes, profiles, settings, reuse or {}, plan.qa.retake),
                    budget_usd=min(budgets) if budgets else None)


def extended(costs: Estimate, scenes: list[ResolvedScene], profiles: Profiles, settings: Settings) -> Estimate:
    """`costs` and what `scenes` (decided on during the run: a review's redos) cost at most."""
    return costs.model_copy(update={"scenes": [*costs.scenes, *_scene_costs(scenes, profiles, settings, {})]})


def _listed(profiles: Profiles) -> list[ProviderProfile]:
    return [profiles] if isinstance(profiles, ProviderProfile) else list(profiles)


def _scene_costs(scenes: list[ResolvedScene], profiles: Profiles, settings: Settings,
                 reuse: Mapping[str, Reuse], retakes: int = 0) -> list[SceneCost]:
    listed = _listed(profiles)
    by_name = {profile.name: profile for profile in listed}
    priced = [(s, by_name.get(s.provider, listed[0])) for s in scenes]
    return [_scene_cost(s, profile.name, reuse.get(s.id, Reuse(len(s.segments) + len(s.revisions))),
                        price_per_second(profile, s.model, s.size, settings), retakes) for s, profile in priced]


def _scene_cost(scene: ResolvedScene, provider: str, reuse: Reuse, price: float, retakes: int) -> SceneCost:
    seconds = [segment.seconds for segment in scene.segments] + [scene.total_seconds] * len(scene.revisions)
    return SceneCost(id=scene.id, provider=provider, model=scene.model, size=scene.size, seconds=scene.total_seconds,
                     billed_seconds=sum(seconds[step] for step in reuse.paid), jobs=len(reuse.paid),
                     reused=reuse.from_earlier_runs, price_per_second=price, notes=[*scene.notes, *reuse.notes],
                     retakes=retakes, take_seconds=sum(seconds))


class Spend:
    """Money committed by this run, checked before every create: no job may take it past the budget."""

    def __init__(self, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd
        self.usd = 0.0

    def commit(self, usd: float, what: str) -> None:
        if self.budget_usd is not None and self.usd + usd > self.budget_usd + 1e-9:
            raise BudgetExceeded(f"{what} (${usd:.2f}) would take this run's spend to ${self.usd + usd:.2f}, "
                                 f"past the budget ${self.budget_usd:.2f}; not submitted")
        self.usd = round(self.usd + usd, 4)

    def fits(self, usd: float) -> bool:
        """Whether `usd` more stays within the budget."""
        return self.budget_usd is None or self.usd + usd <= self.budget_usd + 1e-9

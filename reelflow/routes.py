"""Routes: which providers a plan's scenes may be rendered on, in which order.

A plan names its routes in `providers:` (a provider profile, with a model and sound of its own if given), or has
one route: its provider (REELFLOW_PROVIDER, its `provider:`, or the one whose credentials are set). Each scene is
resolved on every route it may take (`provider:` and `route:` narrow them), before any paid call: a route that
cannot make it (its size, length, frames, subjects, extensions, sound) is skipped, with the reason; the others are
ordered as listed, or cheapest first. The pipeline renders each scene on its first route, and moves it to the next
when that one cannot make it after all (see `moves_on`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .costs import price_per_second
from .errors import (
    AssetsExpiredError,
    AuthenticationError,
    JobGoneError,
    PermanentApiError,
    PlanError,
    ProviderOutageError,
    ProviderUnreachableError,
    ReelflowError,
    UnknownJobError,
    UserError,
    VideoFailedError,
)
from .plans import Plan, ResolvedScene, Route, Scene, validate_plan
from .profiles import ProviderProfile, load_profile
from .providers import active_profile, check_capabilities, check_images, check_settings, dialect
from .settings import Settings
from .storage import Storage


@dataclass(frozen=True)
class Routed:
    """A scene (and its takes) as it is requested on one route."""

    route: Route
    profile: ProviderProfile
    scenes: list[ResolvedScene]

    def usd(self, settings: Settings) -> float:
        """The scene's whole chain (one take) on this route, at list price."""
        scene = self.scenes[0]
        seconds = sum(s.seconds for s in scene.segments) + scene.total_seconds * len(scene.revisions)
        return round(seconds * price_per_second(self.profile, scene.model, scene.size, settings), 4)


@dataclass(frozen=True)
class RoutedPlan:
    """A plan checked against its routes: each scene's takes on their first route (what the run renders, and
    what the estimate prices), and every route each scene may take, in order."""

    scenes: list[ResolvedScene]
    routes: dict[str, list[Routed]] = field(default_factory=dict)  # by the plan's scene id
    skipped: dict[str, list[str]] = field(default_factory=dict)  # by the plan's scene id: why routes were passed over

    def routes_of(self, scene: ResolvedScene) -> list[Routed]:
        return self.routes.get(scene.shot_id, [])

    @property
    def profiles(self) -> list[ProviderProfile]:
        """Every provider a scene may be rendered on, each once, the first scene's first route first."""
        found: dict[str, ProviderProfile] = {}
        for options in self.routes.values():
            for routed in options:
                found.setdefault(routed.profile.name, routed.profile)
        return list(found.values())

    def made_where(self, scene_id: str, made_on: str) -> Routed:
        """The route the scene (or take) `scene_id` was made on (`made_on`: its provider and model, as the ledger
        and a scene's result name it), with the take as requested there; "" or a route the plan no longer has:
        its first."""
        first = next(scene for scene in self.scenes if scene.id == scene_id)
        options = [Routed(option.route, option.profile, [take]) for option in self.routes_of(first)
                   for take in option.scenes if take.id == scene_id]
        return next((option for option in options if option.scenes[0].made_on == made_on), options[0])

    def worst_usd(self, settings: Settings) -> float:
        """What the plan costs at most: every scene paid on every route it may take (each route's attempt
        paid, the last one delivered), every take."""
        return round(sum(routed.usd(settings) * len(routed.scenes) for options in self.routes.values()
                         for routed in options), 4)


def plan_routes(plan: Plan, profile: ProviderProfile) -> list[Route]:
    """The plan's routes: its `providers:`, else its one provider (`profile`, as the run chose it)."""
    return plan.providers or [Route(provider=profile.name)]


def routed_plan(plan: Plan, profile: ProviderProfile, settings: Settings, source: str = "plan") -> RoutedPlan:
    """Every scene checked on every route it may take, before any paid call; PlanError names every scene no route
    can make (each route's reason), and every problem of a plan with one route."""
    if not plan.providers:
        scenes = validate_plan(plan, profile, source)
        only = Route(provider=profile.name)
        return RoutedPlan(scenes, {raw.id: [Routed(only, profile, [s for s in scenes if s.shot_id == raw.id])]
                                   for raw in plan.scenes})
    if plan.characters or plan.mode == "batch":
        raise PlanError([f"{source}: providers: characters and batch mode are for a plan with one provider"])
    validate_plan(plan.model_copy(update={"scenes": []}), profile, source)  # (the plan's own fields)
    routed = RoutedPlan([])
    problems: list[str] = []
    for raw in plan.scenes:
        options, skipped = _scene_routes(raw, plan, settings, source)
        routed.skipped[raw.id] = skipped
        if not options:
            problems.append(f"{source}: scene {raw.id!r}: no route can make it ({'; '.join(skipped) or 'none fits'})")
            continue
        routed.routes[raw.id] = _ordered(options, plan, settings)
        routed.scenes.extend(routed.routes[raw.id][0].scenes)
    if problems:
        raise PlanError(problems)
    return routed


def _scene_routes(raw: Scene, plan: Plan, settings: Settings, source: str) -> tuple[list[Routed], list[str]]:
    """The routes the scene may take (as narrowed by its `provider:` and `route:`) that can make it, and why the
    others cannot."""
    candidates = [r for r in plan.providers if raw.route in (None, r.key) and raw.provider in (None, r.provider)]
    if not candidates and raw.provider is not None and raw.route is None:
        candidates = [Route(provider=raw.provider)]
    alone = plan.model_copy(update={"scenes": [raw], "music": None, "providers": [], "provider": None})
    options, skipped = [], []
    for route in candidates:
        try:
            profile = load_profile(route.provider, settings.providers_file)
            check_capabilities(profile, dialect(profile.api))
            options.append(Routed(route, profile, validate_plan(alone, profile, source, route)))
        except PlanError as e:
            skipped.append(f"{route.key}: {e.problems[0].removeprefix(f'{source}: scene {raw.id!r}: ')}")
        except UserError as e:  # the route's profile is unknown or broken
            skipped.append(f"{route.key}: {e}")
    return options, skipped


def _ordered(options: list[Routed], plan: Plan, settings: Settings) -> list[Routed]:
    if plan.prefer == "cheapest":
        return sorted(options, key=lambda routed: routed.usd(settings))  # (stable: equal prices keep their order)
    return options


def moves_on(error: ReelflowError) -> str | None:
    """Why a scene leaves its route for the next after `error` ended a step there (None: it stays, and fails or
    waits as on a single route): the provider refused the request or its content (a final failure), no longer
    offers the model (404), wants payment (402), refuses the key, cannot be reached, or has been failing for too
    long (`ProviderOutageError`: nothing was sent). A create whose answer was lost never moves: its job may exist,
    and be paid. (Whether the scene has a job in flight there is the caller's to check.)"""
    if isinstance(error, UnknownJobError | JobGoneError | AssetsExpiredError):  # (its job may exist; a video of
        return None  # the route's own, gone: the user decides, or the scene is made again on its route)
    if isinstance(error, VideoFailedError):
        return None if error.cause_may_pass else f"refused it ({error})"
    if isinstance(error, AuthenticationError):
        return "refused the key"
    if isinstance(error, ProviderUnreachableError):
        return "could not be reached"
    if isinstance(error, ProviderOutageError):
        return str(error)
    if isinstance(error, PermanentApiError) and error.status == 404:
        return f"does not offer the model ({error})"
    if isinstance(error, PermanentApiError) and (error.status == 402 or error.code in OUT_OF_CREDIT):
        return f"wants payment ({error})"
    return None


OUT_OF_CREDIT = ("insufficient_credits", "insufficient_quota")  # (OpenRouter's and OpenAI's codes for it)


def first_profile(plan: Plan, settings: Settings) -> ProviderProfile:
    """The profile of the plan's first route: its `providers:` first, else its one provider (REELFLOW_PROVIDER,
    its `provider:`, or the one whose credentials are set)."""
    if not plan.providers:
        return active_profile(settings, plan.provider)
    profile = load_profile(plan.providers[0].provider, settings.providers_file)
    check_capabilities(profile, dialect(profile.api))
    return profile


def checked_plan(plan: Plan, settings: Settings, source: str = "plan") -> RoutedPlan:
    """The plan checked against every route before any call: each route's settings (its credentials, its region),
    each scene on each route it may take."""
    routed = routed_plan(plan, first_profile(plan, settings), settings, source)
    shared = [name for name, value in (("REELFLOW_BASE_URL", settings.base_url), ("REELFLOW_API_KEY",
                                                                                   settings.api_key)) if value]
    if shared and len(routed.profiles) > 1:
        own = ", ".join(variable for profile in routed.profiles
                        for variable in filter(None, [profile.credentials.api_key, profile.credentials.base_url]))
        raise UserError(f"{source}: {' and '.join(shared)} would send every route to one provider: unset "
                        f"{'them' if len(shared) > 1 else 'it'} and set each provider's own ({own})")
    for profile in routed.profiles:
        check_settings(settings, profile)
    return routed


def check_route_images(routed: RoutedPlan, storage: Storage) -> None:
    """The images of each scene can reach each provider it may be rendered on (see `check_images`)."""
    for options in routed.routes.values():
        for route in options:
            check_images(route.profile, storage, route.scenes)

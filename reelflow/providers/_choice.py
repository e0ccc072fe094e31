"""Which provider a run uses: the one the user names (REELFLOW_PROVIDER, else the plan's `provider:`), else the
one whose credentials are set (each profile names the variables that pick it, `picked_by`), else the embedded
sandbox; and the lines that say so."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProfileError, UserError
from ..plans import Plan
from ..profiles import ProviderProfile, all_profiles
from ..settings import Settings
from ._connect import SANDBOX, Access, checked_profile, environment


@dataclass(frozen=True)
class Choice:
    """The provider a run uses, and what picked it: REELFLOW_PROVIDER, the plan's `provider:`, the variables set
    ("" for the sandbox, picked by none)."""

    profile: ProviderProfile
    by: str


def route_choices(plan: Plan, profiles: list[ProviderProfile], settings: Settings) -> list[Choice]:
    """The providers a run of `plan` uses, and what picked each: its routes' (`profiles`, from its `providers:`),
    else the one `choose_provider` picks."""
    if not plan.providers:
        return [choose_provider(settings, plan.provider)]
    return [Choice(profile, "the plan's `providers:`") for profile in profiles]


def choose_provider(settings: Settings, planned: str | None = None) -> Choice:
    """REELFLOW_PROVIDER, else the plan's own `provider:` (`planned`), else the one provider whose credentials are
    set; none: the sandbox. Several set, or only a key that reaches no video API, is refused in one line that
    says how to choose."""
    if settings.provider is not None:
        return Choice(checked_profile(settings.provider, settings), "REELFLOW_PROVIDER")
    if planned is not None:
        try:
            return Choice(checked_profile(planned, settings), "the plan's `provider:`")
        except ProfileError as e:
            raise ProfileError(f"the plan's provider: {e}") from e
    found = credentialed(settings)
    if len(found) > 1:
        listed = "; ".join(f"{profile.name} ({' and '.join(variables)})" for profile, variables in found)
        raise UserError(f"the credentials of several providers are set: {listed}. Choose one with "
                        "REELFLOW_PROVIDER=NAME or the plan's `provider: NAME`")
    if found:
        profile, variables = found[0]
        return Choice(checked_profile(profile.name, settings), " and ".join(variables))
    _refuse_keys_of_no_video_api(settings)
    return Choice(checked_profile(SANDBOX, settings), "")


def active_profile(settings: Settings, planned: str | None = None) -> ProviderProfile:
    """The profile a run uses (see `choose_provider`), its switches checked against what its dialect can do."""
    return choose_provider(settings, planned).profile


def credentialed(settings: Settings) -> list[tuple[ProviderProfile, list[str]]]:
    """Each profile one of whose `picked_by` sets of variables is all set, with the variables found."""
    found = []
    for profile in all_profiles(settings.providers_file):
        for variables in profile.picked_by:
            present = [_found(variable, profile, settings) for variable in variables]
            if all(present):
                found.append((profile, [name for name in present if name]))
                break
    return found


def _found(variable: str, profile: ProviderProfile, settings: Settings) -> str | None:
    """`variable`, if set; for the profile's base URL, REELFLOW_BASE_URL does as well."""
    if environment(variable):
        return variable
    return "REELFLOW_BASE_URL" if variable == profile.credentials.base_url and settings.base_url else None


def _refuse_keys_of_no_video_api(settings: Settings) -> None:
    """A key that picks no provider is not rendered on the sandbox as though there were none: a shut-down
    provider's, another API's of a provider (each profile says), or REELFLOW_API_KEY naming no provider."""
    for profile in all_profiles(settings.providers_file):
        key = profile.credentials.api_key
        if profile.shut_down and key and environment(key):
            raise UserError(f"{key} is set, but {profile.shut_down}; to render elsewhere, set "
                            f"{live_variables(settings)}")
        for variable, why in profile.credentials.other_keys.items():
            if environment(variable):
                raise UserError(f"{variable} is set, but {why}")
    if settings.api_key is not None:
        raise UserError("REELFLOW_API_KEY is set, but no provider is named: set REELFLOW_PROVIDER=NAME or the plan's "
                        "`provider: NAME` (`reelflow providers` lists them)")


def live_variables(settings: Settings) -> str:
    """What makes each provider that credentials pick real, e.g. "FAL_KEY (fal), or OPENROUTER_API_KEY
    (openrouter)"."""
    each = [f"{picking(profile)} ({profile.name})" for profile in all_profiles(settings.providers_file)
            if profile.picked_by]
    return ", ".join(each[:-1]) + (", or " if len(each) > 1 else "") + each[-1] if each else "a provider's key"


def picking(profile: ProviderProfile) -> str:
    """The variables that make the profile real: its `picked_by` sets, else its key or project."""
    sets = profile.picked_by or [[v] for v in (profile.credentials.api_key, profile.credentials.project) if v]
    return " or ".join(" with ".join(variables) for variables in sets) or "REELFLOW_API_KEY"


def announcement(choice: Choice, access: Access | None, settings: Settings) -> str:
    """The one line a run starts with: where it renders, and why there."""
    profile = choice.profile
    if access is not None:
        return f"Rendering on {profile.name!r} at {access.where()} (chosen by {choice.by})."
    if profile.name == SANDBOX:
        return ("No provider's credentials are set: rendering test videos on the embedded sandbox on loopback, at no "
                f"cost. To render for real, set {live_variables(settings)}.")
    return (f"No credentials of {profile.name!r} are set: rendering test videos on the embedded sandbox on loopback, "
            f"posing as {profile.name!r}. To render on {profile.name} for real, set {picking(profile)}.")


def going_live(profiles: list[ProviderProfile], command: str) -> list[str]:
    """After a run on the sandbox posing as `profiles`: the lines that render the same plan on them for real."""
    names = " and ".join(profile.name for profile in profiles)
    variables = [variable for profile in profiles
                 for variable in (profile.picked_by or [[profile.credentials.api_key or "REELFLOW_API_KEY"]])[0]]
    return [f"That ran on reelflow's sandbox, posing as {names}. To render the same plan on {names} for real:",
            "  export " + " ".join(f"{variable}=..." for variable in variables), f"  {command}"]

"""`reelflow doctor`: whether a run would get through, asked before anything is paid. For the active provider (or
each whose credentials are set): its credentials (variable names, never values), its API reached within a few
seconds with the key accepted, the plan's models offered today, the output's URLs signable where the provider
fetches reference images by URL; then the output writable and the Prefect server reachable. One finding a line:
passed, degraded (a run works, with less) or blocked (a run would fail), with the fix."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .errors import ApiError, AuthenticationError, PlanError, ProviderUnreachableError, ReelflowError, UserError
from .plans import Plan, validate_plan
from .profiles import ProviderProfile, builtin_profile_names, load_profile
from .providers import (
    SANDBOX,
    Access,
    Connection,
    check_settings,
    checked_profile,
    choose_provider,
    credentialed,
    dialect,
    environment,
    live_variables,
    open_gateway,
    picking,
)
from .settings import Settings
from .storage import DEFAULT_OUTPUT, Storage

Verdict = Literal["passed", "degraded", "blocked"]
REACH_SECONDS = 5.0
PROBE = ".reelflow-doctor-probe"


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    subject: str
    detail: str

    def line(self) -> str:
        return f"{self.verdict:<8} {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Examined:
    """What is examined: the plan (if any), the settings, and where the run would write."""

    plan: Plan | None
    settings: Settings
    output: str | None

    @property
    def storage(self) -> Storage:
        plan = self.plan
        root = Storage(self.output or (plan.output if plan else None) or DEFAULT_OUTPUT, self.settings.storage_options)
        return root.child(plan.name) if plan else root


def examine(what: Examined) -> list[Finding]:
    """Every finding, one per line to print."""
    try:
        profiles = _providers(what)
    except UserError as e:
        findings = [Finding("blocked", "provider", str(e))]
    else:
        findings = [finding for profile in profiles for finding in _provider_findings(profile, what)]
    return [*findings, _output_finding(what), _prefect_finding(what.settings)]


def _providers(what: Examined) -> list[ProviderProfile]:
    """The provider named (REELFLOW_PROVIDER, the plan's `provider:`), else each whose credentials are set, else
    the one a run would use."""
    planned = what.plan.provider if what.plan else None
    if what.settings.provider is None and planned is None:
        found = [checked_profile(profile.name, what.settings) for profile, _ in credentialed(what.settings)]
        if found:
            return found
    return [choose_provider(what.settings, planned).profile]


def _provider_findings(profile: ProviderProfile, what: Examined) -> list[Finding]:
    subject = f"{profile.name} credentials"
    try:
        access = check_settings(what.settings, profile)
    except UserError as e:
        return [Finding("blocked", subject, str(e))]
    models, plan_finding = _models_of(profile, what.plan)
    if access is None:
        fix = live_variables(what.settings) if profile.name == SANDBOX else picking(profile)
        found = [Finding("degraded", subject, f"none set: runs render test videos on reelflow's sandbox; set {fix} "
                         "to render for real")]
    else:
        found = [Finding("passed", subject, f"{', '.join(_variables_set(profile, what.settings))} set")]
        api = _api_findings(profile, access, models, what.settings)
        found += api + (_catalog_findings(profile, access) if api[0].verdict == "passed" else [])
    found += [plan_finding] if plan_finding else []
    return found + _image_findings(profile, what)


def _variables_set(profile: ProviderProfile, settings: Settings) -> list[str]:
    """The names of the provider's variables that are set (never their values)."""
    own = [v for v in profile.credentials.variables() if environment(v)]
    ours = [name for name, value in (("REELFLOW_API_KEY", settings.api_key), ("REELFLOW_BASE_URL", settings.base_url))
            if value is not None]
    return ours + own


def _models_of(profile: ProviderProfile, plan: Plan | None) -> tuple[list[str], Finding | None]:
    """The models the plan renders with on `profile` (its default without a plan), and what validating the plan
    against the provider found."""
    if plan is None:
        return [profile.default_model], None
    try:
        scenes = validate_plan(plan, profile)
    except PlanError as e:
        more = f" (and {len(e.problems) - 1} more: `reelflow validate` lists each)" if len(e.problems) > 1 else ""
        return [profile.default_model], Finding("blocked", f"{profile.name} plan", e.problems[0] + more)
    return sorted({scene.model for scene in scenes}), Finding("passed", f"{profile.name} plan", "valid")


def _api_findings(profile: ProviderProfile, access: Access, models: list[str], settings: Settings) -> list[Finding]:
    """Its API reached within REACH_SECONDS with the key accepted, and the models it offers today."""
    subject, where = f"{profile.name} API", access.where()
    if not hasattr(dialect(profile.api), "check_access"):  # a dialect of another package, from before doctor asked
        return [Finding("degraded", subject, f"its dialect {profile.api!r} has no key check (`check_access`): the "
                        "first run finds out whether the key is accepted")]
    started = time.monotonic()
    try:
        offered = asyncio.run(_offered(profile, access, models, settings))
    except TimeoutError:
        return [Finding("blocked", subject, f"{where} did not answer within {REACH_SECONDS:g} s: check the network "
                        "and the provider's base URL")]
    except (AuthenticationError, ProviderUnreachableError) as e:
        return [Finding("blocked", subject, str(e))]
    except ApiError as e:
        return [Finding("degraded", subject, f"{where} answered, but: {e}")]
    answered = Finding("passed", subject, f"{where} answered in {time.monotonic() - started:.1f} s and accepted the "
                       "key")
    if offered is None:
        return [answered, Finding("degraded", f"{profile.name} models", f"{profile.name} lists no models: "
                                  f"{', '.join(models)} cannot be checked before a run")]
    missing = [model for model in models if model not in offered]
    if missing:
        return [answered, Finding("blocked", f"{profile.name} models", f"{', '.join(missing)} not offered by "
                                  f"{profile.name} today: choose another (`reelflow providers {profile.name}`)")]
    return [answered, Finding("passed", f"{profile.name} models", f"{', '.join(models)} offered today")]


def _catalog_findings(profile: ProviderProfile, access: Access) -> list[Finding]:
    """Where the provider publishes its model catalog (OpenRouter), how the built-in profile differs from it: models
    listed that it lacks, models it has that are gone, prices changed; one line each."""
    if profile.api != "openrouter-videos" or access.base_url is None:
        return []
    from .providers.openrouter_catalog import catalog_changes, read_catalog

    subject = f"{profile.name} catalog"
    builtin = load_profile(profile.name) if profile.name in builtin_profile_names() else profile
    try:
        catalog = read_catalog(access.base_url, access.api_key, REACH_SECONDS)
    except ApiError as e:
        return [Finding("degraded", subject, f"could not be compared with the built-in profile: {e}")]
    lines = catalog_changes(builtin, catalog).lines(builtin.name)
    if not lines:
        return [Finding("passed", subject, f"the built-in {builtin.name} profile matches the live catalog "
                        f"({len(catalog)} models)")]
    return [Finding("degraded" if hurts else "passed", subject, line) for hurts, line in lines]


async def _offered(profile: ProviderProfile, access: Access, models: list[str], settings: Settings) -> set[str] | None:
    quick = settings.model_copy(update={"request_timeout_seconds": REACH_SECONDS, "request_retries": 0})
    gateway = open_gateway(Connection(access.base_url, access.api_key, profile, embedded_sandbox=False,
                                      project=access.project, location=access.location), quick)
    try:
        return await asyncio.wait_for(gateway.check_access(models), REACH_SECONDS)
    finally:
        await gateway.close()


def _image_findings(profile: ProviderProfile, what: Examined) -> list[Finding]:
    """Where the provider fetches reference images by URL: whether the output signs URLs for it."""
    transport = dialect(profile.api).capabilities.images
    if transport == "bytes":
        return []
    subject = f"{profile.name} reference images"
    try:
        signed = what.storage.signed_url(PROBE, seconds=60)
    except ReelflowError as e:
        return [Finding("blocked", subject, f"the output cannot sign URLs: {e}")]
    if signed is not None:
        return [Finding("passed", subject, "fetched by the provider from URLs the output signs")]
    if transport == "url":
        return [Finding("blocked", subject, f"{profile.name} fetches them from URLs only, and "
                        f"{what.storage.location()} signs none: write the output to an object store (s3://, gs://)")]
    how = "go inline, as data URLs" if transport == "url-or-data" else f"are uploaded to {profile.name}'s storage"
    return [Finding("degraded", subject, f"{what.storage.location()} signs no URLs, so they {how} (an s3:// or "
                    "gs:// output signs them)")]


def _output_finding(what: Examined) -> Finding:
    """The output writable: a probe object written and removed."""
    try:
        storage = what.storage
        storage.write_bytes(b"reelflow doctor", PROBE)
        storage.remove(PROBE)
    except ReelflowError as e:
        return Finding("blocked", "output", f"{e}: choose another output (--output, or the plan's `output:`), or "
                       "give it the permissions or credentials to write")
    return Finding("passed", "output", f"{storage.location()} is writable")


def _prefect_finding(settings: Settings) -> Finding:
    """The Prefect server runs are recorded in: the user's (PREFECT_API_URL), else the local one reelflow starts."""
    from .prefect_server import healthy, local_server_url

    url = os.environ.get("PREFECT_API_URL")
    if url:
        if healthy(url):
            return Finding("passed", "Prefect", f"the server at {url} answers")
        return Finding("blocked", "Prefect", f"the server at {url} (PREFECT_API_URL) does not answer: start it, or "
                       "unset PREFECT_API_URL to use a local one")
    if settings.prefect_server == "temporary":
        return Finding("passed", "Prefect", "each run starts a temporary server of its own")
    local = local_server_url(settings)
    if healthy(local):
        return Finding("passed", "Prefect", f"the local server at {local} answers")
    if _taken(local):
        return Finding("blocked", "Prefect", f"port {settings.prefect_port} is taken by something other than a "
                       "Prefect server: set REELFLOW_PREFECT_PORT to a free port")
    return Finding("passed", "Prefect", f"no local server yet: a run starts one at {local}")


def _taken(url: str) -> bool:
    address = urlsplit(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address.hostname or "127.0.0.1", address.port or 80)) == 0

"""Which provider a run talks to: a real one (its key and base URL, from the variables its profile names),
or, without a key, the embedded sandbox posing as it on loopback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

from ..errors import ProfileError, UserError
from ..plans import ResolvedScene
from ..profiles import ProviderProfile, load_profile
from ..sandbox_process import sandbox_process
from ..settings import Settings
from ..storage import Storage
from ._base import ProviderConfig, VideoProvider
from ._gateway import Gateway, Pacer
from ._registry import dialect, posed_dialects

SANDBOX = "sandbox"  # the profile of a run for which no provider's credentials are set


@dataclass(frozen=True)
class Access:
    """How a run reaches a live provider, from the settings alone (no call made)."""

    base_url: str | None  # None: the dialect's SDK picks its own (Google's, per region)
    api_key: SecretStr | None  # None: the SDK finds credentials for `project` itself
    project: str | None = None
    location: str | None = None

    def where(self) -> str:
        if self.project:
            return f"project {self.project} in {self.location}"
        return self.base_url or "its SDK's own endpoint"


@dataclass(frozen=True)
class Connection:
    base_url: str | None  # None: the dialect's SDK picks its own (Google's, per region)
    api_key: SecretStr | None  # None: the SDK finds credentials for `project` itself
    profile: ProviderProfile
    embedded_sandbox: bool
    project: str | None = None
    location: str | None = None

    def describe(self) -> str:
        if self.embedded_sandbox:
            return f"Using the embedded sandbox on loopback ({self.base_url}), posing as {self.profile.name!r}"
        return f"Using provider {self.profile.name!r} ({self.access.where()})"

    @property
    def access(self) -> Access:
        return Access(self.base_url, self.api_key, self.project, self.location)


def key_variables(profile: ProviderProfile) -> list[str]:
    """Where the provider's credentials are looked for, first one first: a key, or a project (whose SDK finds
    the credentials itself)."""
    return ["REELFLOW_API_KEY", *filter(None, [profile.credentials.api_key, profile.credentials.project])]


def environment(name: str) -> str | None:
    """A variable of the environment, else of `.env` in the working directory (as Settings reads it)."""
    return os.environ.get(name) or (dotenv_values(".env").get(name) if Path(".env").is_file() else None)


def provider_key(settings: Settings, profile: ProviderProfile) -> SecretStr | None:
    """The provider's API key: REELFLOW_API_KEY over the variable the profile names."""
    if settings.api_key is not None:
        return settings.api_key
    variable = profile.credentials.api_key
    value = environment(variable) if variable else None
    return SecretStr(value) if value else None


def _variable(name: str | None) -> str | None:
    return environment(name) if name else None


def uses_embedded_sandbox(settings: Settings, profile: ProviderProfile) -> bool:
    """Whether a run stands up the sandbox: neither a key nor a project is set for the provider."""
    return provider_key(settings, profile) is None and _variable(profile.credentials.project) is None


def provider_base_url(settings: Settings, profile: ProviderProfile) -> str | None:
    variable = profile.credentials.base_url
    return settings.base_url or (environment(variable) if variable else None) or profile.base_url


def base_url_variables(profile: ProviderProfile) -> str:
    return " or ".join(["REELFLOW_BASE_URL", *filter(None, [profile.credentials.base_url])])


def provider_access(settings: Settings, profile: ProviderProfile) -> Access | None:
    """How a run reaches the provider: None when neither its key nor its project is set (a run then stands up the
    sandbox posing as it). Every setting a run would miss is refused here, before any call: `reelflow validate`
    and a run ask the same."""
    key, project = provider_key(settings, profile), _variable(profile.credentials.project)
    if key is None and project is None:
        return None
    base_url = provider_base_url(settings, profile)
    if profile.shut_down and base_url == profile.base_url:
        raise UserError(f"provider {profile.name!r}: {profile.shut_down}; set {base_url_variables(profile)} to a "
                        "service that still serves its API, or choose another provider (`reelflow providers`)")
    if not base_url and not dialect(profile.api).capabilities.own_endpoint:
        raise UserError(f"provider {profile.name!r} has no base URL: set {base_url_variables(profile)}")
    location = _variable(profile.credentials.location)
    if key is None and location is None:
        raise UserError(f"provider {profile.name!r}: set {profile.credentials.location} (the region of project "
                        f"{project})")
    return Access(base_url, key, project if key is None else None, location if key is None else None)


def checked_profile(name: str, settings: Settings) -> ProviderProfile:
    """Profile `name`, its switches checked against what its dialect can do at all."""
    profile = load_profile(name, settings.providers_file)
    check_capabilities(profile, dialect(profile.api))
    return profile


def check_capabilities(profile: ProviderProfile, provider: type[VideoProvider]) -> None:
    """A profile may switch off what its dialect does, never switch on what it cannot."""
    can = provider.capabilities
    wrong = profile.capabilities.beyond(can)
    wrong += [f"variants: {v}" for v in profile.variants if v not in can.variants]
    mapped = sorted(name for name, limits in profile.models.items() if limits.endpoints)
    if mapped and not can.input_maps:
        wrong.append(f"input maps (models {', '.join(mapped)} have endpoints)")
    unmapped = sorted(name for name, limits in profile.models.items() if not limits.endpoints)
    if can.input_maps and unmapped:
        raise ProfileError(f"profile {profile.name!r}: models {', '.join(unmapped)} have no endpoints: its dialect "
                           f"{profile.api!r} sends each model's inputs as its map (`endpoints:`) writes them")
    if wrong:
        raise ProfileError(f"profile {profile.name!r}: its dialect {profile.api!r} cannot do {', '.join(wrong)}")


def image_delivery(profile: ProviderProfile, storage: Storage) -> str | None:
    """How reference images reach the provider: None when they are sent along with the request; else
    "presigned URL" (the output's object store signs one), "data URL" (inline, where the dialect takes it) or
    "upload" (to the provider's own storage, where the dialect has one).
    A dialect that only fetches URLs, with an output that cannot sign, is refused before any call."""
    transport = dialect(profile.api).capabilities.images
    if transport == "bytes":
        return None
    if storage.signed_url("probe", seconds=60) is not None:
        return "presigned URL"
    if transport == "url-or-data":
        return "data URL"
    if transport == "url-or-upload":
        return "upload"
    raise UserError(f"provider {profile.name!r} fetches reference images from URLs only, and {storage.location()} "
                    "cannot give presigned URLs: write the output to an object store (s3://, gs://)")


def check_images(profile: ProviderProfile, storage: Storage, scenes: list[ResolvedScene]) -> None:
    """Scenes that send images (a reference, a last image, a continuation's first frame) can reach the provider."""
    if any(s.image or s.last_image or s.stitched_locally for s in scenes):
        image_delivery(profile, storage)


def check_settings(settings: Settings, profile: ProviderProfile) -> Access | None:
    """Settings that a run would miss, or that ask for what the provider cannot do, refused before any call
    (`reelflow validate` and a run alike); how the run reaches the provider (None: the embedded sandbox)."""
    if settings.webhook_secret is not None and not profile.webhooks:
        raise UserError(f"REELFLOW_WEBHOOK_SECRET is set, but provider {profile.name!r} sends no webhooks "
                        "(unset it: jobs are then polled)")
    return provider_access(settings, profile)


@contextlib.contextmanager
def connect_provider(settings: Settings, profile: ProviderProfile) -> Iterator[Connection]:
    """The provider for this run; without its credentials, a sandbox posing as it on loopback for as long as the
    block lasts, in a process of its own (a dialect the sandbox cannot pose as needs its key)."""
    access = provider_access(settings, profile)
    if access is not None:
        yield Connection(access.base_url, access.api_key, profile, embedded_sandbox=False, project=access.project,
                         location=access.location)
        return
    if profile.api not in posed_dialects():
        raise UserError(f"provider {profile.name!r}: set {' or '.join(key_variables(profile))} (the sandbox "
                        f"cannot pose as its dialect {profile.api!r})")
    switches = ["--profile", profile.name, "--job-seconds", str(settings.sandbox_job_seconds)]
    if settings.providers_file:
        switches += ["--providers-file", str(settings.providers_file)]
    with sandbox_process(*switches) as sandbox:
        yield Connection(sandbox.base_url, SecretStr(sandbox.api_key), profile, embedded_sandbox=True)


@contextlib.contextmanager
def connect_providers(settings: Settings, profiles: list[ProviderProfile]) -> Iterator[list[Connection]]:
    """Each of the providers for this run (see `connect_provider`), for as long as the block lasts."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(connect_provider(settings, profile)) for profile in profiles]


def open_gateway(connection: Connection, settings: Settings, output: str | None = None) -> Gateway:
    """The provider of `connection` in its dialect, with the settings' retries, timeout and request pacing, for a
    run writing to `output`."""
    config = ProviderConfig(base_url=connection.base_url, api_key=connection.api_key, profile=connection.profile,
                            timeout_seconds=settings.request_timeout_seconds, retries=settings.request_retries,
                            project=connection.project, location=connection.location, output=output,
                            callback_url=settings.webhook_url)
    per_minute = settings.requests_per_minute
    return Gateway(dialect(connection.profile.api)(config), connection.profile,
                   Pacer(per_minute) if per_minute else None, settings.request_retries)

"""Which provider a run talks to: a real one (key + base URL) or the embedded sandbox."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import SecretStr

from ..errors import UserError
from ..profiles import ProviderProfile, builtin_profile_names, load_profile
from ..settings import Settings

SANDBOX_NOTICE = ("No OPENAI_API_KEY set: rendering against the embedded sandbox on loopback "
                  "(set OPENAI_API_KEY and OPENAI_BASE_URL to use a real provider).")


@dataclass(frozen=True)
class Connection:
    base_url: str
    api_key: SecretStr
    profile: ProviderProfile
    embedded_sandbox: bool

    def describe(self) -> str:
        if self.embedded_sandbox:
            return SANDBOX_NOTICE
        return f"Using provider {self.profile.name!r} at {self.base_url}"


def active_profile(settings: Settings) -> ProviderProfile:
    return load_profile(settings.provider_name, settings.providers_file)


def check_settings(settings: Settings, profile: ProviderProfile) -> None:
    """Settings that ask for what the provider cannot do are refused before any call."""
    if settings.webhook_secret is not None and not profile.webhooks:
        raise UserError(f"REELFLOW_WEBHOOK_SECRET is set, but provider {profile.name!r} sends no webhooks "
                        "(unset it: jobs are then polled)")


@contextlib.contextmanager
def connect_provider(settings: Settings) -> Iterator[Connection]:
    """The provider for this run; without a key, a sandbox on loopback for as long as the block lasts."""
    profile = active_profile(settings)
    if settings.openai_api_key is not None:
        base_url = settings.openai_base_url or profile.base_url
        if not base_url:
            raise UserError(f"provider {profile.name!r} has no base URL: set OPENAI_BASE_URL")
        yield Connection(base_url, settings.openai_api_key, profile, embedded_sandbox=False)
        return
    from ..sandbox import run_sandbox

    posing_as = profile.name if profile.name in builtin_profile_names() else "sandbox"
    with run_sandbox(profile=posing_as, job_seconds=settings.sandbox_job_seconds) as sandbox:
        yield Connection(sandbox.base_url, SecretStr(sandbox.api_key), profile, embedded_sandbox=True)

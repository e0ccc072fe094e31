"""How a sandbox server behaves: timing, limits, faults, webhooks, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FAULT_KINDS = ("5xx", "429", "drop", "lost", "truncate", "slow")


class Faults(BaseModel):
    """Probabilities per request of each injected fault (`5xx=0.1,429=0.05,...`).

    `drop` closes the connection before the request is handled; `lost` handles it (a job may be
    created) and then closes the connection, so the client never sees the answer."""

    model_config = ConfigDict(frozen=True)

    rates: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Faults:
        rates: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kind, sep, value = item.partition("=")
            if not sep or kind not in FAULT_KINDS:
                raise ValueError(f"bad fault {item!r}: use KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}")
            try:
                rates[kind] = float(value)
            except ValueError as e:
                raise ValueError(f"bad fault rate in {item!r}: {value!r} is not a number") from e
        if sum(rates.values()) > 1:
            raise ValueError(f"fault rates in {spec!r} add up to more than 1")
        return cls(rates=rates)

    def pick(self, draw: float) -> str | None:
        """The fault for a uniform `draw` in [0, 1), or None."""
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += self.rates.get(kind, 0.0)
            if draw < edge:
                return kind
        return None


class SandboxConfig(BaseModel):
    """Every switch of `reelflow sandbox`, usable from Python as well."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to listen on (loopback by default).")
    port: int = Field(default=0, description="Port to listen on; 0 picks a free one.")
    profile: str = Field(default="sandbox", description="Provider profile whose dialect and limits it poses as.")
    providers_file: Path | None = Field(default=None, description="The user's own profiles, as Settings names it.")
    job_seconds: float = Field(default=2.0, ge=0, description="Wall seconds a job takes to complete.")
    rpm: int | None = Field(default=None, ge=1, description="Job-creating requests per minute (429 above).")
    max_concurrent: int | None = Field(default=None, ge=1, description="Unfinished jobs at once (429 above).")
    faults: Faults = Field(default_factory=Faults, description="Injected fault rates per request.")
    fault_scope: Literal["all", "creates"] = Field(
        default="all", description="Which requests the faults hit: all, or only job-creating ones.")
    slow_seconds: float = Field(default=2.0, ge=0, description="Delay of a `slow` fault.")
    seed: int = Field(default=0, description="Seed of the fault draws: the same seed, the same faults.")
    state_dir: Path | None = Field(default=None, description="Keep jobs and media here across restarts.")
    webhook_url: str | None = Field(default=None, description="Where to POST signed video events (OpenRouter: the "
                                    "workspace's default callback URL, which a create's `callback_url` overrides).")
    webhook_secret: str | None = Field(default=None, description="`whsec_...` secret that signs events (OpenRouter: "
                                       "the workspace's signing secret, any text).")
    api_keys: frozenset[str] | None = Field(
        default=None, description="Accepted bearer keys; None accepts any non-empty key."
    )
    asset_ttl_seconds: int = Field(default=3600, description="How long content stays downloadable.")
    refuse: list[str] = Field(default_factory=list, description="Words whose prompts it refuses, as a moderation "
                              "filter does: the job ends failed (a refusal, final).")
    retired: list[str] = Field(default_factory=list, description="Models it no longer offers: a create for one is "
                               "answered 404, as for a model retired.")
    out_of_credit: bool = Field(default=False, description="Every create answered 402, as for an account out of "
                                "credit.")
    down_seconds: float = Field(default=0, ge=0, description="Every request answered 503 for this long after it "
                                "starts, as in an outage.")

    @field_validator("faults", mode="before")
    @classmethod
    def _parse_faults(cls, value: object) -> object:
        return Faults.parse(value) if isinstance(value, str) else value

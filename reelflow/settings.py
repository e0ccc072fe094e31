"""reelflow's settings: environment (`REELFLOW_*`) and `.env`. A provider's own key and URL variables
(`OPENAI_API_KEY`, `OPENROUTER_API_KEY`, ...) are named by its profile (`reelflow.providers`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob reelflow has; each one is an environment variable `REELFLOW_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="REELFLOW_", env_file=".env", extra="ignore", frozen=True)

    api_key: SecretStr | None = Field(
        default=None, description="API key of the active provider, over the variable its profile names "
        "(OPENROUTER_API_KEY, FAL_KEY, ...); it picks no provider by itself. No key at all: reelflow starts its "
        "embedded sandbox on loopback, posing as the provider.",
    )
    base_url: str | None = Field(
        default=None, description="Base URL of the provider's API, over its profile's own variable and default.",
    )
    provider: str | None = Field(
        default=None, description="Provider profile: built in (`reelflow providers` lists them) or from "
        "providers_file; over a plan's own `provider:`. Unset: the plan's, else the one provider whose credentials "
        "are set, else the sandbox.",
    )
    providers_file: Path | None = Field(default=None, description="YAML file with your own provider profiles.")
    max_concurrent: int = Field(default=4, ge=1, description="Scenes rendering at once (unfinished jobs).")
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Pace job-creating requests to this rate (your account's limit).",
    )
    request_retries: int = Field(default=3, ge=0, description="SDK-level retries of one HTTP request.")
    request_timeout_seconds: float = Field(default=120, gt=0, description="Timeout of one HTTP request.")
    task_retries: int = Field(default=3, ge=0, description="Prefect retries of a task after a transient failure.")
    retry_delays_seconds: list[float] = Field(
        default=[2, 10, 30], description="Waits between task retries (the last one repeats).",
    )
    poll_min_seconds: float = Field(default=1, gt=0, description="Shortest wait between two status checks.")
    poll_max_seconds: float = Field(default=30, gt=0, description="Longest wait between two status checks.")
    job_timeout_seconds: float = Field(default=3600, gt=0, description="Give up on a job after this long.")
    lease_seconds: float = Field(default=60, gt=0, description="How long a run's hold on its output lasts unless "
                                 "renewed (every third of it): after the holder stopped, the next run waits at most "
                                 "this long to take the output over.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="The secret the provider signs video events with: Standard Webhooks' (whsec_...), "
        "or OpenRouter's workspace signing secret. Set: `reelflow webhooks` records the events and waiting jobs "
        "read them, polling only as a slow fallback.",
    )
    webhook_url: str | None = Field(
        default=None, description="The public HTTPS address of `reelflow webhooks`, sent as each job's "
        "`callback_url` to a provider that takes one per request (OpenRouter); unset: its account's default, if any.",
    )
    webhook_inbox: str = Field(
        default="file://./out/webhooks", description="Where `reelflow webhooks` records video events and waiting "
        "jobs look for them (an fsspec URL every worker can reach).",
    )
    webhook_fallback_seconds: float = Field(
        default=300, gt=0, description="With webhooks: the longest wait between two status checks (an event "
        "may be lost).",
    )
    generation_attempts: int = Field(
        default=3, ge=1, description="Jobs created for one scene when generation fails for a transient reason.",
    )
    route_outage_seconds: float = Field(
        default=300, gt=0, description="How long a provider may keep failing (5xx, timeouts) before a scene of a "
        "plan with routes that has sent it nothing yet moves to its next route.",
    )
    reference_format: Literal["JPEG", "PNG", "WEBP"] = Field(
        default="JPEG", description="File format of prepared reference images.",
    )
    crossfade_seconds: float = Field(
        default=0.03, ge=0.001, le=0.04, description="Sound crossfade at each join of a scene's clips, and the fade "
        "at each cut in the reel, so no join clicks (at most 40 ms: a dropped repeated frame's sound at 24 fps).",
    )
    reference_url_seconds: int = Field(
        default=3600, ge=60, description="How long a presigned URL of a reference image stays valid, for "
        "providers that fetch images themselves (an output on an object store).",
    )
    budget_usd: float | None = Field(
        default=None, gt=0, description="Most a run may spend, in USD (a plan's own `budget_usd` may lower it).",
    )
    prices_per_second: dict[str, dict[str, float]] = Field(
        default_factory=dict, description='USD per second of output by model and size, as JSON, over the '
        'provider profile\'s list, e.g. {"sora-2": {"1280x720": 0.1}}.',
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for the output storage, as JSON (e.g. endpoint_url).",
    )
    prefect_server: Literal["local", "temporary"] = Field(
        default="local", description="Where runs are recorded when no PREFECT_API_URL is set: `local` starts a "
        "Prefect server in the background on first use and reuses it (`prefect server stop` stops it); "
        "`temporary` uses Prefect's per-process temporary server (10-20 s per command).",
    )
    ui_update_seconds: float = Field(default=2, gt=0, description="Least time between two updates of a run's "
                                     "progress and scene table in the Prefect UI.")
    prefect_port: int = Field(default=4200, ge=1, le=65535, description="Port of the local Prefect server.")
    prefect_server_niceness: int = Field(
        default=10, ge=0, le=19, description="CPU priority the local Prefect server gives up (`nice`), so that "
        "recording runs yields to the work it records: it catches up when the machine is idle.",
    )
    scene_deployment: str | None = Field(
        default=None, description="Render each scene as a run of this deployment (render-scene/scene, served "
        "by workers), so several workers share one plan under Prefect global limits; unset: in this process.",
    )
    schedule_plan: str = Field(
        default="deployments/plans/demo.yaml", description="Plan file (path or fsspec URL) that the scheduled "
        "deployment renders.",
    )
    schedule_cron: str = Field(default="0 6 * * *", description="When the scheduled deployment runs (cron).")
    schedule_timezone: str = Field(default="UTC", description="Time zone of schedule_cron (IANA, e.g. Europe/Berlin).")
    sandbox_job_seconds: float = Field(default=2, ge=0, description="Job length of the embedded sandbox.")

    @field_validator("storage_options", "prices_per_second", mode="before")
    @classmethod
    def _json_options(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


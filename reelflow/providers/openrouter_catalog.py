"""OpenRouter's video model catalog in reelflow's terms: a profile of the user's written from it (`reelflow providers
--refresh openrouter`), and what changed since a profile was written (`reelflow doctor`).

The catalog is `GET /api/v1/videos/models`, read through OpenRouter's SDK (1.3.84: `video_generation.
list_videos_models`, answered as `VideoModelsListResponse`, whose `data` are `VideoModel`s): each model's `id` and
`canonical_slug`, `supported_durations`, `supported_resolutions`, `supported_aspect_ratios`, `supported_sizes`,
`supported_frame_images`, `generate_audio`, `allowed_passthrough_parameters` and `pricing_skus` ("Pricing SKUs with
provider prefix stripped, values as strings"). The catalog says nothing of which models continue a job
(`previous_job_id`) or take `input_references`: those switches are kept from the profile the refresh starts from
(off for a model it lacks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from openrouter import OpenRouter, errors
from openrouter.components import VideoModel
from openrouter.utils.retries import BackoffStrategy, RetryConfig
from pydantic import SecretStr, ValidationError

from ..errors import ApiError
from ..profiles import ASPECT_RATIOS, RESOLUTION_LINES, ModelLimits, ProviderProfile, tier_of, video_tokens_per_second

CATALOG = "GET /api/v1/videos/models"
SAME_PRICE = 0.02  # prices this close (relative) are the same: per-token prices are estimates, rounded
# A price SKU, as the catalog names them: `duration_seconds`, `duration_seconds_with_audio_720p`,
# `duration_seconds_without_audio_720p`, `cents_per_video_output_second_1080p`, `video_tokens` (the catalog's
# examples in OpenRouter's cookbook, cookbook/video-generation/choose-video-model, and the built-in profile's notes);
# others (per image input, per request) are not per second of video and are left out.
_FRAMES = ("first_frame", "last_frame")  # `SupportedFrameImage` (SDK 1.3.84)
_TIER = re.compile(r"(?:^|_)(" + "|".join(RESOLUTION_LINES).lower() + r")(?:_|$)")


@dataclass(frozen=True)
class Sku:
    """One price of the catalog, per second or per video token, in USD."""

    usd: float
    per_token: bool
    tier: str | None  # the resolution tier it is for; None: every tier
    audio: bool | None  # with or without sound; None: either

    @classmethod
    def parse(cls, name: str, price: str) -> Sku | None:
        key = name.lower()
        try:
            usd = float(price) / (100 if "cents" in key else 1)
        except ValueError:
            return None
        if "token" not in key and "second" not in key:
            return None
        tier = _TIER.search(key)
        audio = False if "without_audio" in key else True if "with_audio" in key else None
        return cls(usd, "token" in key, _tier_named(tier.group(1)) if tier else None, audio)

    def per_second(self, size: str) -> float:
        return self.usd * video_tokens_per_second(size) if self.per_token else self.usd


def _tier_named(lowered: str) -> str:
    return next(tier for tier in RESOLUTION_LINES if tier.lower() == lowered)


def price_per_second(skus: dict[str, str], sizes: list[str], audio: bool) -> dict[str, float]:
    """Each size's USD per second: the SKU of its tier (else one for every tier), with sound when the model makes
    it (else without), the dearest where several fit equally."""
    parsed = [sku for name, price in skus.items() if (sku := Sku.parse(name, price)) is not None]
    prices: dict[str, float] = {}
    for size in sizes:
        tier = tier_of(size)
        fitting = [sku for sku in parsed if sku.tier == tier] or [sku for sku in parsed if sku.tier is None]
        ranked = sorted(fitting, key=lambda sku: (_audio_rank(sku.audio, audio), -sku.per_second(size)))
        if ranked:
            prices[size] = round(ranked[0].per_second(size), 4)
    return prices


def _audio_rank(sku_audio: bool | None, model_audio: bool) -> int:
    return 0 if sku_audio is model_audio else 1 if sku_audio is None else 2


def read_catalog(base_url: str, api_key: SecretStr | None, timeout_seconds: float = 30) -> list[VideoModel]:
    """The catalog at `base_url` (the key sent when there is one; the route lists without it)."""
    retried = RetryConfig("backoff", BackoffStrategy(500, 2_000, 2, int(timeout_seconds * 1000)),
                          retry_connection_errors=False)  # a 5xx retried for at most the timeout; no host: said at once
    with httpx.Client(timeout=timeout_seconds) as http:
        sdk = OpenRouter(api_key=api_key.get_secret_value() if api_key else None, server_url=base_url.rstrip("/"),
                         client=http, timeout_ms=int(timeout_seconds * 1000), retry_config=retried)
        try:
            return list(sdk.video_generation.list_videos_models().data)
        except errors.OpenRouterError as e:
            raise ApiError(f"{CATALOG} at {base_url}: {e.status_code} {e.message}", status=e.status_code) from e
        except (errors.NoResponseError, errors.ResponseValidationError, httpx.HTTPError) as e:
            raise ApiError(f"{CATALOG} at {base_url}: {type(e).__name__}: {e}") from e


def limits_of(model: VideoModel, kept: ModelLimits | None) -> ModelLimits | None:
    """A catalog model as a profile's model (the continuation and reference switches of `kept`); None for one
    reelflow cannot ask for a clip (no lengths, or no frame it knows: an upscaler, say)."""
    audio = bool(model.generate_audio)  # null: not said, taken as silent
    fields: dict[str, Any] = {
        "seconds": sorted(model.supported_durations or []),
        "aspect_ratios": [str(r) for r in model.supported_aspect_ratios or [] if r in ASPECT_RATIOS],
        "resolutions": [str(t) for t in model.supported_resolutions or [] if t in RESOLUTION_LINES],
        "sizes": [str(size) for size in model.supported_sizes or []],
        "audio": audio, "frames": [str(f) for f in model.supported_frame_images or [] if f in _FRAMES],
        "passthrough": list(model.allowed_passthrough_parameters),
        "continuation": kept.continuation if kept else False, "references": kept.references if kept else False,
        "upstream": kept.upstream if kept else None}
    if model.canonical_slug and model.canonical_slug != model.id:
        fields["snapshots"] = [model.canonical_slug]
    if not fields["seconds"]:
        return None
    try:
        limits = ModelLimits.model_validate(fields)
    except ValidationError:
        return None
    skus = model.pricing_skus if isinstance(model.pricing_skus, dict) else {}
    return limits.model_copy(update={"price_per_second": price_per_second(skus, limits.sizes, audio)})


@dataclass(frozen=True)
class Refreshed:
    """A profile of the user's from the catalog, and the catalog's models it leaves out."""

    entry: dict[str, Any]
    left_out: list[str]

    def header(self, source: str) -> str:
        return (f"# Written by `reelflow providers --refresh {self.entry['name']}` on "
                f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC from {source} ({CATALOG}): each model's lengths, frames, "
                "sizes,\n# prices (from `pricing_skus`, USD per second of video) and passthrough options. Continuation "
                "and\n# references are kept from the built-in profile (the catalog does not list them). Run it again "
                "to follow the catalog.\n")


def refreshed_profile(catalog: list[VideoModel], builtin: ProviderProfile) -> Refreshed:
    """A profile named like `builtin` and extending it, with the catalog's models in place of its own (its default
    model kept if still listed)."""
    models: dict[str, ModelLimits] = {}
    left_out: list[str] = []
    for model in catalog:
        limits = limits_of(model, builtin.model_limits(model.id))
        if limits is None:
            left_out.append(model.id)
        else:
            models[model.id] = limits
    if not models:
        raise ApiError(f"{CATALOG} lists no model reelflow can ask for a clip")
    default = builtin.default_model if builtin.default_model in models else next(iter(models))
    entry = {"name": builtin.name, "extends": builtin.name, "picked_by": builtin.picked_by,
             "description": builtin.description, "default_model": default,
             "models": {name: _written(limits) for name, limits in models.items()}}
    return Refreshed(entry, left_out)


def _written(limits: ModelLimits) -> dict[str, Any]:
    """A model as the profile file holds it: what differs from the defaults, and its two switches always."""
    return {**limits.model_dump(mode="json", exclude_defaults=True), "continuation": limits.continuation,
            "references": limits.references}


@dataclass(frozen=True)
class Changes:
    """How the catalog differs from a profile: models listed that it lacks, models it has no longer listed, and
    prices changed (`model: size old -> new`)."""

    added: list[str]
    removed: list[str]
    prices: list[str]

    def lines(self, name: str) -> list[tuple[bool, str]]:
        """One line per kind of change, each with whether a run may be hurt by it (a model gone, a price off)."""
        said = [(False, f"{len(self.added)} models listed that the built-in {name} profile lacks: "
                        f"{', '.join(self.added)} (`reelflow providers --refresh {name}` writes a profile with them)"
                 if self.added else ""),
                (True, f"no longer listed, though the built-in {name} profile has them: {', '.join(self.removed)}"
                 if self.removed else ""),
                (True, f"prices changed since the built-in {name} profile: {'; '.join(self.prices)}"
                 if self.prices else "")]
        return [(hurts, line) for hurts, line in said if line]


def catalog_changes(profile: ProviderProfile, catalog: list[VideoModel]) -> Changes:
    listed = {model.id: model for model in catalog}
    known = {name for model in catalog for name in (model.id, model.canonical_slug)}
    prices = [change for name, limits in profile.models.items() if name in listed
              for change in _price_changes(name, limits, limits_of(listed[name], limits))]
    return Changes(added=[name for name in listed if profile.model_limits(name) is None],
                   removed=[name for name, limits in profile.models.items()
                            if not {name, *limits.snapshots} & known], prices=prices)


def _price_changes(name: str, before: ModelLimits, now: ModelLimits | None) -> list[str]:
    """The sizes whose price moved by more than SAME_PRICE, in one entry for the model."""
    if now is None:
        return []
    moved = [f"{size} {old:g} -> {now.price_per_second[size]:g}" for size, old in before.price_per_second.items()
             if size in now.price_per_second and abs(now.price_per_second[size] - old) > SAME_PRICE * old]
    return [f"{name}: {', '.join(moved[:3])}" + (f" (and {len(moved) - 3} more sizes)" if len(moved) > 3 else "")
            ] if moved else []

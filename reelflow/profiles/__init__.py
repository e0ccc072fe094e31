"""Provider profiles: everything reelflow knows about what a video provider accepts.

No provider's limits live in code: sizes, lengths, capabilities and prices come from
the active profile, built in (``reelflow/profiles/*.yaml``) or the user's own YAML file.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._yamlfile import load_yaml
from ..errors import ProfileError
from ._capabilities import BY_PLAN_FIELD
from ._capabilities import LABELS as LABELS
from ._capabilities import SWITCHES as SWITCHES
from ._capabilities import Capabilities as Capabilities
from ._capabilities import ImageTransport as ImageTransport
from ._capabilities import Variant as Variant
from ._inputs import ALWAYS_SENT as ALWAYS_SENT
from ._inputs import Endpoint as Endpoint
from ._inputs import InputSchema as InputSchema
from ._inputs import InputSpec as InputSpec
from ._inputs import Quantity as Quantity
from ._inputs import endpoint_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")
# The short side of each resolution tier (the long side follows from the aspect ratio).
RESOLUTION_LINES = {"360p": 360, "480p": 480, "720p": 720, "768p": 768, "1080p": 1080, "1440p": 1440, "2K": 1440,
                    "4K": 2160}


def dimensions_of(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The frame of an aspect ratio (`16:9`) at a resolution tier (`720p`): 1280x720; the long side rounded to
    an even number of pixels, as encoders need (480p 16:9 is 854x480)."""
    short = RESOLUTION_LINES[resolution]
    across, down = (int(part) for part in aspect_ratio.split(":"))
    long = 2 * round(short * max(across, down) / min(across, down) / 2)
    return (long, short) if across >= down else (short, long)


def frame_of(size: str, aspect_ratios: list[str], resolutions: list[str]) -> tuple[str, str] | None:
    """The (aspect ratio, resolution) among those offered that make exactly `size`, if any."""
    return next(((a, r) for a in aspect_ratios for r in resolutions if size == "{}x{}".format(*dimensions_of(a, r))),
                None)


def tier_of(size: str) -> str | None:
    """The resolution tier a size belongs to, by its short side (`1280x720`: 720p); None for a short side no tier
    has."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return None
    return next((tier for tier, line in RESOLUTION_LINES.items() if line == min(int(width), int(height))), None)


def video_tokens_per_second(size: str) -> float:
    """A video's tokens a second as BytePlus counts them (width x height x 24 fps / 1024), to price a model billed
    per token (the `video_tokens` prices of OpenRouter's catalog; see the built-in openrouter profile's Seedance)."""
    width, _, height = size.partition("x")
    return int(width) * int(height) * 24 / 1024


class ModelLimits(_Strict):
    """What one model accepts, and what it costs."""

    sizes: list[str] = Field(default_factory=list, description="Accepted output sizes, `WIDTHxHEIGHT` (or give "
                             "`aspect_ratios` and `resolutions`: every pair of them is a size).")
    aspect_ratios: list[str] = Field(default_factory=list, description="Accepted aspect ratios, e.g. `16:9`.")
    resolutions: list[str] = Field(default_factory=list, description=f"Accepted resolution tiers: "
                                   f"{', '.join(RESOLUTION_LINES)}.")
    seconds: list[int] = Field(description="Accepted clip lengths on create, in seconds.")
    price_per_second: dict[str, float] = Field(
        default_factory=dict, description="USD per second of output, by size."
    )
    snapshots: list[str] = Field(
        default_factory=list, description="Dated model names that behave like this model."
    )
    audio: bool = Field(default=True, description="Whether it makes sound with the picture.")
    frames: list[Literal["first_frame", "last_frame"]] | None = Field(
        default=None, description="The frame images it takes (OpenRouter's `supported_frame_images`); None: as the "
        "profile's `last_frame` says.")
    continuation: bool | None = Field(default=None, description="Whether the provider continues or edits its own "
                                      "video of this model (OpenRouter's `previous_job_id`): the profile's "
                                      "`extensions` and `edits` apply to it; false: its scenes continue from their "
                                      "last frame and take no edits; None: as the profile's `extensions` say.")
    references: bool | None = Field(default=None, description="Whether it takes reference images of what to show "
                                    "(OpenRouter's `input_references`; a scene's `subjects`); None: as the "
                                    "profile's `subjects` say.")
    passthrough: list[str] = Field(default_factory=list, description="Provider options it passes through as they "
                                   "are (OpenRouter's `allowed_passthrough_parameters`; a scene's `provider_options`).")
    upstream: str | None = Field(default=None, description="The slug of the provider behind it, which its "
                                 "passthrough options are keyed by (OpenRouter's `provider.options`, e.g. "
                                 "google-vertex).")
    endpoints: list[Endpoint] = Field(default_factory=list, description="For a dialect that sends each model's own "
                                      "inputs (fal's queue): its endpoints, each with its input map; a job goes to "
                                      "the first that takes what it carries.")

    def endpoint_for(self, carried: set[Quantity]) -> Endpoint | None:
        return next((endpoint for endpoint in self.endpoints if endpoint.takes(carried)), None)

    @model_validator(mode="before")
    @classmethod
    def _sizes_of_frames(cls, data: Any) -> Any:
        """Sizes from aspect ratios and resolutions, when a model is described that way."""
        if not isinstance(data, dict) or data.get("sizes"):
            return data
        ratios, tiers = data.get("aspect_ratios") or [], data.get("resolutions") or []
        unknown = [tier for tier in tiers if tier not in RESOLUTION_LINES]
        if unknown or not (ratios and tiers):
            raise ValueError(f"give sizes, or aspect_ratios and resolutions (of {', '.join(RESOLUTION_LINES)})"
                             + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else ""))
        return {**data, "sizes": ["{}x{}".format(*dimensions_of(r, t)) for t in tiers for r in ratios]}


class ExtensionLimits(_Strict):
    """How far the provider extends its own videos."""

    seconds: list[int] = Field(description="Accepted lengths of one extension segment.")
    max_count: int = Field(description="Most extensions in one chain.")
    max_total_seconds: int = Field(description="Longest stitched total, source included.")
    sizes: list[str] | None = Field(default=None, description="Sizes it extends (None: every size); other scenes "
                                    "continue from their last frame.")


class SubjectLimits(_Strict):
    """Reference images of a subject (a person, a product) the video keeps consistent: how many, and the
    lengths and sizes such a video can have."""

    max_count: int = Field(description="Most subject images per video.")
    seconds: list[int] | None = Field(default=None, description="Lengths of a clip with subjects (None: any).")
    sizes: list[str] | None = Field(default=None, description="Sizes of a clip with subjects (None: any).")


class Credentials(_Strict):
    """Where the provider's own key and address are found (REELFLOW_API_KEY and REELFLOW_BASE_URL override
    them for any profile)."""

    api_key: str | None = Field(default=None, description="Environment variable holding the API key.")
    base_url: str | None = Field(default=None, description="Environment variable holding the base URL.")
    project: str | None = Field(default=None, description="Environment variable holding a cloud project: with it "
                                "(and no key), the provider's SDK finds its own credentials (Google's ADC).")
    location: str | None = Field(default=None, description="Environment variable holding the project's region.")
    other_keys: dict[str, str] = Field(
        default_factory=dict, description="Variables a user may hold for the provider's other APIs, which do not "
        "reach its videos, each with the line that says so (and what to set instead): such a variable alone is "
        "told, not rendered on the sandbox.")

    def variables(self) -> list[str]:
        """The variables named here, in order."""
        return [v for v in (self.api_key, self.base_url, self.project, self.location) if v]


_FRAMES: dict[str, str] = {"image": "first_frame", "last_image": "last_frame"}  # a plan's images as frames


class ProviderProfile(_Strict):
    """A named provider: the dialect it speaks, its models, limits and capabilities."""

    name: str = Field(description="Profile name, as `REELFLOW_PROVIDER` selects it.")
    description: str = Field(default="", description="One line for `reelflow providers`.")
    api: str = Field(default="openai-videos", description="The request dialect it speaks (`reelflow providers`).")
    credentials: Credentials = Field(default_factory=Credentials, description="Where its key and URL are found.")
    picked_by: list[list[str]] = Field(
        default_factory=list, description="Sets of its credentials' variables, each set all present, that pick this "
        "profile when neither REELFLOW_PROVIDER nor the plan's `provider:` names one (its base-URL variable may be "
        "given as REELFLOW_BASE_URL); empty: picked only by name. Not taken over by `extends`.")
    shut_down: str | None = Field(
        default=None, description="Why the provider's own API can no longer be used (when it was shut down): the "
        "profile is used only at the base URL of a service that still serves its shape, and its key alone is told "
        "so rather than rendered on the sandbox.")
    base_url: str | None = Field(default=None, description="API base URL (e.g. ending in `/v1`).")
    default_model: str = Field(description="Model used when a request names none.")
    default_size: str = Field(description="Size used when a request names none.")
    default_seconds: int = Field(description="Length used when a request names none.")
    prompt_max_chars: int = Field(default=32000, description="Longest accepted prompt.")
    reference_formats: list[str] = Field(description="Accepted reference image formats (PIL names).")
    models: dict[str, ModelLimits] = Field(description="Models by name.")
    extensions: ExtensionLimits | None = Field(default=None, description="None: no `/extensions`.")
    max_scene_seconds: int = Field(
        default=600, gt=0, description="Longest scene (its clip and every continuation) reelflow makes here; a "
        "longer one is refused before anything else is done with it.",
    )
    max_characters: int = Field(default=0, description="Characters per video; 0: no characters.")
    subjects: SubjectLimits | None = Field(default=None, description="Subject reference images; None: none.")
    seed: bool = Field(default=False, description="Whether a request takes a seed.")
    negative_prompt: bool = Field(default=False, description="Whether a request takes what to avoid as a field of "
                                  "its own (else the plan's `negatives` are a line of the prompt).")
    character_clip_seconds: tuple[float, float] = Field(
        default=(2, 4), description="Accepted length of a character's source clip."
    )
    last_frame: bool = Field(default=False, description="Whether a clip can be told which frame to land on.")
    audio_switch: bool = Field(default=False, description="Whether a request can switch a model's sound off.")
    edits: bool = Field(default=False, description="Whether `/videos/edits` exists.")
    remix: bool = Field(default=False, description="Whether `/videos/{id}/remix` exists.")
    batch: bool = Field(default=False, description="Whether the Batch API takes `/v1/videos`.")
    webhooks: bool = Field(default=False, description="Whether `video.completed` webhooks are sent.")
    variants: list[Variant] = Field(default=["video"], description="Downloadable content variants.")
    poll_hint: bool = Field(default=False, description="Whether `openai-poll-after-ms` is sent.")
    list_jobs: bool = Field(
        default=True, description="Whether `GET /videos` lists recent jobs (to adopt one whose create answer was lost)."
    )
    requests_per_minute: int | None = Field(default=None, description="Typical create-request limit.")
    max_concurrent_jobs: int | None = Field(default=None, description="Typical unfinished-job limit.")
    input_schemas: dict[str, InputSchema] = Field(default_factory=dict, description="Endpoints' input schemas as "
                                                  "the provider publishes them, by endpoint id: models' input maps "
                                                  "are checked against them when the profile is read.")

    @model_validator(mode="after")
    def _picked_by_its_own_variables(self) -> ProviderProfile:
        own = self.credentials.variables()
        strangers = sorted({v for variables in self.picked_by for v in variables if v not in own})
        if strangers or [] in self.picked_by:
            named = f": {', '.join(strangers)} not among them" if strangers else ": an empty set"
            raise ValueError(f"picked_by: each set names variables of `credentials` ({', '.join(own) or 'none'})"
                             + named)
        return self

    @model_validator(mode="after")
    def _maps_fit_schemas(self) -> ProviderProfile:
        problems = [f"models.{name}.endpoints[{index}]: {problem}"
                    for name, limits in self.models.items() for index, endpoint in enumerate(limits.endpoints)
                    for problem in endpoint_problems(endpoint, self.input_schemas.get(endpoint.id), {
                        "seconds": limits.seconds, "aspect_ratio": limits.aspect_ratios,
                        "resolution": limits.resolutions})]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def takes(self, model: str, quantity: Quantity) -> bool:
        """Whether a clip of `model` can carry `quantity` (a seed, a last image, ...): the provider takes it, and,
        where models have input maps, the model's map has a field for it; where a model lists its frame images,
        an image or a last image is among them."""
        limits = self.model_limits(model)
        mapped = not limits or not limits.endpoints or any(quantity in e.inputs for e in limits.endpoints)
        frame = _FRAMES.get(quantity)
        framed = not limits or limits.frames is None or frame is None or frame in limits.frames
        return self.provider_takes(quantity) and mapped and framed

    def provider_takes(self, quantity: Quantity) -> bool:
        """Whether the provider takes `quantity` at all (for some model, where models have input maps): where a
        capability is needed for it, whether the profile switches it on."""
        switch = BY_PLAN_FIELD.get(quantity)
        return switch is None or bool(getattr(self.capabilities, switch))

    @property
    def capabilities(self) -> Capabilities:
        """What the profile switches on for its provider, in the one vocabulary (`Capabilities`)."""
        return Capabilities(extensions=self.extensions is not None, edits=self.edits, remix=self.remix,
                            characters=self.max_characters > 0, batch=self.batch, webhooks=self.webhooks,
                            list_jobs=self.list_jobs, last_frame=self.last_frame, audio_switch=self.audio_switch,
                            seed=self.seed, negative_prompt=self.negative_prompt, subjects=self.subjects is not None,
                            poll_hint=self.poll_hint, variants=tuple(self.variants))

    def extending(self, model: str, size: str) -> ExtensionLimits | None:
        """How far the provider extends `model`'s videos of `size`; None where it does not (they continue from
        their last frame)."""
        limits = self.model_limits(model)
        sized = self.extensions is not None and (self.extensions.sizes is None or size in self.extensions.sizes)
        return self.extensions if sized and (limits is None or limits.continuation is not False) else None

    def revises(self, model: str, kind: Literal["edit", "remix"]) -> bool:
        """Whether the provider makes revisions of `kind` of `model`'s videos."""
        limits = self.model_limits(model)
        offered = self.edits if kind == "edit" else self.remix
        return offered and (limits is None or limits.continuation is not False)

    def model_limits(self, model: str) -> ModelLimits | None:
        """The limits of `model`, accepting dated snapshot names; None when unknown."""
        if model in self.models:
            return self.models[model]
        return next((m for m in self.models.values() if model in m.snapshots), None)

    def endpoint_named(self, endpoint_id: str) -> tuple[str, ModelLimits, Endpoint] | None:
        """The model (its name and limits) whose input map has the endpoint `endpoint_id`, and that endpoint."""
        return next(((name, limits, endpoint) for name, limits in self.models.items()
                     for endpoint in limits.endpoints if endpoint.id == endpoint_id), None)

    @property
    def all_sizes(self) -> list[str]:
        """Every size any model accepts, in first-seen order."""
        return list(dict.fromkeys(size for m in self.models.values() for size in m.sizes))


_BUILTIN = resources.files("reelflow") / "profiles"


def builtin_profile_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in _BUILTIN.iterdir() if p.name.endswith(".yaml"))


def _parsed(text: str, origin: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        raise ProfileError(f"{origin}: not valid YAML: {e}") from e


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    data = _parsed(text, origin)
    if not isinstance(data, dict):
        raise ProfileError(f"{origin}: a profile must be a mapping")
    return data


def _raw_builtin(name: str) -> dict[str, Any]:
    resource = _BUILTIN / f"{name}.yaml"
    if not resource.is_file():
        known = ", ".join(builtin_profile_names())
        raise ProfileError(f"unknown provider profile {name!r} (built in: {known})")
    return _read_yaml(resource.read_text(encoding="utf-8"), f"profile {name}")


def _resolve(data: dict[str, Any], origin: str) -> ProviderProfile:
    """Apply `extends: NAME` (top-level keys override the parent's, `picked_by` excepted: a profile of one's own is
    picked by name unless it says otherwise, rather than competing with its parent for the same key), then
    validate."""
    parent_name = data.pop("extends", None)
    if parent_name is not None:
        parent = {key: value for key, value in _raw_builtin(str(parent_name)).items() if key != "picked_by"}
        data = {**parent, **data}
        data.pop("extends", None)
    try:
        return ProviderProfile.model_validate(data)
    except ValidationError as e:
        named = f"{origin}: profile {data.get('name')!r}" if "name" in data and str(data["name"]) not in origin \
            else origin
        raise ProfileError("\n".join(_lines_of(e, named))) from e


def _lines_of(error: ValidationError, origin: str) -> list[str]:
    """A profile's problems, one line each, naming the file (or profile) and the field."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(map(str, problem["loc"]))
        for message in problem["msg"].removeprefix("Value error, ").splitlines():
            lines.append(f"{origin}: {where + ': ' if where else ''}{message}")
    return lines


@cache
def load_profile(name: str = "sora", file: Path | None = None) -> ProviderProfile:
    """The profile called `name`: from `file` (a YAML list or mapping of profiles) or built in."""
    if file is not None:
        for entry in _profiles_in_file(file):
            if entry.get("name") == name:
                return _resolve(dict(entry), str(file))
    return _resolve(_raw_builtin(name), f"profile {name}")


def all_profiles(file: Path | None = None) -> list[ProviderProfile]:
    """Every profile there is: the built-in ones, then the user's own (which may shadow a built-in name)."""
    own = [str(entry["name"]) for entry in _profiles_in_file(file) if "name" in entry] if file else []
    names = [name for name in builtin_profile_names() if name not in own] + own
    return [load_profile(name, file) for name in names]


def _profiles_in_file(file: Path) -> list[dict[str, Any]]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"{file}: cannot read provider profiles: {e.strerror}") from e
    data = _parsed(text, str(file)) if text.strip() else {}
    entries = data.get("profiles", [data]) if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ProfileError(f"{file}: expected a profile mapping or `profiles:` list")
    return entries


def write_own_profile(entry: dict[str, Any], file: Path, header: str = "") -> None:
    """Put profile `entry` in the user's profile file (created if missing), in place of the one of its name: the
    others are kept (as data: their comments are not)."""
    kept = [e for e in _profiles_in_file(file) if e.get("name") != entry["name"]] if file.exists() else []
    text = header + yaml.safe_dump({"profiles": [*kept, entry]}, sort_keys=False, allow_unicode=True, width=110)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"{file}: cannot write the profile: {e.strerror}") from e
    load_profile.cache_clear()

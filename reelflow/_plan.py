"""Scene plans: the schema, loading from YAML/JSON, and validation against a provider profile."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import fsspec
import yaml
from PIL import ImageColor
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ._errors import ImageError, PlanError
from ._images import Crop, read_info
from ._profiles import ProviderProfile
from ._prompts import PromptFields, StyleBlock, compose, continuation, drift
from ._video import probe

Fit = Literal["cover", "pad", "stretch"]
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Text = Annotated[str, StringConstraints(min_length=1)]


class Fields(PromptFields):
    """A prompt as structured fields: at least one of them."""

    @model_validator(mode="after")
    def _not_empty(self) -> Fields:
        if not self.given():
            raise ValueError("give at least one prompt field (scene, subject, action, ...)")
        return self


class Extension(_Model):
    """One continuation of a scene: the next beat of the same shot. It inherits the scene's structured
    fields except the beat (action, camera, timing); free text is its new action."""

    prompt: Text | Fields = Field(description="What happens next: free text, or fields that override the scene's.")
    seconds: int = Field(description="Length of this segment in seconds.")


class SceneDefaults(_Model):
    """Values every scene takes unless it sets its own."""

    model: str | None = Field(default=None, description="Video model; default: the provider's default model.")
    size: str | None = Field(default=None, description="Output size WIDTHxHEIGHT, e.g. 1280x720.")
    seconds: int | None = Field(default=None, description="Clip length in seconds.")
    fit: Fit = Field(default="cover", description="How a reference image is made the exact size.")
    pad_color: str = Field(default="#000000", description="Background colour for fit: pad.")


class Character(_Model):
    """A recurring person or object, created once per plan from a short clip and reused by its scenes."""

    name: str = Field(min_length=1, max_length=80, description="Its name; prompts must name it verbatim.")
    clip: str = Field(description="A short video of it (2-4 s on Sora): a path, relative to the plan, or fsspec URL.")


class Scene(_Model):
    """One shot of the plan."""

    id: str = Field(description="Unique name of the scene; also its output folder.")
    prompt: Text | Fields = Field(description="What the shot shows: free text, or structured fields.")
    image: str | None = Field(default=None, description="Reference image (first frame): path or fsspec URL.")
    model: str | None = Field(default=None, description="Video model (default from `defaults`).")
    size: str | None = Field(default=None, description="Output size WIDTHxHEIGHT (default from `defaults`).")
    seconds: int | None = Field(default=None, description="Clip length in seconds (default from `defaults`).")
    fit: Fit | None = Field(default=None, description="cover, pad or stretch (default from `defaults`).")
    pad_color: str | None = Field(default=None, description="Background colour for fit: pad.")
    crop: Crop | None = Field(default=None, description="Region of the image to use, before fitting.")
    characters: list[str] = Field(default_factory=list, description="Names of the plan's characters in this shot.")
    extensions: list[Extension] = Field(default_factory=list, description="Continuations, in order.")


class Plan(_Model):
    """A scene plan: what to render, where to put it."""

    name: str = Field(description="Name of the plan; also its folder under `output`.")
    output: str | None = Field(default=None, description="Where to write: any fsspec URL (file://, s3://, ...).")
    defaults: SceneDefaults = Field(default_factory=SceneDefaults, description="Values scenes inherit.")
    style: StyleBlock | None = Field(default=None, description="Look every scene's prompt inherits, field by field.")
    characters: list[Character] = Field(default_factory=list, description="Recurring characters scenes may use.")
    scenes: list[Scene] = Field(min_length=1, description="The shots, in order.")
    budget_usd: float | None = Field(default=None, gt=0, description="Most this plan may spend, in USD.")
    assemble: bool = Field(default=False, description="Also join the finished scenes, in order, into reel.mp4.")


class ResolvedExtension(_Model):
    prompt: str = Field(description="The composed prompt of this segment.")
    seconds: int


class ResolvedScene(_Model):
    """A scene with every default applied and its prompts composed: exactly what will be requested."""

    id: str
    prompt: str
    image: str | None
    model: str
    size: str
    seconds: int
    fit: Fit
    pad_color: str
    crop: Crop | None
    characters: list[str]
    extensions: list[ResolvedExtension]

    @property
    def dimensions(self) -> tuple[int, int]:
        width, _, height = self.size.partition("x")
        return int(width), int(height)

    @property
    def total_seconds(self) -> int:
        return self.seconds + sum(e.seconds for e in self.extensions)


def resolve(plan: Plan, profile: ProviderProfile) -> list[ResolvedScene]:
    """Defaults applied and prompts composed: what each request will carry."""
    d = plan.defaults
    return [
        ResolvedScene(
            id=s.id, prompt=compose(s.prompt, plan.style), image=s.image, crop=s.crop, characters=s.characters,
            extensions=[ResolvedExtension(prompt=compose(continuation(s.prompt, e.prompt), plan.style),
                                          seconds=e.seconds) for e in s.extensions],
            model=s.model or d.model or profile.default_model,
            size=s.size or d.size or profile.default_size,
            seconds=s.seconds or d.seconds or profile.default_seconds,
            fit=s.fit or d.fit, pad_color=s.pad_color or d.pad_color,
        )
        for s in plan.scenes
    ]


# -- loading --------------------------------------------------------------------------------------


def load_plan(url: str) -> Plan:
    """Read a plan file (YAML or JSON, any fsspec URL); image paths become relative to the file."""
    try:
        with fsspec.open(url, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError([f"{url}: cannot read the plan: {getattr(e, 'strerror', None) or e}"]) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or "malformed"
        raise PlanError([f"{url}: not valid YAML/JSON{where}: {problem}"]) from e
    if not isinstance(data, dict):
        raise PlanError([f"{url}: a plan must be a mapping with `name` and `scenes`"])
    return parse_plan(_files_relative_to(data, url), source=url)


def parse_plan(data: dict[str, Any], source: str = "plan") -> Plan:
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        raise PlanError([f"{source}: {_where(tuple(err['loc']), data)}: {_message(err)}" for err in e.errors()]) from e


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`scene 'opening': crop.left` rather than `scenes.0.crop.left`."""
    if len(loc) >= 2 and loc[0] == "scenes" and isinstance(loc[1], int):
        scenes = data.get("scenes") or []
        raw = scenes[loc[1]] if loc[1] < len(scenes) else {}
        name = f"scene {raw.get('id')!r}" if isinstance(raw, dict) and raw.get("id") else f"scene #{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{name}: {rest}" if rest else name
    return ".".join(str(p) for p in loc)


def _files_relative_to(data: dict[str, Any], url: str) -> dict[str, Any]:
    """Scene images and character clips named by a relative path are relative to the plan file."""
    base = url.rsplit("/", 1)[0] if "/" in url else "."

    def fixed(items: Any, key: str) -> Any:
        if not isinstance(items, list):
            return items
        return [{**item, key: f"{base}/{item[key]}"} if isinstance(item, dict) and isinstance(item.get(key), str)
                and "://" not in item[key] and not item[key].startswith("/") else item for item in items]

    return {**data, **{name: fixed(data[name], key) for name, key in (("scenes", "image"), ("characters", "clip"))
                       if name in data}}


# -- validation against the provider --------------------------------------------------------------


def plan_warnings(plan: Plan, source: str = "plan") -> list[str]:
    """Valid but risky: extensions that change the scene's subject or style drift from the shot."""
    return [f"{source}: scene {s.id!r}: extensions[{i}].prompt: changes {' and '.join(fields)}; a continuation "
            "holds together best when it changes only action, camera and timing"
            for s in plan.scenes for i, e in enumerate(s.extensions) if (fields := drift(s.prompt, e.prompt))]


def validate_plan(plan: Plan, profile: ProviderProfile, source: str = "plan") -> list[ResolvedScene]:
    """Every scene checked against the provider before any paid call; raises PlanError listing every problem."""
    problems: list[str] = []
    if not SAFE_ID.match(plan.name):
        problems.append(f"{source}: name: {plan.name!r} is not a safe folder name (letters, digits, . _ -)")
    scenes = resolve(plan, profile)
    problems += [f"{source}: {p}" for p in _character_problems(plan, profile)]
    seen: set[str] = set()
    for scene in scenes:
        where = f"{source}: scene {scene.id!r}"
        if not SAFE_ID.match(scene.id) or scene.id in (".", ".."):
            problems.append(f"{where}: id: not a safe folder name (letters, digits, . _ -; at most 64)")
        if scene.id in seen:
            problems.append(f"{where}: id: duplicate scene id")
        seen.add(scene.id)
        problems += [f"{where}: {p}" for p in scene_problems(scene, profile)]
        problems += [f"{where}: {p}" for p in _cast_problems(scene, plan, profile)]
    if problems:
        raise PlanError(problems)
    return scenes


def scene_problems(scene: ResolvedScene, profile: ProviderProfile) -> list[str]:
    limits = profile.model_limits(scene.model)
    if limits is None:
        return [f"model: {scene.model!r} is not offered by provider {profile.name!r} "
                f"(choose from {', '.join(profile.models)})"]
    problems = []
    if scene.size not in limits.sizes:
        problems.append(f"size: {scene.size} is not available for {scene.model} on {profile.name} "
                        f"(choose from {', '.join(limits.sizes)})")
    if scene.seconds not in limits.seconds:
        problems.append(f"seconds: {scene.seconds} is not available for {scene.model} on {profile.name} "
                        f"(choose from {', '.join(map(str, limits.seconds))})")
    if len(scene.prompt) > profile.prompt_max_chars:
        problems.append(f"prompt: {len(scene.prompt)} characters; at most {profile.prompt_max_chars}")
    problems += _extension_problems(scene, profile)
    problems += _image_problems(scene)
    return problems


def _character_problems(plan: Plan, profile: ProviderProfile) -> list[str]:
    if not plan.characters:
        return []
    if not profile.max_characters:
        return [f"characters: provider {profile.name!r} has no characters (/videos/characters)"]
    problems: list[str] = []
    names: set[str] = set()
    for index, character in enumerate(plan.characters):
        where = f"characters[{index}] {character.name!r}"
        if character.name in names:
            problems.append(f"{where}: name: duplicate character name")
        names.add(character.name)
        problems += [f"{where}: clip: {p}" for p in _clip_problems(character.clip, profile)]
    return problems


def _clip_problems(url: str, profile: ProviderProfile) -> list[str]:
    try:
        with fsspec.open(url, "rb") as handle:
            info = probe(handle.read())
    except FileNotFoundError:
        return [f"{url} does not exist"]
    except (OSError, ValueError, ImportError) as e:
        return [f"{url} cannot be read: {getattr(e, 'strerror', None) or e}"]
    low, high = profile.character_clip_seconds
    if info is None:
        return [f"{url} is not a video"]
    if not low - 0.05 <= info.seconds <= high + 0.05:
        return [f"{url} is {info.seconds:.1f} s long; {profile.name} takes {low:g} to {high:g} s"]
    return []


def _cast_problems(scene: ResolvedScene, plan: Plan, profile: ProviderProfile) -> list[str]:
    """The scene's characters exist, fit the provider's limit, and its prompt names each one verbatim
    (the provider ties a character to the prompt by its name)."""
    known = {c.name for c in plan.characters}
    problems = [f"characters: {name!r} is not one of the plan's characters" for name in scene.characters
                if name not in known]
    if len(scene.characters) > profile.max_characters:
        problems.append(f"characters: {len(scene.characters)} characters; at most {profile.max_characters} per "
                        f"video on {profile.name}")
    problems += [f"prompt: does not name character {name!r} verbatim" for name in scene.characters
                 if name not in scene.prompt]
    return problems


def _extension_problems(scene: ResolvedScene, profile: ProviderProfile) -> list[str]:
    if not scene.extensions:
        return []
    limits = profile.extensions
    if limits is None:
        return [f"extensions: provider {profile.name!r} has no /videos/extensions endpoint"]
    problems = [
        f"extensions[{i}].seconds: {e.seconds} is not available (choose from {', '.join(map(str, limits.seconds))})"
        for i, e in enumerate(scene.extensions) if e.seconds not in limits.seconds
    ]
    if len(scene.extensions) > limits.max_count:
        problems.append(f"extensions: {len(scene.extensions)} extensions; at most {limits.max_count} in one chain")
    if scene.total_seconds > limits.max_total_seconds:
        problems.append(f"extensions: the stitched video would be {scene.total_seconds} s; "
                        f"at most {limits.max_total_seconds} s")
    return problems


def _image_problems(scene: ResolvedScene) -> list[str]:
    problems = []
    try:
        ImageColor.getrgb(scene.pad_color)
    except ValueError:
        problems.append(f"pad_color: {scene.pad_color!r} is not a colour")
    if scene.image is not None:
        problems += _reference_problems(scene.image)
    return problems


def _reference_problems(url: str) -> list[str]:
    """The image exists and its header is a readable image of acceptable size (pixels are not decoded)."""
    try:
        fs, path = fsspec.url_to_fs(url)
        if not fs.exists(path):
            return [f"image: {url} does not exist"]
        if not fs.isfile(path):
            return [f"image: {url} is not a file"]
        with fs.open(path, "rb") as handle:
            read_info(handle, url)
    except ImageError as e:
        return [f"image: {e}"]
    except (OSError, ValueError, ImportError) as e:
        return [f"image: {url} cannot be read: {getattr(e, 'strerror', None) or e}"]
    return []

"""Scene plans: the schema, loading from YAML/JSON, and validation against a provider profile."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

import fsspec
import yaml
from PIL import ImageColor
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ._names import SAFE_NAME_RULE, is_safe_name
from ._yamlfile import load_yaml
from .errors import ImageError, PlanError
from .media.checks import Thresholds
from .media.images import Crop, read_info
from .profiles import ASPECT_RATIOS, RESOLUTION_LINES, ModelLimits, ProviderProfile, Quantity, dimensions_of, frame_of
from .prompts import PromptFields, StyleBlock, compose, continuation, drift, negatives_of
from .storage import unreadable

Fit = Literal["cover", "pad", "stretch"]
RevisionKind = Literal["edit", "remix"]
MAX_SEED = 4_294_967_295
MAX_TAKES = 8
MAX_RETAKES = 3


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Text = Annotated[str, StringConstraints(min_length=1)]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


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
    seconds: int = Field(gt=0, strict=True, description="Length of this segment in seconds.")


class Revision(_Model):
    """One change to the finished video, made by the provider: exactly one of `edit` or `remix`."""

    edit: Text | None = Field(default=None, description="Change the finished video as this says (an edit).")
    remix: Text | None = Field(default=None, description="Make the finished video again as this says (remix).")

    @model_validator(mode="after")
    def _one_kind(self) -> Revision:
        if (self.edit is None) == (self.remix is None):
            raise ValueError("give exactly one of edit or remix")
        return self

    @property
    def kind(self) -> RevisionKind:
        return "edit" if self.edit is not None else "remix"

    @property
    def prompt(self) -> str:
        return self.edit or self.remix or ""


AspectRatio = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*:[1-9][0-9]*$")]
Resolution = Literal["360p", "480p", "720p", "768p", "1080p", "1440p", "2K", "4K"]


class Framing(_Model):
    """The output frame: a size, or an aspect ratio and a resolution tier (`16:9` at `720p` is 1280x720);
    either one of the pair alone keeps the other from the size it would change."""

    size: str | None = Field(default=None, description="Output size WIDTHxHEIGHT, e.g. 1280x720.")
    aspect_ratio: AspectRatio | None = Field(default=None, description="Aspect ratio, e.g. 16:9 or 9:16.")
    resolution: Resolution | None = Field(default=None, description="Resolution tier, e.g. 720p or 1080p.")

    @model_validator(mode="after")
    def _one_way(self) -> Framing:
        if self.size is not None and (self.aspect_ratio or self.resolution):
            raise ValueError("give size, or aspect_ratio and resolution, not both")
        return self

    def applied_to(self, size: str) -> str:
        """This framing over `size` (the frame it inherits)."""
        if self.size is not None or not (self.aspect_ratio or self.resolution):
            return self.size or size
        inherited = frame_of(size, list(ASPECT_RATIOS), list(RESOLUTION_LINES)) or ("16:9", "720p")
        return "{}x{}".format(*dimensions_of(self.aspect_ratio or inherited[0], self.resolution or inherited[1]))


ProviderOptions = dict[Annotated[str, StringConstraints(min_length=1)], Any]
PROVIDER_OPTIONS = ("Options of the upstream provider's own, sent as they are where the profile allows them for the "
                    "scene's model (OpenRouter's `provider` passthrough, e.g. {negativePrompt: blur}); a scene's "
                    "replace its route's, which replace the defaults'.")


class SceneDefaults(Framing):
    """Values every scene takes unless it sets its own."""

    model: str | None = Field(default=None, description="Video model; default: the provider's default model.")
    seconds: int | None = Field(default=None, gt=0, strict=True, description="Clip length in seconds.")
    fit: Fit = Field(default="cover", description="How a reference image is made the exact size.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, strict=True,
                             description="Seed of the generation, where the provider takes one.")
    audio: bool | None = Field(default=None, description="Sound with the picture: true or false where the provider "
                               "can switch it; unset: the provider's own default.")
    pad_color: str = Field(default="#000000", description="Background colour for fit: pad.")
    provider_options: ProviderOptions | None = Field(default=None, description=PROVIDER_OPTIONS)


class Character(_Model):
    """A recurring person or object, created once per plan from a short clip and reused by its scenes."""

    name: str = Field(min_length=1, max_length=80, description="Its name; prompts must name it verbatim.")
    clip: str = Field(description="A short video of it (2-4 s on Sora): a path, relative to the plan, or fsspec URL.")


class Route(_Model):
    """A way to render a scene: a provider (its profile), and, for it, a model and a sound setting over the plan's
    defaults. A plan's `providers:` lists its routes in order; a scene moves to the next one when its route cannot
    make it (a refusal, a retired model, an account out of credit, a provider refusing the key or out of reach)."""

    provider: ProfileName = Field(description="Provider profile (`reelflow providers` lists them).")
    model: str | None = Field(default=None, description="Model on this provider, over the plan's default model.")
    audio: bool | None = Field(default=None, description="Sound on this provider, over the plan's default.")
    provider_options: ProviderOptions | None = Field(default=None, description="Options of the provider's own on "
                                                     "this route, over the plan's default (see `Scene`).")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", description="What scenes "
                             "call it by (`route:`); default: the provider, with `/` and the model if it names one.")

    @model_validator(mode="before")
    @classmethod
    def _a_name_alone(cls, data: Any) -> Any:
        return {"provider": data} if isinstance(data, str) else data

    @property
    def key(self) -> str:
        return self.name or (f"{self.provider}/{self.model}" if self.model else self.provider)


class Scene(Framing):
    """One shot of the plan."""

    id: str = Field(description="Unique name of the scene; also its output folder.")
    prompt: Text | Fields = Field(description="What the shot shows: free text, or structured fields.")
    image: str | None = Field(default=None, description="Reference image (first frame): path or fsspec URL.")
    last_image: str | None = Field(
        default=None, description="Image the scene's last frame lands on (providers with first and last frame "
        "control): path or fsspec URL; made the exact size like `image`, without its crop.")
    model: str | None = Field(default=None, description="Video model (default from `defaults`).")
    seconds: int | None = Field(default=None, gt=0, strict=True,
                                 description="Clip length in seconds (default from `defaults`).")
    fit: Fit | None = Field(default=None, description="cover, pad or stretch (default from `defaults`).")
    audio: bool | None = Field(default=None, description="Sound with the picture (default from `defaults`).")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, strict=True,
                             description="Seed of the generation (default from `defaults`).")
    subjects: list[str] | None = Field(
        default=None, description="Images of the people or things the shot keeps consistent (the plan's by "
        "default): paths, relative to the plan, or fsspec URLs.")
    pad_color: str | None = Field(default=None, description="Background colour for fit: pad.")
    crop: Crop | None = Field(default=None, description="Region of the image to use, before fitting.")
    characters: list[str] = Field(default_factory=list, description="Names of the plan's characters in this shot.")
    extensions: list[Extension] = Field(default_factory=list, description="Continuations, in order.")
    revisions: list[Revision] = Field(
        default_factory=list, description="Edits and remixes of the finished video, in order; each result is kept, "
        "the last is the scene's video.")
    takes: int = Field(default=1, ge=1, le=MAX_TAKES, strict=True, description="Versions of the shot to make, each "
                       "a job of its own (with a seed: seed, seed+1, ...); a review picks one, else the best by the "
                       "checks.")
    provider: ProfileName | None = Field(default=None, description="Render it only on the plan's routes of this "
                                         "provider (on this provider alone when the plan has none of it).")
    route: str | None = Field(default=None, description="Render it only on the plan's route of this name.")
    provider_options: ProviderOptions | None = Field(default=None, description=PROVIDER_OPTIONS)


class MusicBed(_Model):
    """Music under the whole reel: looped or cut to its length, lower under scenes that have sound of their own."""

    file: str = Field(description="The music (any audio or video file with sound): a path, relative to the plan, "
                      "or fsspec URL.")
    level_db: float = Field(default=-18, le=0, description="Its level under the reel, in dB.")
    duck_db: float = Field(default=-12, le=0, description="How much lower it goes under scenes with sound, in dB.")


class LoudnessGoal(_Model):
    """What the reel's sound is normalised to (streaming platforms ask for -14 LUFS, true peak at most -1 dBTP)."""

    integrated_lufs: float = Field(default=-14, ge=-40, le=-5, description="Integrated loudness, LUFS.")
    true_peak_dbtp: float = Field(default=-1, ge=-9, le=0, description="The most a true peak may reach, dBTP.")


class TakeChecks(Thresholds):
    """How each delivered take is checked (black, frozen, flashes, silence, loudness, length, its reference
    images, its joins: thresholds as `reelflow check` has them), and what a failed take leads to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retake: int = Field(default=0, ge=0, le=MAX_RETAKES, strict=True, description="Times a scene whose take fails "
                        "the checks is made again (each a new paid job, counted in the estimate's worst case and "
                        "made only while that stays within the budget); the failed take's files are kept beside "
                        "it (video.rejected1.mp4, ...).")


class Plan(_Model):
    """A scene plan: what to render, where to put it."""

    name: str = Field(description="Name of the plan; also its folder under `output`.")
    provider: ProfileName | None = Field(
        default=None, description="Provider profile to render on (`reelflow providers` lists them), unless "
        "REELFLOW_PROVIDER names another; unset: the provider whose credentials are set.")
    providers: list[Route] = Field(
        default_factory=list, description="Routes, in order: the providers (each with a model and sound of its own, "
        "if given) a scene may be rendered on; a scene goes to the first that can make it, and on to the next when "
        "that one refuses it, has retired its model, is out of credit, refuses its key or cannot be reached.")
    prefer: Literal["listed", "cheapest"] = Field(
        default="listed", description="The order a scene tries the routes that can make it: as listed, or cheapest "
        "first (by the profiles' prices for the scene's whole chain).")
    output: str | None = Field(default=None, description="Where to write: any fsspec URL (file://, s3://, ...).")
    defaults: SceneDefaults = Field(default_factory=SceneDefaults, description="Values scenes inherit.")
    style: StyleBlock | None = Field(default=None, description="Look every scene's prompt inherits, field by field.")
    characters: list[Character] = Field(default_factory=list, description="Recurring characters scenes may use.")
    subjects: list[str] = Field(default_factory=list, description="Images of the people or things every scene keeps "
                                "consistent (where the provider takes subject references), unless it names its own.")
    scenes: list[Scene] = Field(min_length=1, description="The shots, in order.")
    budget_usd: float | None = Field(default=None, gt=0, strict=True, description="Most this plan may spend, in USD.")
    assemble: bool = Field(default=False, description="Also join the finished scenes, in order, into reel.mp4.")
    transition: float = Field(default=0, ge=0, le=5, description="In the reel: seconds of a dissolve, picture and "
                              "sound, between scenes; 0: a cut (with a fade of a few ms, so the sound does not click).")
    loudness: LoudnessGoal | None = Field(default_factory=LoudnessGoal, description="The reel's loudness; null: its "
                                          "sound as the scenes have it.")
    music: MusicBed | None = Field(default=None, description="A music bed under the reel.")
    review: bool = Field(default=False, description="Once the scenes are rendered, pause for a person to choose in "
                         "the Prefect UI (or `reelflow review`), per scene: a take to keep, a redo with a changed "
                         "prompt, or dropping it.")
    review_timeout_seconds: int = Field(default=3600, gt=0, strict=True, description="How long a review waits; then "
                                        "every scene keeps its first take.")
    qa: TakeChecks = Field(default_factory=TakeChecks, description="The checks of every delivered take (they always "
                           "run; this sets their thresholds) and how often a failed take is made again.")
    mode: Literal["direct", "batch"] = Field(
        default="direct", description="batch: every scene's first job goes through the provider's Batch API, as "
        "one batch (an offline queue); the rest of each scene as usual.")


Via = Literal["create", "extension", "last-frame"]


class Segment(_Model):
    """One paid job of a scene's chain: what it shows, how long, and how it continues the one before."""

    prompt: str = Field(description="The composed prompt of this job.")
    seconds: int = Field(description="Seconds of new video this job adds.")
    via: Via = Field(description="create: the scene's first clip; extension: the provider continues its video; "
                     "last-frame: a new clip that starts from the previous clip's last frame, stitched locally.")


class ResolvedScene(_Model):
    """A scene with every default applied, its prompts composed and its length cut into the jobs the provider
    can make: exactly what will be requested."""

    id: str
    prompt: str
    image: str | None
    last_image: str | None = None
    model: str
    size: str
    fit: Fit
    pad_color: str
    crop: Crop | None
    characters: list[str]
    audio: bool | None = None
    seed: int | None = None
    subjects: list[str] = Field(default_factory=list, description="Subject reference images.")
    negative: str | None = Field(default=None, description="What to avoid, for a provider that takes it apart.")
    provider_options: ProviderOptions = Field(default_factory=dict, description="Passed through to the provider.")
    segments: list[Segment] = Field(min_length=1, description="The paid jobs, in order; the first is the create.")
    revisions: list[Revision] = Field(default_factory=list, description="Then these, each one a paid job.")
    notes: list[str] = Field(default_factory=list, description="How the provider's limits shaped the chain.")
    shot: str | None = Field(default=None, description="The plan's scene this is a take (or a redo) of; none: "
                             "the scene itself.")
    take: int = Field(default=1, description="Which take of its shot: its first (1) is the scene's own folder.")
    provider: str = Field(default="", description="The provider profile it is resolved on (its jobs are made there).")
    route: str = Field(default="", description="The route it is resolved on: its provider, and model if it names one.")
    request: str = Field(default="", description="What it asks for wherever it is made (see `_request_of`).")

    @property
    def shot_id(self) -> str:
        return self.shot or self.id

    @property
    def is_redo(self) -> bool:
        """A review's redo of its shot (see `redo_of`)."""
        return self.take == 0

    @property
    def made_on(self) -> str:
        """Where its jobs are made, as the run's lines, the ledger, the manifest and the report name it: its provider
        and model."""
        return f"{self.provider} {self.model}"

    @property
    def dimensions(self) -> tuple[int, int]:
        width, _, height = self.size.partition("x")
        return int(width), int(height)

    @property
    def total_seconds(self) -> int:
        return sum(s.seconds for s in self.segments)

    @property
    def stitched_locally(self) -> bool:
        """The chain continues from last frames: its clips are joined here, not by the provider."""
        return any(s.via == "last-frame" for s in self.segments)


def resolve_scene(s: Scene, plan: Plan, profile: ProviderProfile, route: Route | None = None) -> ResolvedScene:
    """One scene of `plan` as it will be requested on `profile`'s provider (by `route`, whose model and sound go
    over the plan's defaults): defaults applied, prompts composed, lengths cut into jobs (its length checked
    first: see `length_problem`)."""
    d = plan.defaults
    model = s.model or (route.model if route else None) or d.model or profile.default_model
    inline = not profile.takes(model, "negatives")
    prompt = compose(s.prompt, plan.style, negatives=inline)
    beats = [(prompt, s.seconds or d.seconds or profile.default_seconds)]
    beats += [(compose(continuation(s.prompt, e.prompt), plan.style, negatives=inline), e.seconds)
              for e in s.extensions]
    size = s.applied_to(d.applied_to(profile.default_size))
    segments, notes = _chain(beats, model, size, profile, lands=s.last_image is not None)
    return ResolvedScene(
        id=s.id, prompt=prompt, image=s.image, last_image=s.last_image, crop=s.crop, characters=s.characters,
        model=model,
        size=size, fit=s.fit or d.fit,
        audio=next((a for a in (s.audio, route.audio if route else None, d.audio) if a is not None), None),
        seed=s.seed if s.seed is not None else d.seed,
        subjects=plan.subjects if s.subjects is None else s.subjects,
        negative=None if inline else negatives_of(s.prompt, plan.style), pad_color=s.pad_color or d.pad_color,
        provider_options=next((o for o in (s.provider_options, route.provider_options if route else None,
                                          d.provider_options) if o is not None), {}),
        segments=segments, revisions=s.revisions, notes=notes, provider=profile.name,
        route=route.key if route else profile.name, request=_request_of(s, plan))


def _request_of(s: Scene, plan: Plan) -> str:
    """What the scene asks for wherever it is made: its own fields, the plan's defaults and style (not a route's
    model or sound, nor how a provider cuts its length into jobs)."""
    shape = {"scene": s.model_dump(mode="json", exclude={"id", "provider", "route", "takes"}),
             "defaults": plan.defaults.model_dump(mode="json"),
             "style": plan.style.model_dump(mode="json") if plan.style else None}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def length_problem(s: Scene, defaults: SceneDefaults, profile: ProviderProfile) -> str | None:
    """A scene longer than the provider's longest, said before anything depends on its length (cutting a
    length into jobs takes time and memory that grow with it)."""
    own = s.seconds or defaults.seconds or profile.default_seconds
    total = own + sum(e.seconds for e in s.extensions)
    if total <= profile.max_scene_seconds:
        return None
    field = "seconds" if own > profile.max_scene_seconds else "extensions"
    shown = f"{total} s" if total < 10**9 else "more than a billion seconds"
    return f"{field}: the scene would be {shown} long; at most {profile.max_scene_seconds} s on {profile.name}"


def _chain(beats: list[tuple[str, int]], model: str, size: str, profile: ProviderProfile, *, lands: bool
           ) -> tuple[list[Segment], list[str]]:
    """The jobs for a scene's beats (its own prompt and length, then each extension's): each beat's length as
    the nearest sum of lengths the provider makes; continuations extend the provider's video where it can
    (this model, at this size, and the scene does not land on a last image: an extension cannot), else start
    from the previous clip's last frame."""
    limits = profile.model_limits(model)
    if limits is None:  # unknown model: validation says so; nothing to plan with
        return [Segment(prompt=beats[0][0], seconds=beats[0][1], via="create")], []
    extending = None if lands else profile.extending(model, size)
    onward: Via = "extension" if extending else "last-frame"
    then = extending.seconds if extending else limits.seconds
    segments: list[Segment] = []
    notes: list[str] = []
    for index, (prompt, wanted) in enumerate(beats):
        pieces = nearest_lengths(wanted, limits.seconds if index == 0 else then, then)
        for seconds in pieces:
            segments.append(Segment(prompt=prompt, seconds=seconds, via=onward if segments else "create"))
        if pieces != [wanted]:
            field = "seconds" if index == 0 else f"extensions[{index - 1}].seconds"
            offered = ", ".join(map(str, limits.seconds if index == 0 else then))
            notes.append(f"{field}: {wanted} s is not one job on {profile.name} ({model}: {offered} s); "
                         f"rendered as {'+'.join(map(str, pieces))} s")
    if onward == "last-frame" and len(segments) > 1:
        notes.append(f"{profile.name} {_why_not_extended(profile, model, size)}: each continuation is a new clip "
                     "that starts from the previous clip's last frame; the clips are stitched here")
    return segments, notes


def _why_not_extended(profile: ProviderProfile, model: str, size: str) -> str:
    """Why a scene's continuations start from last frames rather than extend the provider's video."""
    if not profile.extensions:
        return "cannot extend its videos"
    limits = profile.model_limits(model)
    if limits is not None and limits.continuation is False:
        return f"extends no {model} videos"
    if not profile.extending(model, size):
        return f"extends no {size} videos"
    return "cannot land an extension on the scene's last_image"


def nearest_lengths(wanted: int, first: list[int], then: list[int]) -> list[int]:
    """Job lengths whose sum is nearest `wanted`: one from `first`, then any from `then`; the fewest jobs,
    then the shorter total (never pay for more than was asked when it is a tie), then the longest first job.

    Time and memory grow linearly with `wanted` (bound it first: `length_problem`)."""
    span = max(0, wanted - min(first)) + max(then)
    unreachable = span + 1  # more pieces than any sum up to `span` needs
    count = [0] + [unreachable] * span  # total of `then` pieces -> the fewest pieces making it
    last = [0] * (span + 1)  # ... and the piece that made it, to walk back from
    for total in range(1, span + 1):
        for piece in then:
            if piece <= total and count[total - piece] + 1 < count[total]:
                count[total], last[total] = count[total - piece] + 1, piece
    reachable = [(total, pieces) for total, pieces in enumerate(count) if pieces < unreachable]
    head, rest, _ = min(((f, total, pieces) for f in first for total, pieces in reachable),
                        key=lambda c: (abs(c[0] + c[1] - wanted), c[2], c[0] + c[1], -c[0]))
    tail: list[int] = []
    while rest:
        tail.append(last[rest])
        rest -= last[rest]
    return [head, *sorted(tail, reverse=True)]


# -- loading --------------------------------------------------------------------------------------


def load_plan(url: str) -> Plan:
    """Read a plan file (YAML or JSON, any fsspec URL); image paths become relative to the file."""
    try:
        with fsspec.open(url, "r", encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as e:
        raise PlanError([f"{url}: cannot read the plan: not UTF-8 text ({e.reason})"]) from e
    except Exception as e:  # whatever the plan's storage raised (any fsspec backend: no credentials, no package)
        raise PlanError([f"cannot read the plan: {unreadable(url, e)}"]) from e
    try:
        data = load_yaml(text)
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

    def relative(value: Any) -> bool:
        return isinstance(value, str) and "://" not in value and not value.startswith("/")

    def near(value: Any) -> Any:
        if isinstance(value, list):
            return [near(item) for item in value]
        return f"{base}/{value}" if relative(value) else value

    def fixed(items: Any, keys: tuple[str, ...]) -> Any:
        if not isinstance(items, list):
            return items
        return [{**item, **{key: near(item[key]) for key in keys if key in item}} if isinstance(item, dict) else item
                for item in items]

    music = data.get("music")
    if isinstance(music, dict) and relative(music.get("file")):
        data = {**data, "music": {**music, "file": f"{base}/{music['file']}"}}
    if "subjects" in data:
        data = {**data, "subjects": near(data["subjects"])}
    return {**data, **{name: fixed(data[name], keys) for name, keys in (("scenes", ("image", "last_image", "subjects")),
                                                                        ("characters", ("clip",))) if name in data}}


# -- validation against the provider --------------------------------------------------------------


def plan_warnings(plan: Plan, source: str = "plan") -> list[str]:
    """Valid but risky: extensions that change the scene's subject or style drift from the shot."""
    return [f"{source}: scene {s.id!r}: extensions[{i}].prompt: changes {' and '.join(fields)}; a continuation "
            "holds together best when it changes only action, camera and timing"
            for s in plan.scenes for i, e in enumerate(s.extensions) if (fields := drift(s.prompt, e.prompt))]


def validate_plan(plan: Plan, profile: ProviderProfile, source: str = "plan", route: Route | None = None
                  ) -> list[ResolvedScene]:
    """Every scene checked against the provider (on `route`, if given) before any paid call; raises PlanError
    listing every problem."""
    problems: list[str] = []
    if not is_safe_name(plan.name):
        problems.append(f"{source}: name: {plan.name!r} is not a safe folder name ({SAFE_NAME_RULE})")
    problems += [f"{source}: {p}" for p in _character_problems(plan, profile)]
    if plan.music is not None:
        problems += [f"{source}: music: file: {p}" for p in _music_problems(plan.music.file)]
    if plan.mode == "batch" and not profile.batch:
        problems.append(f"{source}: mode: batch: provider {profile.name!r} has no batch API for videos")
    scenes: list[ResolvedScene] = []
    seen: set[str] = set()
    for raw in plan.scenes:
        where = f"{source}: scene {raw.id!r}"
        if not is_safe_name(raw.id):
            problems.append(f"{where}: id: not a safe folder name ({SAFE_NAME_RULE})")
        if raw.id in seen:
            problems.append(f"{where}: id: duplicate scene id")
        seen.add(raw.id)
        too_long = length_problem(raw, plan.defaults, profile)
        if too_long is not None:
            problems.append(f"{where}: {too_long}")
            continue
        scene = resolve_scene(raw, plan, profile, route)
        problems += [f"{where}: {p}" for p in scene_problems(scene, profile)]
        problems += [f"{where}: {p}" for p in _cast_problems(scene, plan, profile)]
        for take in takes_of(scene, raw.takes):
            if take.id in seen and take.id != raw.id:
                problems.append(f"{where}: takes: its take {take.id!r} has the id of another scene")
            seen.add(take.id)
            scenes.append(take)
    if problems:
        raise PlanError(problems)
    return scenes


def takes_of(scene: ResolvedScene, takes: int) -> list[ResolvedScene]:
    """The scene's takes: itself, then `<id>.take2`, ... (each with the next seed, if it has one)."""
    return [scene] + [scene.model_copy(update={
        "id": f"{scene.id}.take{number}", "shot": scene.id, "take": number,
        "seed": None if scene.seed is None else (scene.seed + number - 1) % (MAX_SEED + 1)})
        for number in range(2, takes + 1)]


def counted(scenes: list[ResolvedScene]) -> str:
    """How many scenes of the plan `scenes` (as `validate_plan` gives them) are, and their takes."""
    return scenes_and_takes(len({scene.shot_id for scene in scenes}), len(scenes))


def scenes_and_takes(scenes: int, takes: int) -> str:
    """`3 scenes`, or `2 scenes (4 takes)` when there are more takes than scenes."""
    return f"{scenes} scenes" + (f" ({takes} takes)" if takes > scenes else "")


def redo_of(scene: ResolvedScene, prompt: str) -> ResolvedScene:
    """The scene made again as a reviewer asked: its first clip's prompt changed, in a folder of its own."""
    first = scene.segments[0].model_copy(update={"prompt": prompt})
    return scene.model_copy(update={"id": f"{scene.shot_id}.redo", "shot": scene.shot_id, "take": 0,
                                    "prompt": prompt, "segments": [first, *scene.segments[1:]]})


def scene_problems(scene: ResolvedScene, profile: ProviderProfile) -> list[str]:
    limits = profile.model_limits(scene.model)
    if limits is None:
        return [f"model: {scene.model!r} is not offered by provider {profile.name!r} "
                f"(choose from {', '.join(profile.models)})"]
    problems = []
    if scene.size not in limits.sizes:
        problems.append(f"size: {scene.size} is not available for {scene.model} on {profile.name} "
                        f"(choose from {', '.join(limits.sizes)})")
    longest = max(len(segment.prompt) for segment in scene.segments)
    if longest > profile.prompt_max_chars:
        problems.append(f"prompt: {longest} characters; at most {profile.prompt_max_chars}")
    if scene.audio and not limits.audio:
        problems.append(f"audio: {scene.model} on {profile.name} makes silent video")
    if scene.audio is False and limits.audio and not profile.takes(scene.model, "audio"):
        problems.append(f"audio: {_who(scene, profile, 'audio')} cannot switch {scene.model}'s sound off")
    if scene.seed is not None and not profile.takes(scene.model, "seed"):
        problems.append(f"seed: {_who(scene, profile, 'seed')} takes no seed")
    problems += _subject_problems(scene, profile)
    problems += _passthrough_problems(scene, limits, profile)
    if scene.last_image is not None and not profile.takes(scene.model, "last_image"):
        problems.append(f"last_image: {_who(scene, profile, 'last_image')} cannot land a clip on a given last frame")
    problems += _endpoint_problems(scene, limits)
    problems += _extension_problems(scene, profile)
    problems += _revision_problems(scene, profile)
    problems += _image_problems(scene)
    return problems


def _who(scene: ResolvedScene, profile: ProviderProfile, quantity: Quantity) -> str:
    """Who cannot take `quantity`: the provider, or (where it takes it for other models) the scene's model."""
    return f"{scene.model} on {profile.name}" if profile.provider_takes(quantity) else f"provider {profile.name!r}"


def _endpoint_problems(scene: ResolvedScene, limits: ModelLimits) -> list[str]:
    """Where models have endpoints, each of the scene's clips needs one that takes what it carries: its first
    image (a continuation's is the previous clip's last frame), its last image (on the last clip)."""
    if not limits.endpoints:
        return []
    optional: dict[Quantity, object] = {"audio": scene.audio, "seed": scene.seed, "negatives": scene.negative}
    mapped = {quantity for endpoint in limits.endpoints for quantity in endpoint.inputs}  # (the others: see above)
    carried = {quantity for quantity, value in optional.items() if value is not None and quantity in mapped}
    problems = []
    for number, segment in enumerate(scene.segments):
        starts = scene.image is not None if number == 0 else segment.via == "last-frame"
        lands = scene.last_image is not None and number == len(scene.segments) - 1
        clip = carried | _images_of(starts, lands)
        if segment.via != "extension" and limits.endpoint_for(clip) is None:
            field = "image" if number == 0 else f"extensions[{number - 1}]"
            problems.append(f"{field}: {scene.model} makes no clip {_clip_described(clip)} (its endpoints: "
                            f"{', '.join(endpoint.id for endpoint in limits.endpoints)})")
    return problems


def _images_of(starts: bool, lands: bool) -> set[Quantity]:
    images: set[Quantity] = set()
    if starts:
        images.add("image")
    if lands:
        images.add("last_image")
    return images


def _clip_described(clip: set[Quantity]) -> str:
    starts = "from an image" if "image" in clip else "without an image"
    rest = sorted(clip - {"image"})
    return starts + (f" with {', '.join(rest)}" if rest else "")


def _subject_problems(scene: ResolvedScene, profile: ProviderProfile) -> list[str]:
    """Subject images: whether the provider takes them, how many, with which clips (Veo: 8 s, 16:9, no frames)."""
    if not scene.subjects:
        return []
    limits = profile.subjects
    if limits is None:
        return [f"subjects: provider {profile.name!r} takes no subject images"]
    model = profile.model_limits(scene.model)
    if model is not None and model.references is False:
        takers = [name for name, other in profile.models.items() if other.references is not False]
        return [f"subjects: {scene.model} on {profile.name} takes no subject images (models that do: "
                f"{', '.join(takers) or 'none'})"]
    problems = [f"subjects: {p}" for url in scene.subjects for p in _reference_problems(url)]
    if len(scene.subjects) > limits.max_count:
        problems.append(f"subjects: {len(scene.subjects)} images; at most {limits.max_count} on {profile.name}")
    if scene.image or scene.last_image:
        problems.append(f"subjects: {profile.name} takes subject images or a first/last frame (image, last_image), "
                        "not both")
    first = scene.segments[0].seconds
    if limits.seconds is not None and first not in limits.seconds:
        problems.append(f"subjects: a clip with subjects is {'/'.join(map(str, limits.seconds))} s on "
                        f"{profile.name}, not {first} s")
    if limits.sizes is not None and scene.size not in limits.sizes:
        problems.append(f"subjects: a clip with subjects is {', '.join(limits.sizes)} on {profile.name}, not "
                        f"{scene.size}")
    return problems


def _passthrough_problems(scene: ResolvedScene, limits: ModelLimits, profile: ProviderProfile) -> list[str]:
    """Provider options only where the profile lets the model take them, and only the names it allows."""
    if not scene.provider_options:
        return []
    if not limits.passthrough:
        return [f"provider_options: {scene.model} on {profile.name} takes no provider options"]
    if limits.upstream is None:
        return [f"provider_options: {scene.model} on {profile.name}: its profile names no provider to send them to "
                "(the model's `upstream`)"]
    return [f"provider_options: {name}: not an option {scene.model} takes on {profile.name} (it takes "
            f"{', '.join(limits.passthrough)})" for name in scene.provider_options if name not in limits.passthrough]


def _revision_problems(scene: ResolvedScene, profile: ProviderProfile) -> list[str]:
    """Revisions need the provider's endpoint, and its own video: a chain stitched here is not one."""
    offered = {"edit": (profile.edits, "edits"), "remix": (profile.remix, "remix")}
    problems = []
    for i, r in enumerate(scene.revisions):
        if not profile.revises(scene.model, r.kind):
            of_model = f" of {scene.model} videos" if offered[r.kind][0] else ""  # (it revises other models')
            problems.append(f"revisions[{i}].{r.kind}: provider {profile.name!r} has no {offered[r.kind][1]}{of_model}")
    if scene.revisions and scene.stitched_locally and not problems:
        problems.append(f"revisions: the video is stitched here from {len(scene.segments)} clips (provider "
                        f"{profile.name!r} {_why_not_extended(profile, scene.model, scene.size)}), so the provider "
                        "has no video to revise")
    return problems


def _character_problems(plan: Plan, profile: ProviderProfile) -> list[str]:
    if not plan.characters:
        return []
    if not profile.max_characters:
        return [f"characters: provider {profile.name!r} has no characters"]
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
    from .media.video import probe  # PyAV, only for a plan with characters

    try:
        with fsspec.open(url, "rb") as handle:
            info = probe(handle.read())
    except Exception as e:  # whatever the clip's storage raised (any fsspec backend)
        return [unreadable(url, e)]
    low, high = profile.character_clip_seconds
    if info is None:
        return [f"{url} is not a video"]
    if not low - 0.05 <= info.seconds <= high + 0.05:
        return [f"{url} is {info.seconds:.1f} s long; {profile.name} takes {low:g} to {high:g} s"]
    return []


def _music_problems(url: str) -> list[str]:
    from .media.video import sound_in  # PyAV, only for a plan with music

    try:
        with fsspec.open(url, "rb") as handle:
            has_sound = sound_in(handle)
    except Exception as e:  # whatever the file's storage raised (any fsspec backend)
        return [unreadable(url, e)]
    return [] if has_sound else [f"{url} has no sound"]


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
    """The provider's limits on one chain of `/extensions` (last-frame continuations have none)."""
    limits = profile.extensions
    extensions = [s for s in scene.segments if s.via == "extension"]
    if limits is None or not extensions:
        return []
    problems = []
    if len(extensions) > limits.max_count:
        problems.append(f"extensions: {len(extensions)} extensions in the chain; at most {limits.max_count} on "
                        f"{profile.name}")
    if scene.total_seconds > limits.max_total_seconds:
        problems.append(f"extensions: the stitched video would be {scene.total_seconds} s; "
                        f"at most {limits.max_total_seconds} s on {profile.name}")
    return problems


def _image_problems(scene: ResolvedScene) -> list[str]:
    problems = []
    try:
        ImageColor.getrgb(scene.pad_color)
    except ValueError:
        problems.append(f"pad_color: {scene.pad_color!r} is not a colour")
    for field, url in (("image", scene.image), ("last_image", scene.last_image)):
        if url is not None:
            problems += [f"{field}: {p}" for p in _reference_problems(url)]
    return problems


def _reference_problems(url: str) -> list[str]:
    """The image exists and its header is a readable image of acceptable size (pixels are not decoded)."""
    try:
        fs, path = fsspec.url_to_fs(url)
        if fs.info(path).get("type") == "directory":
            return [f"{url} is not a file"]
        with fs.open(path, "rb") as handle:
            read_info(handle, url)
    except ImageError as e:
        return [str(e)]
    except Exception as e:  # whatever the image's storage raised (any fsspec backend)
        return [unreadable(url, e)]
    return []

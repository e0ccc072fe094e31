"""`reelflow run --dry-run`: every job-creating request a run would send, built by the same code that
sends them (reference images prepared for real), and nothing sent."""

from __future__ import annotations

import hashlib
import json

from ._estimate import Estimate
from ._gateway import Request, create_request, extension_request
from ._images import read_info
from ._plan import Plan, ResolvedScene
from ._profiles import ProviderProfile
from ._references import as_reference, fitted, read_reference, unchanged_reference, usable_as_is
from ._settings import Settings
from ._storage import read_source


def scene_requests(scene: ResolvedScene, profile: ProviderProfile, settings: Settings) -> list[Request]:
    """The scene's create request, then one extension request per extension, in order."""
    reference = None
    if scene.image is not None:
        source = read_reference(scene.image, f"scene {scene.id!r}: image")
        reference = (unchanged_reference(source) if usable_as_is(source, scene, profile.reference_formats)
                     else as_reference(fitted(source, scene, settings.reference_format)))
    requests = [create_request(prompt=scene.prompt, model=scene.model, size=scene.size, seconds=scene.seconds,
                               reference=reference, characters=[f"<character {n!r}>" for n in scene.characters])]
    for number, extension in enumerate(scene.extensions, start=1):
        requests.append(extension_request(video_id=f"<the video of request {number}>", prompt=extension.prompt,
                                          seconds=extension.seconds))
    return requests


def describe(plan: Plan, scenes: list[ResolvedScene], profile: ProviderProfile, settings: Settings,
             costs: Estimate) -> str:
    lines = [f"Dry run on {profile.name}: nothing is sent.", ""]
    used = {name for scene in scenes for name in scene.characters}
    for character in (c for c in plan.characters if c.name in used):
        clip = read_source(character.clip, f"character {character.name!r}: clip")
        lines += [f"character {character.name!r} (once per output; reused on resume)",
                  "  POST /v1/videos/characters", f"       name: {json.dumps(character.name)}",
                  f"       video: {character.clip} ({len(clip)} bytes, sha256 {hashlib.sha256(clip).hexdigest()})", ""]
    for scene in scenes:
        cost = costs.cost_of(scene.id)
        jobs = "1 job" if cost.jobs == 1 else f"{cost.jobs} jobs"
        lines.append(f"scene {scene.id!r}: {cost.seconds} s, {jobs}, ${cost.usd:.2f}")
        for number, request in enumerate(scene_requests(scene, profile, settings), start=1):
            lines += _request_lines(number, request)
        downloads = "; ".join(f"GET /v1/videos/{{id}}/content?variant={v}" for v in profile.variants)
        lines += [f"  then: GET /v1/videos/{{id}} until it finishes; {downloads}", ""]
    return "\n".join(lines)


def _request_lines(number: int, request: Request) -> list[str]:
    lines = [f"  {number}. {request.endpoint}"]
    for name, value in request.fields.items():
        if name != "prompt":
            lines.append(f"       {name}: {json.dumps(value)}")
    if request.reference is not None:
        data = request.reference.data
        info = read_info(data, request.reference.filename)
        lines.append(f"       input_reference: {request.reference.filename} ({request.reference.media_type}, "
                     f"{info.width}x{info.height}, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
    lines.append("       prompt:")
    lines += [f"         {line}" for line in request.fields["prompt"].splitlines()]
    return lines

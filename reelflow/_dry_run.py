"""`reelflow run --dry-run`: every job-creating request a run would send, built by the same code that
sends them (reference images prepared for real), and nothing sent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .costs import Estimate
from .media.images import read_info
from .media.references import as_reference, fitted, read_reference, unchanged_reference, usable_as_is
from .plans import Plan, ResolvedScene
from .profiles import ProviderProfile
from .providers._gateway import Request, create_request, edit_request, extension_request, remix_request
from .settings import Settings
from .storage import read_source


@dataclass(frozen=True)
class Planned:
    """A request a run would send; a last-frame continuation's reference is made only during the run."""

    request: Request
    reference_from: int | None = None  # the number of the request whose video's last frame is the reference


def scene_requests(scene: ResolvedScene, profile: ProviderProfile, settings: Settings) -> list[Planned]:
    """The scene's requests in order: its create, then each continuation."""
    reference = None
    if scene.image is not None:
        source = read_reference(scene.image, f"scene {scene.id!r}: image")
        reference = (unchanged_reference(source) if usable_as_is(source, scene, profile.reference_formats)
                     else as_reference(fitted(source, scene, settings.reference_format)))
    characters = [f"<character {name!r}>" for name in scene.characters]
    planned = []
    for number, segment in enumerate(scene.segments, start=1):
        if segment.via == "extension":
            planned.append(Planned(extension_request(video_id=f"<the video of request {number - 1}>",
                                                     prompt=segment.prompt, seconds=segment.seconds)))
            continue
        request = create_request(prompt=segment.prompt, model=scene.model, size=scene.size, seconds=segment.seconds,
                                 reference=reference if segment.via == "create" else None, characters=characters)
        planned.append(Planned(request, None if segment.via == "create" else number - 1))
    for number, revision in enumerate(scene.revisions, start=len(planned) + 1):
        make = edit_request if revision.kind == "edit" else remix_request
        planned.append(Planned(make(video_id=f"<the video of request {number - 1}>", prompt=revision.prompt)))
    return planned


def describe(plan: Plan, scenes: list[ResolvedScene], profile: ProviderProfile, settings: Settings,
             costs: Estimate) -> str:
    lines = [f"Dry run on {profile.name}: nothing is sent.", ""]
    if plan.mode == "batch":
        lines += ["mode: batch: each scene's request 1 goes as a line of one batch (its JSON body, a reference image",
                  "as a data URL): POST /v1/files (purpose=batch), POST /v1/batches (endpoint /v1/videos,",
                  "completion_window 24h), GET /v1/batches/{id} until it finishes, then its output file.", ""]
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
        lines += [f"  note: {note}" for note in scene.notes]
        for number, planned in enumerate(scene_requests(scene, profile, settings), start=1):
            lines += _request_lines(number, planned, scene)
        lines += [f"  then: {_afterwards(scene, profile)}", ""]
    return "\n".join(lines)


def _afterwards(scene: ResolvedScene, profile: ProviderProfile) -> str:
    if scene.stitched_locally:
        return ("GET /v1/videos/{id} until each finishes; GET /v1/videos/{id}/content?variant=video of each; "
                "the clips stitched here, thumbnail and spritesheet made here")
    downloads = "; ".join(f"GET /v1/videos/{{id}}/content?variant={v}" for v in profile.variants)
    made = [v for v in ("thumbnail", "spritesheet") if v not in profile.variants]
    return (f"GET /v1/videos/{{id}} until it finishes; {downloads}"
            + (f"; {' and '.join(made)} made here" if made else ""))


def _request_lines(number: int, planned: Planned, scene: ResolvedScene) -> list[str]:
    request = planned.request
    endpoint = request.endpoint.replace("{id}", request.video_id) if request.video_id else request.endpoint
    lines = [f"  {number}. {endpoint}"]
    for name, value in request.fields.items():
        if name != "prompt":
            lines.append(f"       {name}: {json.dumps(value)}")
    if planned.reference_from is not None:
        lines.append(f"       input_reference: <the last frame of request {planned.reference_from}'s video, "
                     f"fitted to {scene.size}>")
    if request.reference is not None:
        data = request.reference.data
        info = read_info(data, request.reference.filename)
        lines.append(f"       input_reference: {request.reference.filename} ({request.reference.media_type}, "
                     f"{info.width}x{info.height}, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
    lines.append("       prompt:")
    lines += [f"         {line}" for line in request.fields["prompt"].splitlines()]
    return lines

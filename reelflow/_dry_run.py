"""`reelflow run --dry-run`: every job-creating request a run would send, in the provider's own dialect, built
by the same code that sends them (reference images prepared for real), and nothing sent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .costs import Estimate
from .media.images import read_info
from .media.references import (
    FIRST,
    LAST,
    Role,
    as_reference,
    fitted,
    read_reference,
    subject_reference,
    unchanged_reference,
    usable_as_is,
)
from .plans import Plan, ResolvedScene
from .profiles import ProviderProfile
from .providers import (
    ClipJob,
    ExtensionJob,
    JobSpec,
    Reference,
    RevisionJob,
    VideoProvider,
    WireRequest,
    dialect,
    image_delivery,
)
from .settings import Settings
from .storage import Storage, read_source


@dataclass(frozen=True)
class Planned:
    """A request a run would send; a last-frame continuation's reference is made only during the run."""

    request: WireRequest
    reference_from: int | None = None  # the number of the request whose video's last frame is the reference


def scene_jobs(scene: ResolvedScene, profile: ProviderProfile, settings: Settings) -> list[tuple[JobSpec, int | None]]:
    """The scene's jobs in order (its clip, each continuation, each revision), each with the number of the
    request whose last frame it starts from, if it does."""
    reference = _prepared(scene, FIRST, profile, settings)
    landing = _prepared(scene, LAST, profile, settings)
    characters = tuple(f"<character {name!r}>" for name in scene.characters)
    subjects = tuple(subject_reference(read_reference(url, f"scene {scene.id!r}: subjects"), profile.reference_formats,
                                       settings.reference_format) for url in scene.subjects)
    jobs: list[tuple[JobSpec, int | None]] = []
    shown = 0
    for number, segment in enumerate(scene.segments, start=1):
        shown += segment.seconds
        if segment.via == "extension":
            jobs.append((ExtensionJob(source=f"<the video of request {number - 1}>", prompt=segment.prompt,
                                      seconds=segment.seconds, size=scene.size, total_seconds=shown,
                                      model=scene.model), None))
            continue
        first = reference if segment.via == "create" else _LAST_FRAME
        last = landing if number == len(scene.segments) else None
        jobs.append((ClipJob(prompt=segment.prompt, model=scene.model, size=scene.size, seconds=segment.seconds,
                             first_frame=first, last_frame=last, characters=characters, audio=scene.audio,
                             seed=scene.seed, negative=scene.negative, subjects=subjects if number == 1 else (),
                             provider_options=scene.provider_options),
                     None if segment.via == "create" else number - 1))
    for number, revision in enumerate(scene.revisions, start=len(jobs) + 1):
        jobs.append((RevisionJob(kind=revision.kind, source=f"<the video of request {number - 1}>",
                                 prompt=revision.prompt, size=scene.size, total_seconds=scene.total_seconds,
                                 model=scene.model), None))
    return jobs


def _prepared(scene: ResolvedScene, role: Role, profile: ProviderProfile, settings: Settings) -> Reference | None:
    """The scene's first or last image as a run would send it, prepared for real."""
    url = scene.image if role is FIRST else scene.last_image
    if url is None:
        return None
    source = read_reference(url, f"scene {scene.id!r}: {'image' if role is FIRST else 'last_image'}")
    if usable_as_is(source, scene, profile.reference_formats, role):
        return unchanged_reference(source, role)
    return as_reference(fitted(source, scene, settings.reference_format, role), role)


_LAST_FRAME = Reference("<last frame>", b"", "image/jpeg")  # stands for a frame that exists only during the run
_DELIVERY = {"presigned URL": "presigned URLs of their copies in the output (the provider fetches them)",
             "data URL": "data URLs in the request body (the output cannot sign URLs for the provider to fetch)",
             "upload": "URLs of uploads to the provider's storage, made just before each request (the output "
                       "cannot sign URLs for the provider to fetch)"}


def describe(plan: Plan, scenes: list[ResolvedScene], profile: ProviderProfile, settings: Settings,
             costs: Estimate, output: Storage) -> str:
    """Every request of the plan, for the provider of `profile`, writing to `output` (the plan's folder)."""
    provider = dialect(profile.api)
    delivery = image_delivery(profile, output) if any(s.image or s.last_image or s.stitched_locally
                                                        for s in scenes) else None
    lines = [f"Dry run on {profile.name} ({profile.api}): nothing is sent.", ""]
    if delivery is not None:
        lines += [f"Reference images go as {_DELIVERY[delivery]}.", ""]
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
        reused = f" ({cost.reused} more from earlier runs)" if cost.reused else ""
        lines.append(f"scene {scene.id!r}: {cost.seconds} s, {jobs} to pay{reused}, ${cost.usd:.2f}")
        lines += [f"  note: {note}" for note in cost.notes]
        for number, (job, reference_from) in enumerate(scene_jobs(scene, profile, settings), start=1):
            if number <= cost.reused:
                lines.append(f"  {number}. made (or being made) by an earlier run on this output: not sent")
                continue
            lines += _request_lines(number, Planned(provider.describe(job, profile), reference_from), scene)
        lines += [f"  then: {_afterwards(scene, profile, provider)}", ""]
    return "\n".join(lines)


def _afterwards(scene: ResolvedScene, profile: ProviderProfile, provider: type[VideoProvider]) -> str:
    if scene.stitched_locally:
        return (f"{provider.describe_followup(['video'])}, for each clip; the clips stitched here, thumbnail and "
                "spritesheet made here")
    made = [v for v in ("thumbnail", "spritesheet") if v not in profile.variants]
    return provider.describe_followup(list(profile.variants)) + (f"; {' and '.join(made)} made here" if made else "")


def _request_lines(number: int, planned: Planned, scene: ResolvedScene) -> list[str]:
    request = planned.request
    lines = [f"  {number}. {request.route}"]
    for name, value in request.fields.items():
        if name != "prompt":
            lines.append(f"       {name}: {json.dumps(value, default=lambda v: _image(v, planned, scene))}")
    for name, reference in request.files.items():
        lines.append(f"       {name}: {_image(reference, planned, scene)}")
    if "prompt" in request.fields:  # else it is inside a field, as the wire has it (Veo's instances)
        lines.append("       prompt:")
        lines += [f"         {line}" for line in str(request.fields["prompt"]).splitlines()]
    return lines


def _image(value: Any, planned: Planned, scene: ResolvedScene) -> str:
    """An image as the dry run shows it: what it is, not its bytes."""
    if not isinstance(value, Reference):
        raise TypeError(f"{type(value).__name__} in a request body")
    if value is _LAST_FRAME:
        return f"<the last frame of request {planned.reference_from}'s video, fitted to {scene.size}>"
    info = read_info(value.data, value.filename)
    return (f"{value.filename} ({value.media_type}, {info.width}x{info.height}, {len(value.data)} bytes, sha256 "
            f"{hashlib.sha256(value.data).hexdigest()})")

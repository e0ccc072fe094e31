"""What each step of a scene sends: its references prepared and kept beside its outputs, and its job (a clip, a
continuation from the last frame, an extension, a revision) in reelflow's dialect-neutral terms."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from reelflow.media.references import (
    FIRST,
    LAST,
    Role,
    as_reference,
    subject_reference,
    unchanged_reference,
    usable_as_is,
)
from reelflow.progress import report
from reelflow.providers import ClipJob, ExtensionJob, JobSpec, Reference, RevisionJob
from reelflow.results import FileRecord
from reelflow.reuse import clip_name
from tasks._retry import tuned
from tasks.images import last_frame_of, transform

from ._scene_run import FIRST_REFERENCE, LAST_REFERENCE, Chain, Step


async def prepare_references(chain: Chain, clips: list[int]) -> None:
    """The references of the clips `clips` (the scene's first image and subjects for its first clip, its last image
    for its last), prepared as they are sent and kept beside the scene's outputs, once per run."""
    last = len(chain.scene.segments) - 1
    wanted = [role for role, needed in ((FIRST, 0 in clips), (LAST, last in clips)) if needed]
    for role in wanted:
        await _reference(chain, role)
    if 0 in clips:
        _subjects(chain)


async def request_of(step: Step) -> JobSpec:
    """The job the step sends: its clip, a continuation from the last frame of the clip before, an extension or a
    revision of the step before's video."""
    scene, number = step.scene, step.number
    if step.revision > 0:
        revision = scene.revisions[step.revision - 1]
        return RevisionJob(kind=revision.kind, source=_before(step), prompt=revision.prompt, size=scene.size,
                           total_seconds=scene.total_seconds, model=scene.model)
    segment = scene.segments[number]
    if segment.via == "extension":
        return ExtensionJob(source=_before(step), prompt=segment.prompt, seconds=segment.seconds, size=scene.size,
                            total_seconds=sum(s.seconds for s in scene.segments[:number + 1]), model=scene.model)
    await prepare_references(step.chain, [number])  # (already, unless a reused job turned out gone)
    first = await _continued_from(step) if segment.via == "last-frame" else step.chain.references.get(_name(FIRST))
    return _clip(step, first)


def _before(step: Step) -> str:
    assert step.before is not None, "an extension or a revision builds on the video before it"
    return step.before.id


def _clip(step: Step, first: Reference | None) -> ClipJob:
    """A clip of the scene's model and size, carrying its characters; its first clip its subjects, its last clip
    the last image it lands on."""
    scene, references, number = step.scene, step.chain.references, step.number
    last = references.get(_name(LAST)) if number == len(scene.segments) - 1 else None
    subjects = tuple(reference for name, reference in references.items() if name.startswith("subject-"))
    return ClipJob(prompt=scene.segments[number].prompt, model=scene.model, size=scene.size,
                   seconds=scene.segments[number].seconds, first_frame=first, last_frame=last, audio=scene.audio,
                   seed=scene.seed, negative=scene.negative, subjects=subjects if number == 0 else (),
                   provider_options=scene.provider_options,
                   characters=tuple(step.run.character_ids[name] for name in scene.characters))


async def _continued_from(step: Step) -> Reference:
    """The last frame of the clip before, fitted to the scene's size: where a continuation starts."""
    chain, number = step.chain, step.number
    report(chain.scene.id, "preparing")
    settings = chain.run.settings
    frame = await tuned(last_frame_of, settings)(chain.run.storage, chain.scene, clip_name(number - 1),
                                                 settings.reference_format)
    return _kept(chain, as_reference(frame), f"segments/{number}.first-frame.{frame.extension}")


def _name(role: Role) -> str:
    return {FIRST: FIRST_REFERENCE, LAST: LAST_REFERENCE}[role]


async def _reference(chain: Chain, role: Role) -> None:
    """The scene's first (or last) image as it is sent: the user's file when it fits, else prepared."""
    source = chain.images.of(role)
    if source is None or _name(role) in chain.references:
        return
    scene, run = chain.scene, chain.run
    if usable_as_is(source, scene, chain.gateway.profile.reference_formats, role):
        reference = unchanged_reference(source, role)
    else:
        report(scene.id, "preparing")
        prepared = await tuned(transform, run.settings)(source, scene, run.settings.reference_format, role)
        chain.warnings += prepared.warnings
        reference = as_reference(prepared, role)
    chain.references[_name(role)] = _kept(chain, reference, reference.filename)


def _subjects(chain: Chain) -> None:
    """The scene's subject images as they are sent (in an accepted format, at their own size), kept beside it."""
    run = chain.run
    if any(name.startswith("subject-") for name in chain.references):
        return
    for number, source in enumerate(chain.images.subjects, start=1):
        reference = subject_reference(source, chain.gateway.profile.reference_formats, run.settings.reference_format)
        name = f"subject-{number}.{reference.filename.rpartition('.')[2]}"
        chain.references[name] = _kept(chain, reference, name)


def _kept(chain: Chain, reference: Reference, name: str) -> Reference:
    """An image a create sends, kept beside the scene's outputs (and recorded); for a provider that fetches
    images itself, with a presigned URL of that copy when the storage can sign one (else the dialect sends
    the image inline)."""
    run, scene_id = chain.run, chain.scene.id
    run.storage.write_bytes(reference.data, scene_id, name)
    chain.entry.files[name] = FileRecord(url=run.storage.location(scene_id, name), bytes=len(reference.data),
                                         sha256=hashlib.sha256(reference.data).hexdigest())
    if chain.gateway.provider.capabilities.images == "bytes":
        return reference
    url = run.storage.signed_url(scene_id, name, seconds=run.settings.reference_url_seconds)
    return replace(reference, url=url) if url else reference

"""The plan's characters: created once per plan output (recorded in the ledger, reused on resume)."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes

from reelflow.ledger import CharacterRecord, Ledger
from reelflow.plans import Character, ResolvedScene
from reelflow.providers import Reference
from reelflow.storage import read_source
from tasks._retry import tuned
from tasks.videos import create_character

from ._scene_run import SceneRun


async def cast(characters: list[Character], scenes: list[ResolvedScene], run: SceneRun) -> dict[str, str]:
    """The provider's id of every character some scene uses, by name; created only when the ledger has
    none made from the same clip."""
    used = {name for scene in scenes for name in scene.characters}
    ledger = Ledger(run.storage)
    records = ledger.characters()
    for character in (c for c in characters if c.name in used):
        clip = await asyncio.to_thread(read_source, character.clip, f"character {character.name!r}: clip")
        digest = hashlib.sha256(clip).hexdigest()
        known = records.get(character.name)
        if known is None or known.clip_sha256 != digest:
            media_type = mimetypes.guess_type(character.clip)[0] or "video/mp4"
            upload = Reference(character.clip.rsplit("/", 1)[-1], clip, media_type)
            character_id = await tuned(create_character, run.settings)(run.gateway, character.name, upload)
            records[character.name] = CharacterRecord(id=character_id, clip_sha256=digest)
            ledger.save_characters(records)
    return {name: records[name].id for name in used}

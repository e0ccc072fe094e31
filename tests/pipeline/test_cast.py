"""Characters end to end: created once per plan output through the SDK, referenced by the scenes that
name them, reused on resume, made anew only from a new clip."""

from __future__ import annotations

import json
from pathlib import Path

from flows.render_plan import render_plan
from reelflow import Settings, load_plan, load_profile, validate_plan
from reelflow._dry_run import describe
from reelflow.costs import estimate
from reelflow.sandbox import RunningSandbox
from reelflow.storage import Storage
from tests.media import clip_bytes, probe_video

PLAN = """\
name: cast
characters:
  - {name: Mira, clip: clips/mira.mp4}
  - {name: Juno, clip: clips/juno.mp4}
defaults: {size: 1280x720, seconds: 4}
scenes:
  - {id: alone, prompt: "Mira walks along the pier", characters: [Mira]}
  - id: together
    prompt: {subject: "Mira and Juno, old friends", action: "Mira waves to Juno"}
    characters: [Mira, Juno]
    extensions: [{prompt: "they laugh", seconds: 4}]
  - {id: empty, prompt: "the empty pier at night"}
"""


def write_plan(folder: Path, mira_seconds: float = 3) -> str:
    (folder / "clips").mkdir(exist_ok=True)
    (folder / "clips" / "mira.mp4").write_bytes(clip_bytes(mira_seconds))
    (folder / "clips" / "juno.mp4").write_bytes(clip_bytes(2))
    (folder / "plan.yaml").write_text(PLAN)
    return str(folder / "plan.yaml")


def characters_made(sandbox: RunningSandbox) -> int:
    return int(sandbox.stats()["requests"].get("POST /v1/videos/characters", 0))


def test_characters_are_made_once_and_used_by_the_scenes_that_name_them(provider: RunningSandbox,
                                                                      tmp_path: Path) -> None:
    plan_path = write_plan(tmp_path)
    made_before, uses_before = characters_made(provider), dict(provider.stats()["character_uses"])
    result = render_plan(load_plan(plan_path), output=f"file://{tmp_path}/out")
    assert [s.status for s in result.scenes] == ["completed"] * 3
    assert characters_made(provider) - made_before == 2
    ids = {name: record["id"] for name, record in
           json.loads((tmp_path / "out/cast/ledger/characters.json").read_text()).items()}
    uses = provider.stats()["character_uses"]
    assert {name: uses[i] - uses_before.get(i, 0) for name, i in ids.items()} == {"Mira": 2, "Juno": 1}
    assert probe_video((tmp_path / "out/cast/together/video.mp4").read_bytes()).seconds == 8.0

    # Resume with one scene changed: the characters are reused, not made again.
    (tmp_path / "plan.yaml").write_text(PLAN.replace("the empty pier at night", "the empty pier at dawn"))
    render_plan(load_plan(plan_path), output=f"file://{tmp_path}/out")
    assert characters_made(provider) - made_before == 2

    # A new clip is a new character: Mira alone is made again, and the scenes she is in are rendered anew.
    creates = provider.stats()["jobs_by_kind"]["create"]
    (tmp_path / "clips" / "mira.mp4").write_bytes(clip_bytes(4))
    render_plan(load_plan(plan_path), output=f"file://{tmp_path}/out")
    assert characters_made(provider) - made_before == 3
    assert provider.stats()["jobs_by_kind"]["create"] - creates == 2  # 'alone' and 'together', not 'empty'


def test_dry_run_lists_the_character_requests_and_their_use(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path))
    profile, settings = load_profile("sandbox"), Settings()
    scenes = validate_plan(plan, profile)
    text = describe(plan, scenes, profile, settings, estimate(plan, scenes, profile, settings), Storage("memory://dry"))
    assert text.count("POST /v1/videos/characters") == 2
    assert 'characters: [{"id": "<character \'Mira\'>"}, {"id": "<character \'Juno\'>"}]' in text

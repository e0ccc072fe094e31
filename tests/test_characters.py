"""Characters in a plan: declared once with a clip, used by scenes that name them verbatim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reelflow import PlanError, Settings, load_plan, load_profile, validate_plan
from tests.media import clip_bytes


def plan_file(folder: Path, scenes: list[dict[str, Any]], characters: list[dict[str, str]] | None = None) -> str:
    (folder / "mira.mp4").write_bytes(clip_bytes(3))
    (folder / "long.mp4").write_bytes(clip_bytes(8))
    plan = folder / "plan.yaml"
    cast = characters if characters is not None else [{"name": "Mira", "clip": "mira.mp4"}]
    plan.write_text(yaml.safe_dump({"name": "cast", "characters": cast, "scenes": scenes}))
    return str(plan)


def problems(path: str, profile: str = "sandbox") -> list[str]:
    with pytest.raises(PlanError) as raised:
        validate_plan(load_plan(path), load_profile(profile, Settings().providers_file), source="plan.yaml")
    return raised.value.problems


def test_a_scene_naming_its_characters_verbatim_is_valid(tmp_path: Path) -> None:
    path = plan_file(tmp_path, [{"id": "a", "prompt": {"subject": "Mira, a tall diver", "action": "Mira dives"},
                                 "characters": ["Mira"]}])
    (scene,) = validate_plan(load_plan(path), load_profile("sandbox"))
    assert scene.characters == ["Mira"]
    assert load_plan(path).characters[0].clip == f"{tmp_path}/mira.mp4"  # relative to the plan file


@pytest.mark.parametrize(("scene", "cast", "expected"), [
    ({"prompt": "a diver jumps", "characters": ["Mira"]}, None,
     "plan.yaml: scene 'a': prompt: does not name character 'Mira' verbatim"),
    ({"prompt": "mira jumps", "characters": ["Mira"]}, None,  # verbatim means the same letters and case
     "plan.yaml: scene 'a': prompt: does not name character 'Mira' verbatim"),
    ({"prompt": "Juno jumps", "characters": ["Juno"]}, None,
     "plan.yaml: scene 'a': characters: 'Juno' is not one of the plan's characters"),
    ({"prompt": "Mira, Mira and Mira", "characters": ["Mira", "Mira", "Mira"]}, None,
     "plan.yaml: scene 'a': characters: 3 characters; at most 2 per video on sandbox"),
    ({"prompt": "Mira"}, [{"name": "Mira", "clip": "long.mp4"}],
     "plan.yaml: characters[0] 'Mira': clip: {folder}/long.mp4 is 8.0 s long; sandbox takes 2 to 4 s"),
    ({"prompt": "Mira"}, [{"name": "Mira", "clip": "missing.mp4"}],
     "plan.yaml: characters[0] 'Mira': clip: {folder}/missing.mp4 does not exist"),
    ({"prompt": "Mira"}, [{"name": "Mira", "clip": "mira.mp4"}, {"name": "Mira", "clip": "mira.mp4"}],
     "plan.yaml: characters[1] 'Mira': name: duplicate character name"),
])
def test_character_mistakes_are_one_line_each(tmp_path: Path, scene: dict[str, Any],
                                              cast: list[dict[str, str]] | None, expected: str) -> None:
    path = plan_file(tmp_path, [{"id": "a", **scene}], cast)
    assert expected.format(folder=tmp_path) in problems(path)


def test_a_provider_without_characters_refuses_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "providers.yaml").write_text("name: plain\nextends: sora\nmax_characters: 0\n")
    monkeypatch.setenv("REELFLOW_PROVIDERS_FILE", str(tmp_path / "providers.yaml"))
    path = plan_file(tmp_path, [{"id": "a", "prompt": "Mira", "characters": ["Mira"]}])
    found = problems(path, "plain")
    assert "plan.yaml: characters: provider 'plain' has no characters" in found

"""Plans are checked before any paid call; every problem names the file, the scene and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelflow import PlanError, load_plan, load_profile, parse_plan, validate_plan
from tests.images import encoded, photo

SORA = load_profile("sora")


def problems(data: dict[str, Any], profile: str = "sora") -> list[str]:
    with pytest.raises(PlanError) as raised:
        validate_plan(parse_plan(data, source="plan.yaml"), load_profile(profile), source="plan.yaml")
    return raised.value.problems


def scene(**fields: Any) -> dict[str, Any]:
    return {"name": "p", "scenes": [{"id": "opening", "prompt": "a harbour", **fields}]}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"model": "sora-1-turbo"}, "plan.yaml: scene 'opening': model: 'sora-1-turbo' is not offered by provider 'sora'"),
    ({"size": "1792x1024"}, "plan.yaml: scene 'opening': size: 1792x1024 is not available for sora-2 on sora"),
    ({"seconds": -4}, "plan.yaml: scene 'opening': seconds: Input should be greater than 0"),
    ({"extensions": [{"prompt": "x", "seconds": 4}] * 7},
     "plan.yaml: scene 'opening': extensions: 7 extensions in the chain; at most 6 on sora"),
    ({"seconds": 20, "extensions": [{"prompt": "x", "seconds": 20}] * 6},
     "plan.yaml: scene 'opening': extensions: the stitched video would be 140 s; at most 120 s on sora"),
    ({"seconds": 20, "extensions": [{"prompt": "x", "seconds": 24}] * 4},  # 24 = 20 + 4: two extensions each
     "plan.yaml: scene 'opening': extensions: 8 extensions in the chain; at most 6 on sora"),
    ({"image": "/nowhere/harbor.jpg"}, "plan.yaml: scene 'opening': image: /nowhere/harbor.jpg does not exist"),
    ({"pad_color": "mauvish"}, "plan.yaml: scene 'opening': pad_color: 'mauvish' is not a colour"),
    ({"id": "../escape"}, "plan.yaml: scene '../escape': id: not a safe folder name"),
    # A trailing newline passed the safe-name check (`$` matches before it) and went into folder names.
    ({"id": "opening\n"}, "plan.yaml: scene 'opening\\n': id: not a safe folder name"),
    ({"seconds": True}, "plan.yaml: scene 'opening': seconds: Input should be a valid integer"),  # it became 1
    ({"extensions": [{"prompt": "x", "seconds": False}]},
     "plan.yaml: scene 'opening': extensions.0.seconds: Input should be a valid integer"),
])
def test_each_problem_is_reported_with_scene_and_field(fields: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(scene(**fields))), problems(scene(**fields))


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"name": "p", "scenes": [
        {"id": "a", "prompt": "x", "size": "2x2"}, {"id": "a", "prompt": "y", "size": "1x1"}]})
    assert len(found) == 3
    assert "plan.yaml: scene 'a': id: duplicate scene id" in found


def test_a_plan_name_that_escapes_the_output_folder_is_refused() -> None:
    assert problems({"name": "../../etc", "scenes": [{"id": "a", "prompt": "x"}]}) == [
        "plan.yaml: name: '../../etc' is not a safe folder name (letters, digits, . _ -; at most 64, starting with a "
        "letter or digit)"]


def test_strict_spec_profile_refuses_guide_only_sizes() -> None:
    assert any("size: 1920x1080" in p for p in problems(scene(model="sora-2-pro", size="1920x1080"),
                                                        profile="sora-spec"))
    validate_plan(parse_plan(scene(model="sora-2-pro", size="1920x1080")), SORA)


@pytest.mark.parametrize(("data", "expected"), [
    ({"name": "p", "scenes": [{"id": "a", "prompt": "x", "sedonds": 4}]},
     "plan.yaml: scene 'a': sedonds: unknown field"),
    ({"name": "p", "scenes": [{"id": "a"}]}, "plan.yaml: scene 'a': prompt: required field is missing"),
    ({"name": "p", "scenes": []}, "plan.yaml: scenes: List should have at least 1 item after validation, not 0"),
    ({"name": "p", "scenes": [{"id": "a", "prompt": "x", "crop": {"left": 0.8, "right": 0.2}}]},
     "plan.yaml: scene 'a': crop: crop needs left < right and top < bottom"),
    ({"scenes": [{"id": "a", "prompt": "x"}]}, "plan.yaml: name: required field is missing"),
])
def test_structural_mistakes_are_one_line_each(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(PlanError) as raised:
        parse_plan(data, source="plan.yaml")
    assert raised.value.problems == [expected]


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("name: p\nscenes:\n  - id: a\n    prompt: [unclosed\n")
    with pytest.raises(PlanError, match=r"plan.yaml: not valid YAML/JSON \(line 5"):
        load_plan(str(path))


def test_images_are_found_next_to_the_plan_file(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(encoded(photo((64, 64)), "PNG"))
    (tmp_path / "plan.yaml").write_text("name: p\nscenes:\n  - {id: a, prompt: x, image: images/a.png}\n")
    plan = load_plan(str(tmp_path / "plan.yaml"))
    assert plan.scenes[0].image == f"{tmp_path}/images/a.png"
    validate_plan(plan, SORA)


def test_defaults_fill_in_what_scenes_leave_out() -> None:
    plan = parse_plan({"name": "p", "defaults": {"size": "1280x720", "fit": "pad"},
                       "scenes": [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y", "size": "720x1280"}]})
    a, b = validate_plan(plan, SORA)
    assert (a.model, a.size, a.total_seconds, a.fit) == ("sora-2", "1280x720", 4, "pad")
    assert b.size == "720x1280"


def test_takes_are_scenes_of_their_own_with_the_next_seeds() -> None:
    plan = {"name": "p", "defaults": {"model": "veo-3.1-generate-001"},
            "scenes": [{"id": "dawn", "prompt": "a harbour", "takes": 3, "seed": 4_294_967_294}]}
    takes = validate_plan(parse_plan(plan), load_profile("google-vertex"))
    assert [(t.id, t.shot_id, t.take, t.seed) for t in takes] == [
        ("dawn", "dawn", 1, 4_294_967_294), ("dawn.take2", "dawn", 2, 4_294_967_295), ("dawn.take3", "dawn", 3, 0)]


def test_a_take_may_not_have_the_id_of_another_scene() -> None:
    plan = {"name": "p", "scenes": [{"id": "dawn.take2", "prompt": "x"}, {"id": "dawn", "prompt": "y", "takes": 2}]}
    assert problems(plan) == ["plan.yaml: scene 'dawn': takes: its take 'dawn.take2' has the id of another scene"]


def test_takes_are_at_least_one_and_at_most_eight() -> None:
    assert problems(scene(takes=9)) == ["plan.yaml: scene 'opening': takes: Input should be less than or equal to 8"]

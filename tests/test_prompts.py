"""Prompt craft: structured fields and a plan-wide style compose into one deterministic prompt per request."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelflow import PlanError, load_plan, load_profile, parse_plan, plan_warnings, validate_plan
from reelflow.prompts import PromptFields, StyleBlock, compose

SNAPSHOT = Path(__file__).parent / "snapshots" / "crafted.prompts.txt"
CRAFTED = Path(__file__).parent.parent / "deployments" / "plans" / "crafted.yaml"


def composed_prompts(plan_file: Path) -> str:
    sections = []
    for scene in validate_plan(load_plan(str(plan_file)), load_profile("sandbox")):
        sections.append(f"== {scene.id}\n{scene.prompt}\n")
        sections += [f"== {scene.id} extension {i}\n{e.prompt}\n" for i, e in enumerate(scene.segments[1:], 1)]
    return "\n".join(sections)


def test_the_example_plan_composes_exactly_the_snapshot() -> None:
    assert composed_prompts(CRAFTED) == SNAPSHOT.read_text()


def test_composition_is_deterministic_and_follows_the_documented_order() -> None:
    fields = PromptFields(negatives="blur", subject="a fox", use_case="ad", timing="at 2 s", camera="close-up")
    once = compose(fields)
    assert once == "Use case: ad\nSubject: a fox\nCamera: close-up\nTiming/beats: at 2 s\nAvoid: blur"
    assert compose(PromptFields(**fields.model_dump())) == once


def test_a_scene_inherits_the_plan_style_field_by_field_and_overrides_it() -> None:
    style = StyleBlock(style="watercolour", palette="pastel", negatives="text")
    assert compose(PromptFields(subject="a fox", palette="rust and moss"), style) == (
        "Subject: a fox\nStyle/format: watercolour\nColor palette: rust and moss\nAvoid: text")


def test_free_text_comes_first_as_written_and_is_never_wrapped_twice() -> None:
    style = StyleBlock(style="watercolour", negatives="text")
    once = compose("  A fox runs through snow.  ", style)
    assert once == "A fox runs through snow.\nStyle/format: watercolour\nAvoid: text"
    assert compose(once, style) == once  # composing a composed prompt changes nothing
    # A label the text already states is the text's: the plan's value is not added beside it.
    assert compose("A fox.\nStyle/format: pencil sketch", style) == "A fox.\nStyle/format: pencil sketch\nAvoid: text"
    assert compose("A fox.") == "A fox."


def test_extensions_keep_the_scene_and_change_only_the_beat() -> None:
    plan = parse_plan({"name": "beats", "scenes": [{
        "id": "fox", "seconds": 4,
        "prompt": {"subject": "a fox", "scene": "a snowy field", "action": "sniffs the air", "camera": "wide",
                   "timing": "at 1 s"},
        "extensions": [{"prompt": "starts to run", "seconds": 4},
                       {"prompt": {"action": "leaps", "camera": "tracking"}, "seconds": 4}]}]})
    (scene,) = validate_plan(plan, load_profile("sandbox"))
    first, second = (e.prompt for e in scene.segments[1:])
    assert first == "Scene/background: a snowy field\nSubject: a fox\nAction: starts to run"
    assert second == "Scene/background: a snowy field\nSubject: a fox\nAction: leaps\nCamera: tracking"
    assert plan_warnings(plan) == []


def test_an_extension_that_changes_subject_or_style_is_warned_about() -> None:
    plan = parse_plan({"name": "drift", "scenes": [{
        "id": "fox", "prompt": {"subject": "a fox", "style": "watercolour"},
        "extensions": [{"prompt": {"subject": "a wolf", "style": "anime"}, "seconds": 4},
                       {"prompt": {"subject": "a fox", "action": "sleeps"}, "seconds": 4}]}]})
    assert plan_warnings(plan, source="drift.yaml") == [
        "drift.yaml: scene 'fox': extensions[0].prompt: changes subject and style; a continuation holds together "
        "best when it changes only action, camera and timing"]


def test_empty_or_unknown_prompt_fields_are_plan_errors() -> None:
    with pytest.raises(PlanError) as empty:
        parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": {}}]}, source="p.yaml")
    assert "p.yaml: scene 'a': prompt" in str(empty.value) and "at least one prompt field" in str(empty.value)
    with pytest.raises(PlanError) as unknown:
        parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": {"mood": "sad"}}]}, source="p.yaml")
    assert "p.yaml: scene 'a': prompt" in str(unknown.value) and "mood" in str(unknown.value)

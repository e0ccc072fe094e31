"""Every kind of bad input: one clear line naming the file or scene and field, and no paid call for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from flows.render_plan import RenderFailed, render_plan
from reelflow import AuthenticationError, PlanError, ProviderUnreachableError, load_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.images import awkward_references, encoded, photo
from tests.pipeline.conftest import point_at

GOOD = {"id": "good", "prompt": "a scene that is fine"}


@dataclass
class Case:
    """`write` puts files in a folder and returns the plan file's text; `outcome` is what the user sees."""

    write: Callable[[Path], str]
    outcome: str  # "plan": refused before any call; "scene": that scene fails; "ok": renders (with a warning)
    message: str
    creates: int = 0  # creates the sandbox sees for the bad scene


def plan_with(bad_scene: str, *extra_scenes: str, header: str = "name: bad\n") -> str:
    return header + "scenes:\n" + "".join(f"  - {s}\n" for s in (bad_scene, *extra_scenes))


def image_case(name: str, data: bytes, outcome: str, message: str, creates: int = 0) -> Case:
    def write(folder: Path) -> str:
        (folder / name).write_bytes(data)
        return plan_with(f"{{id: victim, prompt: p, image: {name}, size: 1280x720}}",
                         "{id: good, prompt: fine, size: 1280x720}")
    return Case(write, outcome, message, creates)


def plan_text(text: str) -> Callable[[Path], str]:
    return lambda folder: text


def folder_as_image(folder: Path) -> str:
    (folder / "folder.jpg").mkdir()
    return plan_with("{id: a, prompt: p, image: folder.jpg}")


CASES: dict[str, Case] = {
    "malformed yaml": Case(plan_text("name: bad\nscenes: [\n  {id: a"), "plan", "plan.yaml: not valid YAML/JSON (line"),
    "malformed json": Case(plan_text('{"name": "bad", "scenes": [}'), "plan", "plan.yaml: not valid YAML/JSON (line 1"),
    "unknown field": Case(plan_text(plan_with("{id: a, prompt: p, duration: 4}")), "plan",
                          "plan.yaml: scene 'a': duration: unknown field"),
    "missing image": Case(plan_text(plan_with("{id: a, prompt: p, image: nowhere.jpg}")), "plan",
                          "scene 'a': image: ", ),
    "unreadable image": Case(folder_as_image, "plan", "folder.jpg is not a file"),
    "non-image file": image_case("notes.jpg", b"%PDF-1.7 quarterly report", "plan",
                                 "not an image file Pillow can read"),
    "truncated image": image_case("cut.jpg", encoded(photo((1600, 900)), "JPEG")[:2000], "scene",
                                  "scene 'victim': image", 0),
    "decompression bomb": image_case("bomb.png", encoded(photo((3000, 3000)), "PNG"), "plan", "decompression bomb"),
    "animated image": image_case("anim.gif", awkward_references()["animated.gif"], "ok", "using the first frame", 1),
    "cmyk image": image_case("cmyk.jpg", awkward_references()["cmyk.jpg"], "ok", "", 1),
    "16-bit image": image_case("deep.png", awkward_references()["sixteen-bit.png"], "ok", "", 1),
    "palette image": image_case("pal.png", awkward_references()["palette.png"], "ok", "", 1),
    "transparent image": image_case("alpha.png", awkward_references()["transparent.png"], "ok", "", 1),
    "exif-rotated photo": image_case("phone.jpg", awkward_references()["exif-rotated.jpg"], "ok", "", 1),
    "tiny image": image_case("tiny.png", awkward_references()["tiny.png"], "ok", "upscaled", 1),
    "invalid size": Case(plan_text(plan_with("{id: a, prompt: p, size: 1000x1000}")), "plan",
                         "scene 'a': size: 1000x1000 is not available"),
    "invalid model": Case(plan_text(plan_with("{id: a, prompt: p, model: sora-1}")), "plan",
                          "scene 'a': model: 'sora-1' is not offered"),
    "zero seconds": Case(plan_text(plan_with("{id: a, prompt: p, seconds: 0}")), "plan",
                         "scene 'a': seconds: Input should be greater than 0"),
    "over 120 s": Case(plan_text(plan_with("{id: a, prompt: p, seconds: 20, extensions: [" +
                                           ", ".join(["{prompt: x, seconds: 20}"] * 6) + "]}")), "plan",
                       "scene 'a': extensions: the stitched video would be 140 s; at most 120 s on sandbox"),
    "over 6 extensions": Case(plan_text(plan_with("{id: a, prompt: p, extensions: [" +
                                                  ", ".join(["{prompt: x, seconds: 4}"] * 7) + "]}")), "plan",
                              "scene 'a': extensions: 7 extensions in the chain; at most 6 on sandbox"),
    "duplicate ids": Case(plan_text(plan_with("{id: a, prompt: p}", "{id: a, prompt: q}")), "plan",
                          "scene 'a': id: duplicate scene id"),
    "escaping scene id": Case(plan_text(plan_with("{id: ../../etc, prompt: p}")), "plan",
                              "scene '../../etc': id: not a safe folder name"),
    "escaping plan name": Case(plan_text(plan_with("{id: a, prompt: p}", header="name: /tmp/x\n")), "plan",
                               "name: '/tmp/x' is not a safe folder name"),
    "moderation block": Case(plan_text(plan_with("{id: victim, prompt: '[blocked] a crime'}",
                                                 "{id: good, prompt: fine}")), "scene", "moderation_blocked", 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, provider: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000_000)  # the bomb case; real photos stay below
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(case.write(tmp_path))
    before = provider.stats()["jobs"]
    if case.outcome == "plan":
        with pytest.raises(PlanError) as refused:
            render_plan(load_plan(str(plan_file)), output="memory://out")
        assert len(str(refused.value).splitlines()) == 1 and case.message in str(refused.value)
        assert provider.stats()["jobs"] == before
        return
    plan = load_plan(str(plan_file))
    if case.outcome == "scene":
        with pytest.raises(RenderFailed) as failed:
            render_plan(plan, output="memory://out")
        scenes = {s.id: s for s in failed.value.result.scenes}
        assert case.message in (scenes["victim"].error or "") and "\n" not in (scenes["victim"].error or "")
    else:
        scenes = {s.id: s for s in render_plan(plan, output="memory://out").scenes}
        assert scenes["victim"].status == "completed"
        assert case.message in " ".join(scenes["victim"].warnings)
    assert scenes["good"].status == "completed"
    assert len(scenes["victim"].job_ids) == case.creates
    assert provider.stats()["jobs"] - before == 1 + case.creates


def test_an_unreachable_api_stops_the_run_at_once_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                prefect_harness: None) -> None:
    with run_sandbox() as gone:
        address = gone.base_url
    point_at(monkeypatch, address, "sk-x", task_retries="3")
    with pytest.raises(ProviderUnreachableError) as stopped:
        render_plan(load_plan_text(*(f"{{id: s{i}, prompt: p{i}}}" for i in range(6))), output="memory://out")
    assert f"could not connect to {address}/ (" in str(stopped.value) and "\n" not in str(stopped.value)


def test_a_rejected_key_stops_the_run_at_once(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    with run_sandbox(api_keys=frozenset({"sk-the-right-one"})) as guarded:
        point_at(monkeypatch, guarded.base_url, "sk-a-wrong-one")
        plan = load_plan_text(*(f"{{id: s{i}, prompt: p{i}}}" for i in range(6)))
        with pytest.raises(AuthenticationError, match="rejected the API key"):
            render_plan(plan, output="memory://out")
        stats = guarded.stats()
    assert stats["jobs"] == 0
    assert stats["requests"]["POST /v1/videos"] <= 4  # no retries: only the scenes already in flight asked


def load_plan_text(*scenes: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.yaml"
        path.write_text(plan_with(*scenes))
        return load_plan(str(path))

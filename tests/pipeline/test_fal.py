"""Plans rendered on fal's queue, each model's inputs written by its map in the profile, against the sandbox
posing as fal: the demo plan on Kling (duration as a string, an aspect ratio), first and last images on Seedance
and Veo (a resolution, a start and an end image), a model that only a user's profile file declares, a mistyped
map caught by `reelflow validate` where the profile has fal's schema and failed by fal's own 422 where it has
not, images uploaded to fal's storage or given as presigned URLs, and what a model cannot take refused first."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from PIL import Image

from flows.render_plan import RenderFailed, render_plan
from reelflow import PlanError, ProfileError, load_plan, load_profile, parse_plan, validate_plan
from reelflow.providers import check_capabilities, dialect
from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.media import probe_video, psnr, sound_of, video_frames
from tests.pipeline.conftest import FAST

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "deployments" / "plans"
KLING = "fal-ai/kling-video/v3/pro"
# A model fal hosts that reelflow ships no map for, added the way a user adds one: a map in their own file.
OWN_MODEL = """\
name: my-fal
extends: fal
default_model: acme-motion
models:
  acme-motion:
    seconds: [3, 6]
    aspect_ratios: ["16:9"]
    resolutions: [720p]
    price_per_second: {1280x720: 0.05}
    endpoints:
      - id: acme/motion-1
        inputs: {prompt: text, seconds: {field: length, text: "{}sec"}, audio: sound}
        fixed: {quality: high}
        video: output.clip.url
"""
# Kling's image-to-video with the image under the name other models use: fal's schema of it says otherwise.
MISTYPED = """\
  kling-typo:
    seconds: [5, 10]
    aspect_ratios: ["16:9"]
    resolutions: [720p]
    price_per_second: {1280x720: 0.168}
    endpoints:
      - id: fal-ai/kling-video/v3/pro/image-to-video
        requires: [image]
        inputs: {prompt: prompt, seconds: {field: duration, text: "{}"}, image: image_url}
"""


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[RunningSandbox]:
    """fal configured as a user configures it (FAL_KEY; the queue's URL pointed at the sandbox)."""
    with run_sandbox(profile="fal", job_seconds=0.2) as pose:
        for name, value in {"REELFLOW_PROVIDER": "fal", "FAL_KEY": "fal-key-id:secret", "FAL_QUEUE_URL": pose.base_url,
                            **FAST}.items():
            monkeypatch.setenv(name, value)
        yield pose


def endpoints_of(job_ids: list[str]) -> list[str]:
    return [job_id.rpartition("/requests/")[0] for job_id in job_ids]


def colour_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> str:
    Image.new("RGB", size, colour).save(path)
    return str(path)


def test_the_demo_plan_renders_on_kling_with_images_uploaded_to_fals_storage(fal: RunningSandbox,
                                                                               tmp_path: Path) -> None:
    result = render_plan(load_plan(str(PLANS / "demo.yaml")), output=f"file://{tmp_path}")
    stats = fal.stats()
    scenes = {scene.id: scene for scene in result.scenes}
    assert {scene.status for scene in result.scenes} == {"completed"}
    assert endpoints_of(scenes["opening"].job_ids) == [f"{KLING}/image-to-video"] * 2  # then from its last frame
    assert endpoints_of(scenes["tree"].job_ids) == [f"{KLING}/image-to-video"]
    assert endpoints_of(scenes["closing"].job_ids) == [f"{KLING}/text-to-video"]
    for scene, seconds in (("opening", 12), ("tree", 4), ("closing", 4)):
        data = (tmp_path / "demo" / scene / "video.mp4").read_bytes()
        assert (probe_video(data).size, round(probe_video(data).seconds)) == ((1280, 720), seconds)
        assert sound_of(data) is not None
    assert stats["requests"]["POST /files/upload"] == 3  # a local output signs no URLs: two images, a last frame
    assert stats["images_fetched"] == {"http": 3}
    assert stats["jobs_by_kind"] == {"create": 4}


@pytest.mark.parametrize(("model", "endpoint"), [
    ("seedance-2.0", "bytedance/seedance-2.0/image-to-video"),  # image_url + end_image_url, resolution
    ("veo-3.1", "fal-ai/veo3.1/first-last-frame-to-video"),  # first_frame_url + last_frame_url, "8s"
])
def test_a_scene_starts_on_its_image_and_lands_on_its_last_image(model: str, endpoint: str, fal: RunningSandbox,
                                                                  s3_output: str, tmp_path: Path) -> None:
    plan = parse_plan({"name": "frames", "defaults": {"size": "1280x720", "model": model}, "scenes": [
        {"id": "day", "prompt": "a day passes", "seconds": 8, "image": colour_image(tmp_path / "a.png", (20, 60, 200)),
         "last_image": colour_image(tmp_path / "b.png", (230, 120, 20), (900, 900))}]})
    result = render_plan(plan, output=s3_output)
    (scene,) = result.scenes
    assert scene.status == "completed" and endpoints_of(scene.job_ids) == [endpoint]
    with fsspec.open(scene.files["video.mp4"].url) as video:
        frames = video_frames(video.read())
    assert frames[0].getpixel((640, 100)) == pytest.approx((20, 60, 200), abs=6)
    assert frames[-1].getpixel((640, 100)) == pytest.approx((230, 120, 20), abs=6)
    assert psnr(frames[0], Image.new("RGB", (1280, 720), (20, 60, 200))) > 35
    assert "POST /files/upload" not in fal.stats()["requests"]  # presigned URLs of the copies on S3


def test_a_model_added_only_in_the_users_profile_file_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              prefect_harness: None) -> None:
    """No key: the embedded sandbox poses as the user's profile, its map and all."""
    own = tmp_path / "providers.yaml"
    own.write_text(OWN_MODEL)
    for name, value in {"REELFLOW_PROVIDER": "my-fal", "REELFLOW_PROVIDERS_FILE": str(own), **FAST}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FAL_KEY", raising=False)
    plan = parse_plan({"name": "own", "scenes": [{"id": "zoom", "prompt": "a slow zoom", "seconds": 6},
                                                 {"id": "quiet", "prompt": "still water", "seconds": 3,
                                                  "audio": False}]})
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [s.status for s in result.scenes] == ["completed", "completed"]
    assert endpoints_of(result.scenes[0].job_ids) == ["acme/motion-1"]
    zoom, quiet = ((tmp_path / "out" / "own" / s / "video.mp4").read_bytes() for s in ("zoom", "quiet"))
    assert round(probe_video(zoom).seconds) == 6 and sound_of(zoom) is not None
    assert round(probe_video(quiet).seconds) == 3 and sound_of(quiet) is None  # `sound: false` reached it


def test_a_mistyped_map_is_caught_by_validate_before_any_call(tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-fal\nextends: fal\ndefault_model: kling-typo\nmodels:\n" + MISTYPED)
    env = {**os.environ, "REELFLOW_PROVIDER": "my-fal", "REELFLOW_PROVIDERS_FILE": str(own)}
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "validate", str(PLANS / "demo.yaml")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    where = f"error: {own}: profile 'my-fal': models.kling-typo.endpoints[0]: "
    assert done.stderr.splitlines() == [
        f"{where}inputs.image: {KLING}/image-to-video has no input 'image_url' (it has start_image_url, "
        "end_image_url, prompt, multi_prompt, elements, duration, generate_audio, negative_prompt, cfg_scale, "
        "shot_type)",
        f"{where}{KLING}/image-to-video requires 'start_image_url': map a quantity that every job here has to it, "
        "or list the quantity under requires"]


def test_a_mistyped_map_the_profile_cannot_check_fails_the_scene_with_fals_own_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    """A profile of the user's own, without fal's schemas: fal (here, the sandbox) refuses the inputs."""
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-queue\napi: fal-queue\ncredentials: {api_key: FAL_KEY}\nbase_url: https://queue.fal.run\n"
                   "default_model: kling-typo\ndefault_size: 1280x720\ndefault_seconds: 5\nreference_formats: [PNG]\n"
                   "list_jobs: false\nmodels:\n" + MISTYPED)
    for name, value in {"REELFLOW_PROVIDER": "my-queue", "REELFLOW_PROVIDERS_FILE": str(own), **FAST}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FAL_KEY", raising=False)
    plan = parse_plan({"name": "typo", "scenes": [
        {"id": "dawn", "prompt": "a harbour", "image": colour_image(tmp_path / "a.png", (20, 60, 200))}]})
    validate_plan(plan, load_profile("my-queue", own))  # nothing to check the map against
    with pytest.raises(RenderFailed) as failed:
        render_plan(plan, output=f"file://{tmp_path}/out")
    (scene,) = failed.value.result.scenes
    assert scene.status == "failed" and len(scene.job_ids) == 1  # refused inputs are not retried
    assert f"scene 'dawn' failed: {scene.job_ids[0]} failed: missing: start_image_url: Field required; image_url: " \
           "Extra inputs are not permitted" in str(failed.value)


def test_the_dry_run_shows_each_models_own_inputs(tmp_path: Path) -> None:
    env = {**os.environ, "REELFLOW_PROVIDER": "fal"}
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(PLANS / "demo.yaml")],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Dry run on fal (fal-queue): nothing is sent." in out
    assert "Reference images go as URLs of uploads to the provider's storage" in out
    assert out.count(f"  1. POST /{KLING}/image-to-video\n") == 2 and f"  1. POST /{KLING}/text-to-video\n" in out
    assert '       duration: "8"\n       start_image_url: "reference.jpg (image/jpeg, 1280x720, ' in out
    assert '       aspect_ratio: "16:9"' in out


@pytest.mark.parametrize(("scene", "expected"), [
    ({"model": "seedance-2.0", "seed": 7}, "seed: seedance-2.0 on fal takes no seed"),
    ({"model": "wan-2.7", "audio": True}, "audio: wan-2.7 on fal makes silent video"),
    ({"model": "kling-v3-pro", "last_image": "LAST"},
     "image: kling-v3-pro makes no clip without an image with last_image (its endpoints: "
     "fal-ai/kling-video/v3/pro/text-to-video, fal-ai/kling-video/v3/pro/image-to-video)"),
    ({"model": "veo-3.1", "seconds": 6, "size": "3840x2160"}, None),  # 4K, sent as fal's "4k"
])
def test_what_a_model_cannot_take_is_refused_before_any_call(scene: dict[str, Any], expected: str | None,
                                                              tmp_path: Path) -> None:
    if scene.get("last_image") == "LAST":
        scene["last_image"] = colour_image(tmp_path / "last.png", (1, 2, 3))
    plan = parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x", "seconds": 8, **scene}]})
    if expected is None:
        validate_plan(plan, load_profile("fal"))
        return
    with pytest.raises(PlanError) as refused:
        validate_plan(plan, load_profile("fal"))
    assert refused.value.problems == [f"plan: scene 'a': {expected}"]


def test_the_readmes_own_model_example_is_a_valid_map(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\nname: my-fal\n", 1)[1].split("```", 1)[0]
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-fal\n" + example)
    limits = load_profile("my-fal", own).models["minimax-hailuo"]
    assert limits.sizes == ["1366x768"]
    assert limits.endpoint_for({"prompt", "seconds", "image"}) == limits.endpoints[1]


def test_input_maps_belong_to_the_dialect_that_writes_inputs_by_them(tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("profiles:\n"
                   "  - {name: bare-fal, extends: fal, default_model: plain, models: {plain: {seconds: [5], sizes: "
                   "[1280x720]}}}\n"
                   "  - {name: mapped-router, extends: openrouter, default_model: plain, models: {plain: {seconds: "
                   "[5], sizes: [1280x720], endpoints: [{id: a/b, inputs: {prompt: text}}]}}}\n")
    with pytest.raises(ProfileError) as bare:
        check_capabilities(load_profile("bare-fal", own), dialect("fal-queue"))
    assert str(bare.value) == ("profile 'bare-fal': models plain have no endpoints: its dialect 'fal-queue' sends "
                               "each model's inputs as its map (`endpoints:`) writes them")
    with pytest.raises(ProfileError, match=r"cannot do input maps \(models plain have endpoints\)"):
        check_capabilities(load_profile("mapped-router", own), dialect("openrouter-videos"))


@pytest.mark.parametrize(("model", "problem"), [
    ("  kling-int:\n    seconds: [5]\n    aspect_ratios: ['16:9']\n    resolutions: [720p]\n    endpoints:\n"
     "      - {id: fal-ai/kling-video/v3/pro/text-to-video, inputs: {prompt: prompt, seconds: duration}}\n",
     "models.kling-int.endpoints[0]: inputs.seconds: duration is string on fal-ai/kling-video/v3/pro/text-to-video, "
     "sent as integer"),
    ("  veo-five:\n    seconds: [4, 5]\n    aspect_ratios: ['16:9']\n    resolutions: [4K]\n    endpoints:\n"
     "      - id: fal-ai/veo3.1\n        inputs: {prompt: prompt, seconds: {field: duration, text: '{}s'}, "
     "resolution: resolution}\n",
     "models.veo-five.endpoints[0]: inputs.seconds: duration on fal-ai/veo3.1 takes ['4s', '6s', '8s'], not ['5s']"),
    ("  veo-tier:\n    seconds: [4]\n    aspect_ratios: ['16:9']\n    resolutions: [4K]\n    endpoints:\n"
     "      - {id: fal-ai/veo3.1, inputs: {prompt: prompt, resolution: resolution}, fixed: {quality: max}}\n",
     "models.veo-tier.endpoints[0]: inputs.resolution: resolution on fal-ai/veo3.1 takes ['720p', '1080p', '4k'], "
     "not ['4K']"),
])
def test_a_map_that_does_not_fit_fals_schema_is_refused_when_the_profile_is_read(model: str, problem: str,
                                                                                tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-fal\nextends: fal\ndefault_model: x\nmodels:\n" + model)
    with pytest.raises(ProfileError) as refused:
        load_profile("my-fal", own)
    assert f"{own}: profile 'my-fal': {problem}" in str(refused.value).splitlines()

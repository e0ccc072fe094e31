"""Plans rendered on OpenRouter's dialect, against the sandbox posing as OpenRouter, through OpenRouter's own SDK:
the demo plan from the command line, a reference image on S3 fetched by the provider from a presigned URL, a
first and last frame, and the same plans rendering the same files and ledgers in OpenAI's dialect."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest
from openrouter import OpenRouter, errors
from PIL import Image

from flows.render_plan import RenderFailed, render_plan
from reelflow import PlanError, Settings, UserError, load_plan, load_profile, parse_plan, validate_plan
from reelflow.providers import Capabilities, ClipJob, image_delivery, register_dialect
from reelflow.providers.openrouter_videos import OpenRouterVideos
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tests.conftest import free_port, image_bytes, wait_until
from tests.media import probe_video, psnr, video_frames
from tests.pipeline.conftest import FAST

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "deployments" / "plans"
CHAIN = {"name": "chain", "defaults": {"size": "1280x720"}, "scenes": [
    {"id": "long", "prompt": "a ferry crosses the bay", "seconds": 8,
     "extensions": [{"prompt": "it passes the island", "seconds": 8}, {"prompt": "it docks", "seconds": 4}]}]}
# OpenRouter's limits spoken in OpenAI's dialect: what the pipeline does must not depend on the dialect.
TWIN = """\
name: openrouter-twin
extends: openrouter
api: openai-videos
credentials: {api_key: OPENAI_API_KEY, base_url: OPENAI_BASE_URL}
last_frame: false
audio_switch: false
subjects: null
"""


def use_openrouter(monkeypatch: pytest.MonkeyPatch, pose: RunningSandbox, **settings: str) -> None:
    """Configured as a user configures OpenRouter, pointed at the sandbox."""
    for name, value in {"REELFLOW_PROVIDER": "openrouter", "REELFLOW_BASE_URL": pose.base_url,
                        "OPENROUTER_API_KEY": "sk-or-v1-test", **FAST,
                        **{f"REELFLOW_{k.upper()}": v for k, v in settings.items()}}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def openrouter(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[RunningSandbox]:
    with run_sandbox(profile="openrouter", job_seconds=0.2) as pose:
        use_openrouter(monkeypatch, pose)
        yield pose


def only_openrouter_routes(stats: dict[str, Any]) -> None:
    routes = set(stats["requests"]) - {"GET /_sandbox/stats"}
    assert routes and all(r.startswith(("POST /api/v1/", "GET /api/v1/", "GET /_storage/")) for r in routes), routes


def test_the_demo_plan_from_the_command_line(tmp_path: Path, local_prefect_server: str) -> None:
    """`REELFLOW_PROVIDER=openrouter REELFLOW_BASE_URL=... REELFLOW_API_KEY=... reelflow run demo.yaml` against
    `reelflow sandbox --profile openrouter --port PORT`."""
    port = free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "sandbox", "--profile", "openrouter",
                                "--port", str(port), "--job-seconds", "0.3"], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(f"{base}/_sandbox/stats"), seconds=60), "the sandbox never listened"
        env = {**os.environ, "REELFLOW_PROVIDER": "openrouter", "REELFLOW_BASE_URL": f"{base}/api/v1",
               "REELFLOW_API_KEY": "sk-or-v1-demo", "REELFLOW_POLL_MIN_SECONDS": "0.1"}
        done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(PLANS / "demo.yaml"), "--output",
                               f"file://{tmp_path}"], env=env, capture_output=True, text=True, timeout=600)
        with urllib.request.urlopen(f"{base}/_sandbox/stats") as answer:
            stats = json.loads(answer.read())
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for scene, seconds in (("opening", 12), ("tree", 4), ("closing", 4)):
        info = probe_video((tmp_path / "demo" / scene / "video.mp4").read_bytes())
        assert (info.size, round(info.seconds)) == ((1280, 720), seconds)
    assert probe_video((tmp_path / "demo" / "reel.mp4").read_bytes()).seconds == pytest.approx(20, abs=0.5)
    only_openrouter_routes(stats)
    assert stats["jobs_by_kind"] == {"create": 3, "extension": 1}  # the opening's 4 s beat extends Veo's video
    assert stats["images_fetched"] == {"data": 2}  # a local output signs no URLs: images go inline


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.read())
    except OSError:
        return False


def test_a_reference_on_s3_is_fetched_by_the_provider_from_a_presigned_url(
        openrouter: RunningSandbox, s3_output: str, tmp_path: Path) -> None:
    picture = Image.linear_gradient("L").resize((1280, 720)).convert("RGB")
    picture.save(tmp_path / "harbour.jpg", quality=95)
    plan = parse_plan({"name": "presigned", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "opening", "prompt": "a harbour", "image": str(tmp_path / "harbour.jpg")}]})
    result = render_plan(plan, output=s3_output)
    stats = openrouter.stats()
    assert result.scenes[0].status == "completed"
    assert stats["images_fetched"] == {"http": 1}  # the presigned URL, from the moto server on loopback
    only_openrouter_routes(stats)
    with fsspec.open(result.scenes[0].files["video.mp4"].url) as video:
        first = video_frames(video.read())[0]
    assert psnr(first, picture) > 35


def test_a_scene_starts_on_its_image_and_lands_on_its_last_image(openrouter: RunningSandbox, tmp_path: Path) -> None:
    Image.new("RGB", (1280, 720), (20, 60, 200)).save(tmp_path / "dawn.png")
    Image.new("RGB", (900, 900), (230, 120, 20)).save(tmp_path / "dusk.png")  # not the frame's size: fitted
    plan = parse_plan({"name": "frames", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "day", "prompt": "a day passes", "seconds": 8, "image": str(tmp_path / "dawn.png"),
         "last_image": str(tmp_path / "dusk.png"), "extensions": [{"prompt": "night falls", "seconds": 4}]}]})
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    frames = video_frames((tmp_path / "out" / "frames" / "day" / "video.mp4").read_bytes())
    assert result.scenes[0].status == "completed" and len(result.scenes[0].job_ids) == 2
    assert frames[0].getpixel((640, 100)) == pytest.approx((20, 60, 200), abs=6)
    assert frames[-1].getpixel((640, 100)) == pytest.approx((230, 120, 20), abs=6)  # the last clip lands on it
    assert (tmp_path / "out" / "frames" / "day" / "last-frame.jpg").exists()


def test_a_last_image_is_refused_before_any_call_where_the_dialect_cannot_take_one(tmp_path: Path) -> None:
    (tmp_path / "dusk.png").write_bytes(image_bytes((1280, 720)))
    plan = parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x", "last_image": str(tmp_path / "dusk.png")}]})
    with pytest.raises(PlanError) as refused:
        validate_plan(plan, load_profile("sandbox"))
    assert refused.value.problems == ["plan: scene 'a': last_image: provider 'sandbox' cannot land a clip on a given "
                                      "last frame"]


def files_and_ledger(root: Path) -> tuple[dict[str, set[str]], dict[str, list[tuple[int, str]]]]:
    scenes = [p for p in root.iterdir() if p.is_dir() and p.name != "ledger"]
    files = {s.name: {str(f.relative_to(s)) for f in s.rglob("*") if f.is_file()} for s in scenes}
    ledger = {p.stem: [(j["step"], j["status"]) for j in json.loads(p.read_text())["jobs"]]
              for p in (root / "ledger").glob("*.json") if p.stem in files}
    return files, ledger


@pytest.mark.parametrize("plan", ["demo", "crafted", "chain"])
def test_a_plan_renders_the_same_in_either_dialect(plan: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   prefect_harness: None) -> None:
    loaded = load_plan(str(PLANS / f"{plan}.yaml")) if plan != "chain" else parse_plan(CHAIN)
    profiles = tmp_path / "providers.yaml"
    profiles.write_text(TWIN)
    with run_sandbox(profile="openrouter", job_seconds=0.2) as pose:
        use_openrouter(monkeypatch, pose)
        render_plan(loaded, output=f"file://{tmp_path}/openrouter")
        stats = pose.stats()
    only_openrouter_routes(stats)
    for name in ("REELFLOW_BASE_URL", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name)
    with run_sandbox(profile="openrouter-twin", providers_file=profiles, job_seconds=0.2) as twin:
        monkeypatch.setenv("REELFLOW_PROVIDERS_FILE", str(profiles))
        monkeypatch.setenv("REELFLOW_PROVIDER", "openrouter-twin")
        monkeypatch.setenv("OPENAI_API_KEY", twin.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", twin.base_url)
        render_plan(loaded, output=f"file://{tmp_path}/openai")
        assert all(r.startswith(("POST /v1/", "GET /v1/")) for r in twin.stats()["requests"])
    ours, theirs = (files_and_ledger(tmp_path / dialect / loaded.name) for dialect in ("openrouter", "openai"))
    assert ours == theirs
    for scene in ours[0]:
        videos = [probe_video((tmp_path / d / loaded.name / scene / "video.mp4").read_bytes())
                  for d in ("openrouter", "openai")]
        assert videos[0] == videos[1]


def test_the_dry_run_shows_openrouters_own_request_bodies(tmp_path: Path) -> None:
    env = {**os.environ, "REELFLOW_PROVIDER": "openrouter", "PYTHONPATH": str(REPO)}  # this tree's code, from tmp_path
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(PLANS / "demo.yaml")],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Dry run on openrouter (openrouter-videos): nothing is sent." in out
    assert "Reference images go as data URLs in the request body" in out
    assert out.count("  1. POST /api/v1/videos\n") == 3 and out.count("  2. POST /api/v1/videos\n") == 1
    assert '       model: "google/veo-3.1-fast"\n       duration: 8\n       aspect_ratio: "16:9"\n' \
           '       resolution: "720p"\n       frame_images: [{"type": "image_url", "image_url": {"url": ' \
           '"reference.jpg (image/jpeg, 1280x720, ' in out
    assert '  2. POST /api/v1/videos\n       model: "google/veo-3.1-fast"\n       previous_job_id: "<the video of ' \
           'request 1>"\n       duration: 4\n' in out  # the opening's 4 s beat extends Veo's own video
    assert "POST /v1/" not in out


def test_the_dry_run_on_an_object_store_says_the_images_go_as_presigned_urls(s3_output: str, tmp_path: Path) -> None:
    env = {**os.environ, "REELFLOW_PROVIDER": "openrouter"}
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(PLANS / "demo.yaml"),
                           "--output", s3_output], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Reference images go as presigned URLs of their copies in the output" in done.stdout


class UrlOnly(OpenRouterVideos):
    """A dialect whose provider fetches images from URLs only (as fal's does)."""

    dialect = "url-only-videos"
    capabilities = Capabilities(images="url")


def test_a_provider_that_only_fetches_urls_is_refused_an_output_that_cannot_sign(tmp_path: Path,
                                                                                 s3_output: str) -> None:
    register_dialect("url-only-videos", UrlOnly, clobber=True)
    own = tmp_path / "providers.yaml"
    own.write_text("name: fetches\nextends: openrouter\napi: url-only-videos\nlast_frame: false\n")
    profile = load_profile("fetches", own)
    with pytest.raises(UserError) as refused:
        image_delivery(profile, Storage(f"file://{tmp_path}"))
    assert str(refused.value) == (f"provider 'fetches' fetches reference images from URLs only, and file://{tmp_path} "
                                  "cannot give presigned URLs: write the output to an object store (s3://, gs://)")
    assert image_delivery(profile, Storage(s3_output, Settings().storage_options)) == "presigned URL"
    assert image_delivery(load_profile("openrouter"), Storage(f"file://{tmp_path}")) == "data URL"


def test_sound_is_asked_for_as_each_dialect_can(tmp_path: Path) -> None:
    """`audio:` goes out as OpenRouter's `generate_audio`; a provider that cannot switch sound off, or a silent
    model asked for sound, is refused before any call."""
    own = tmp_path / "providers.yaml"
    own.write_text("name: quiet-router\nextends: openrouter\ndefault_model: runway/gen-4.5\nmodels:\n"
                   "  runway/gen-4.5:\n    audio: false\n    seconds: [5, 10]\n    sizes: [1280x720]\n"
                   "    price_per_second: {1280x720: 0.12}\n")
    plan = parse_plan({"name": "p", "defaults": {"size": "1280x720", "seconds": 5}, "scenes": [
        {"id": "quiet", "prompt": "x", "audio": False}, {"id": "loud", "prompt": "y", "audio": True}]})
    with pytest.raises(PlanError) as refused:
        validate_plan(plan, load_profile("quiet-router", own))
    assert refused.value.problems == ["plan: scene 'loud': audio: runway/gen-4.5 on quiet-router makes silent video"]
    with pytest.raises(PlanError) as on_sora:
        validate_plan(parse_plan({"name": "p", "scenes": [{"id": "quiet", "prompt": "x", "audio": False}]}),
                      load_profile("sora"))
    assert on_sora.value.problems == ["plan: scene 'quiet': audio: provider 'sora' cannot switch sora-2's sound off"]
    (scene,) = validate_plan(parse_plan({"name": "p", "scenes": [{"id": "quiet", "prompt": "x", "audio": False,
                                                                 "seconds": 4}]}), load_profile("openrouter"))
    job = ClipJob(prompt=scene.prompt, model=scene.model, size=scene.size, seconds=4, audio=scene.audio)
    assert OpenRouterVideos.describe(job, load_profile("openrouter")).fields["generate_audio"] is False


def job_requests(pose: RunningSandbox) -> list[dict[str, Any]]:
    """The fields of each create the pose took, in the order it took them."""
    return [job.request for job in sorted(pose.sandbox.state.jobs.values(), key=lambda job: job.seq)]


def test_an_extension_and_an_edit_continue_veos_own_video_through_previous_job_id(openrouter: RunningSandbox,
                                                                                  tmp_path: Path) -> None:
    plan = parse_plan({"name": "continued", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "ferry", "prompt": "a ferry crosses the bay", "seconds": 8, "model": "google/veo-3.1-fast",
         "extensions": [{"prompt": "it docks", "seconds": 4}], "revisions": [{"edit": "make it dusk"}]}]})
    result = render_plan(plan, output=f"file://{tmp_path}")
    stats = openrouter.stats()
    assert result.scenes[0].status == "completed" and len(result.scenes[0].job_ids) == 3
    assert stats["jobs_by_kind"] == {"create": 1, "extension": 1, "edit": 1}
    assert stats["images_fetched"] == {}  # no last frame went anywhere: no last-frame chain
    assert not (tmp_path / "continued" / "ferry" / "segments").exists()
    create, extension, edit = job_requests(openrouter)
    assert "previous_job_id" not in create
    assert (extension["previous_job_id"], extension["duration"]) == (result.scenes[0].job_ids[0], 4)
    assert edit["previous_job_id"] == result.scenes[0].job_ids[1] and "duration" not in edit
    assert probe_video((tmp_path / "continued" / "ferry" / "video.mp4").read_bytes()).seconds == pytest.approx(12)
    # billed as priced: the clip's 8 s, the extension's own 4 s, the edit's whole 12 s
    assert result.paid.billed_jobs == 3 and result.paid.billed_usd == pytest.approx(result.paid.list_usd)


def test_a_model_without_continuation_continues_from_its_last_frame_and_takes_no_edit(
        openrouter: RunningSandbox, tmp_path: Path) -> None:
    scene = {"id": "kite", "prompt": "a kite rises", "seconds": 5, "model": "kwaivgi/kling-v3.0-pro",
             "extensions": [{"prompt": "it dives", "seconds": 5}]}
    plan = parse_plan({"name": "chained", "defaults": {"size": "1280x720"}, "scenes": [scene]})
    result = render_plan(plan, output=f"file://{tmp_path}")
    assert result.scenes[0].status == "completed"
    assert openrouter.stats()["jobs_by_kind"] == {"create": 2}
    assert all("previous_job_id" not in request for request in job_requests(openrouter))
    with pytest.raises(PlanError) as refused:
        validate_plan(parse_plan({"name": "p", "scenes": [{**scene, "revisions": [{"edit": "at night"}]}]}),
                      load_profile("openrouter"))
    assert refused.value.problems == ["plan: scene 'kite': revisions[0].edit: provider 'openrouter' has no edits of "
                                      "kwaivgi/kling-v3.0-pro videos"]


def sdk(pose: RunningSandbox) -> OpenRouter:
    return OpenRouter(api_key="sk-or-v1-test", server_url=pose.base_url)


def finished(client: OpenRouter, model: str, prompt: str) -> str:
    job = client.video_generation.generate(model=model, prompt=prompt, duration=5 if "kling" in model else 4)
    assert wait_until(lambda: client.video_generation.get_generation(job_id=job.id).status not in (
        "pending", "in_progress"), seconds=10)
    return job.id


@pytest.mark.parametrize(("case", "said"), [
    ("kling", r"^kwaivgi/kling-v3\.0-pro does not support continuation \(previous_job_id\)$"),
    ("unfinished", r"is not completed \(status: (pending|in_progress)\)$"),
    ("cancelled", r"is not completed \(status: cancelled\)$"),
])
def test_the_pose_refuses_a_continuation_the_real_api_would(openrouter: RunningSandbox, case: str,
                                                            said: str) -> None:
    with sdk(openrouter) as client:
        if case == "unfinished":
            source = client.video_generation.generate(model="google/veo-3.1-fast", prompt="a gull", duration=4).id
        else:
            model = "kwaivgi/kling-v3.0-pro" if case == "kling" else "google/veo-3.1-fast"
            source = finished(client, model, "a gull [cancelled]" if case == "cancelled" else "a gull")
        with pytest.raises(errors.BadRequestResponseError) as refused:
            client.video_generation.generate(model="google/veo-3.1-fast", prompt="it flies off",
                                             previous_job_id=source, duration=4)
    assert re.search(said, refused.value.data.error.message)


def test_the_pose_takes_every_field_of_the_sdks_request_and_refuses_others(openrouter: RunningSandbox) -> None:
    with sdk(openrouter) as client:
        made = client.video_generation.generate(
            model="google/veo-3.1-fast", prompt="a gull", size="1280x720", duration=4, session_id="s", user="u",
            callback_url="https://example.com/hook", provider={"options": {"google-vertex": {"personGeneration":
                                                                                        "allow_adult"}}})
        assert made.status == "pending"
        with pytest.raises(errors.BadRequestResponseError) as upscaling:
            client.video_generation.generate(model="google/veo-3.1-fast", prompt="a gull", upscale_factor=2.0)
        with pytest.raises(errors.BadRequestResponseError) as passthrough:
            client.video_generation.generate(model="google/veo-3.1-fast", prompt="a gull",
                                             provider={"options": {"google-vertex": {"sampleCount": 4}}})
    assert upscaling.value.data.error.message == "upscale_factor is supported by video upscaling models only"
    assert passthrough.value.data.error.message == (
        "provider.options.google-vertex: 'sampleCount' is not an allowed passthrough parameter (allowed: "
        "negativePrompt, enhancePrompt, personGeneration)")
    unknown = httpx.post(f"{openrouter.base_url}/videos", json={"model": "google/veo-3.1-fast", "prompt": "x",
                                                                "n": 2},
                         headers={"Authorization": "Bearer sk-or-v1-test"})
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (400, "Unrecognized field: 'n'")


def test_subjects_go_as_input_references_where_the_model_takes_them(openrouter: RunningSandbox,
                                                                    tmp_path: Path) -> None:
    Image.new("RGB", (640, 640), (200, 40, 40)).save(tmp_path / "mascot.png")
    plan: dict[str, Any] = {
        "name": "cast", "subjects": [str(tmp_path / "mascot.png")], "defaults": {"size": "1280x720"},
        "scenes": [{"id": "parade", "prompt": "the mascot waves", "seconds": 8, "model": "google/veo-3.1"}]}
    result = render_plan(parse_plan(plan), output=f"file://{tmp_path}/out")
    assert result.scenes[0].status == "completed"
    (request,) = job_requests(openrouter)
    (reference,) = request["input_references"]
    assert reference["type"] == "image_url" and "frame_images" not in request
    assert openrouter.stats()["images_fetched"] == {"data": 1}
    plan["scenes"][0]["model"] = "kwaivgi/kling-v3.0-pro"
    with pytest.raises(PlanError) as refused:
        validate_plan(parse_plan(plan), load_profile("openrouter"))
    assert refused.value.problems == [
        "plan: scene 'parade': subjects: kwaivgi/kling-v3.0-pro on openrouter takes no subject images (models that "
        "do: google/veo-3.1, google/veo-3.1-fast, bytedance/seedance-2.0)"]


def test_provider_options_pass_through_where_the_catalog_allows_them(openrouter: RunningSandbox,
                                                                     tmp_path: Path) -> None:
    options = {"negativePrompt": "blur, text", "personGeneration": "allow_adult"}
    plan = parse_plan({"name": "options", "defaults": {"size": "1280x720", "provider_options": options}, "scenes": [
        {"id": "street", "prompt": "a busy street", "seconds": 4}]})
    assert render_plan(plan, output=f"file://{tmp_path}").scenes[0].status == "completed"
    (request,) = job_requests(openrouter)
    assert request["provider"] == {"options": {"google-vertex": options}}
    refused: list[tuple[dict[str, Any], str]] = [({"model": "google/veo-3.1", "provider_options": {"sampleCount": 2}},
                "provider_options: sampleCount: not an option google/veo-3.1 takes on openrouter (it takes "
                "negativePrompt, enhancePrompt, personGeneration)"),
               ({"model": "kwaivgi/kling-v3.0-pro", "seconds": 5, "provider_options": {"cfg_scale": 0.5}},
                "provider_options: kwaivgi/kling-v3.0-pro on openrouter takes no provider options")]
    routed = parse_plan({"name": "p", "providers": [{"provider": "openrouter", "model": "google/veo-3.1",
                                                     "provider_options": {"enhancePrompt": False}}],
                         "defaults": {"provider_options": options}, "scenes": [{"id": "a", "prompt": "x"}]})
    (resolved,) = validate_plan(routed, load_profile("openrouter"), route=routed.providers[0])
    assert resolved.provider_options == {"enhancePrompt": False}  # the route's, over the defaults'
    for scene, said in refused:
        with pytest.raises(PlanError) as problem:
            validate_plan(parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x", **scene}]}),
                          load_profile("openrouter"))
        assert problem.value.problems == [f"plan: scene 'a': {said}"]


def test_a_cancelled_or_expired_job_ends_its_scene_with_a_clear_error_and_is_not_paid_again(
        openrouter: RunningSandbox) -> None:
    plan = parse_plan({"name": "ended", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "cut", "prompt": "a harbour [cancelled]"}, {"id": "late", "prompt": "a lighthouse [expired]"}]})
    with pytest.raises(RenderFailed) as raised:
        render_plan(plan, output="memory://ended")
    errors_of = {scene.id: scene.error or "" for scene in raised.value.result.scenes}
    assert {scene.status for scene in raised.value.result.scenes} == {"failed"}
    assert "cancelled: The video generation was cancelled" in errors_of["cut"]
    assert "expired: The video generation expired before it finished" in errors_of["late"]
    assert openrouter.stats()["jobs_by_kind"] == {"create": 2}  # one job each: none made again

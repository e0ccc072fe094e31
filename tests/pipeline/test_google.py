"""Plans rendered on Veo through Google's own SDK, configured the way Google's SDK is configured (a project, a
region and Application Default Credentials), against the sandbox posing as Vertex AI: the demo and the
crafted plan from the command line, native extensions, subjects, negatives and seeds in the request, the dry
run's exact Veo JSON, and what Veo cannot do refused before any call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reelflow import PlanError, load_profile, parse_plan, validate_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import image_bytes
from tests.media import probe_video, sound_of

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "deployments" / "plans"


def adc_environment(vertex: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    """What a Vertex user sets: a project, a region, and Application Default Credentials (here, a service
    account's key whose token endpoint is the sandbox's, so nothing leaves the machine)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    credentials = tmp_path / "adc.json"
    credentials.write_text(json.dumps({
        "type": "service_account", "project_id": "film-123", "private_key_id": "reelflow-tests",
        "private_key": key.decode(), "client_email": "renderer@film-123.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{vertex.base_url}/_sandbox/oauth2/token"}))
    return {**os.environ, "REELFLOW_PROVIDER": "google-vertex", "GOOGLE_CLOUD_PROJECT": "film-123",
            "GOOGLE_CLOUD_LOCATION": "us-central1", "GOOGLE_VERTEX_BASE_URL": vertex.base_url,
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials), "REELFLOW_POLL_MIN_SECONDS": "0.1"}


@pytest.mark.parametrize(("plan", "lengths"), [
    ("demo", {"opening": 15, "tree": 4, "closing": 4}),  # 8 s extended natively by Veo's 7 s
    ("crafted", {"departure": 22, "deck": 4, "night": 4}),  # 8 + 7 + 7
])
def test_a_plan_renders_on_vertex_with_the_sdks_own_configuration(plan: str, lengths: dict[str, int], tmp_path: Path,
                                                                  local_prefect_server: str) -> None:
    with run_sandbox(profile="google-vertex", job_seconds=0.3) as vertex:
        done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(PLANS / f"{plan}.yaml"), "--output",
                               f"file://{tmp_path}"], env=adc_environment(vertex, tmp_path), capture_output=True,
                              text=True, timeout=600)
        stats = vertex.stats()
    assert done.returncode == 0, done.stderr
    for scene, seconds in lengths.items():
        data = (tmp_path / plan / scene / "video.mp4").read_bytes()
        info, sound = probe_video(data), sound_of(data)
        assert (info.size, info.seconds) == ((1280, 720), seconds) and sound is not None
    routes = set(stats["requests"]) - {"GET /_sandbox/stats"}
    assert routes == {"POST /{version}/projects/{project}/locations/{location}/publishers/google/models/{model}"
                      ":predictLongRunning", "POST /{version}/projects/{project}/locations/{location}/publishers/"
                      "google/models/{model}:fetchPredictOperation", "POST /_sandbox/oauth2/token"}
    extensions = sum(1 for s in lengths.values() if s > 8) * (1 if plan == "demo" else 2)
    assert stats["jobs_by_kind"] == {"create": 3, "extension": extensions}  # extensions, not new clips


def test_the_dry_run_shows_the_exact_veo_request(tmp_path: Path) -> None:
    (tmp_path / "anna.png").write_bytes(image_bytes((600, 800)))
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: veo\nsubjects: [anna.png]\nstyle: {negatives: \"text, flicker\"}\nscenes:\n"
                    "  - {id: market, prompt: \"Anna at the market\", seconds: 8, seed: 7, audio: false}\n")
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(plan)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "REELFLOW_PROVIDER": "google-vertex"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  1. POST publishers/google/models/veo-3.1-fast-generate-001:predictLongRunning\n" in out
    instances = next(line for line in out.splitlines() if line.startswith("       instances: "))
    body = instances.removeprefix("       instances: ")
    assert body.startswith('[{"prompt": "Anna at the market", "referenceImages": [{"image": "subject.png (image/png, '
                           '600x800, ')
    assert '"referenceType": "ASSET"}]}]' in body and "Avoid" not in body  # negatives go apart, not in the prompt
    parameters = next(line for line in out.splitlines() if line.startswith("       parameters: "))
    assert json.loads(parameters.removeprefix("       parameters: ")) == {
        "sampleCount": 1, "durationSeconds": 8, "seed": 7, "aspectRatio": "16:9", "resolution": "720p",
        "negativePrompt": "text, flicker", "generateAudio": False}


def test_subjects_seed_and_negatives_reach_veo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               prefect_harness: None) -> None:
    """The sandbox, like Veo, makes the same video from the same request and another when the seed, the
    negatives or the subjects change: so each of them reached it."""
    from flows.render_plan import render_plan

    for n in range(3):
        (tmp_path / f"p{n}.png").write_bytes(image_bytes((512, 512), colour=(n * 80, 40, 120)))
    subjects = [str(tmp_path / f"p{n}.png") for n in range(3)]
    shot: dict[str, Any] = {"prompt": {"subject": "three friends", "negatives": "rain"}, "seed": 11}
    scenes: list[dict[str, Any]] = [{"id": "one", **shot}, {"id": "twin", **shot}, {"id": "seed", **shot, "seed": 12},
              {"id": "negatives", **shot, "prompt": {"subject": "three friends", "negatives": "snow"}},
              {"id": "two-subjects", **shot, "subjects": subjects[:2]}]
    with run_sandbox(profile="google-vertex", job_seconds=0.2) as vertex:
        for name, value in {"REELFLOW_PROVIDER": "google-vertex", "REELFLOW_API_KEY": "AIza-test",
                            "REELFLOW_BASE_URL": vertex.base_url, "REELFLOW_POLL_MIN_SECONDS": "0.05"}.items():
            monkeypatch.setenv(name, value)
        plan = parse_plan({"name": "cast", "subjects": subjects, "defaults": {"seconds": 8}, "scenes": scenes})
        result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert {s.status for s in result.scenes} == {"completed"}
    out = tmp_path / "out" / "cast"
    kept = sorted(p.name for p in (out / "one").glob("subject-*"))
    assert kept == ["subject-1.png", "subject-2.png", "subject-3.png"]
    video = {s["id"]: (out / s["id"] / "video.mp4").read_bytes() for s in scenes}
    assert video["twin"] == video["one"]
    assert all(video[other] != video["one"] for other in ("seed", "negatives", "two-subjects"))


def test_a_video_given_as_a_uri_is_read_through_fsspec() -> None:
    """Veo answers with a `gs://` URI when the request named a bucket; the dialect reads any fsspec URI
    (memory:// here, gs:// with gcsfs installed)."""
    import asyncio

    import fsspec
    from google.genai import types
    from pydantic import SecretStr

    from reelflow.providers import JobState, ProviderConfig, dialect

    fsspec.filesystem("memory").pipe("/veo/sample_0.mp4", b"an mp4" * 1000)

    async def downloaded() -> bytes:
        provider = dialect("google-genai")(ProviderConfig(base_url="http://127.0.0.1:9", api_key=SecretStr("k"),
                                                          profile=load_profile("google-vertex")))
        provider.videos["operations/1"] = types.Video(uri="memory://veo/sample_0.mp4")  # type: ignore[attr-defined]
        try:
            async with provider.download(JobState(id="operations/1", status="completed"), "video") as body:
                return b"".join([chunk async for chunk in body.chunks])
        finally:
            await provider.close()

    assert asyncio.run(downloaded()) == b"an mp4" * 1000


def problems(scene: dict[str, Any], tmp_path: Path, **plan: Any) -> list[str]:
    with pytest.raises(PlanError) as refused:
        validate_plan(parse_plan({"name": "p", "scenes": [{"id": "s", "prompt": "x", **scene}], **plan}),
                      load_profile("google-vertex"))
    return refused.value.problems


@pytest.mark.parametrize(("scene", "plan", "expected"), [
    ({"seconds": 8, "extensions": [{"prompt": "y", "seconds": 40}]}, {},
     "plan: scene 's': extensions: the stitched video would be 50 s; at most 37 s on google-vertex"),
    ({"seconds": 4}, {"subjects": ["a.png", "b.png", "c.png", "d.png"]},
     "plan: scene 's': subjects: 4 images; at most 3 on google-vertex"),
    ({"seconds": 4}, {"subjects": ["a.png"]},
     "plan: scene 's': subjects: a clip with subjects is 8 s on google-vertex, not 4 s"),
    ({"size": "1024x1024"}, {}, "plan: scene 's': size: 1024x1024 is not available for veo-3.1-fast-generate-001"),
    ({"revisions": [{"remix": "at night"}]}, {}, "plan: scene 's': revisions[0].remix: provider 'google-vertex' has "
                                                 "no remix"),
    ({"revisions": [{"edit": "at night"}]}, {}, "plan: scene 's': revisions[0].edit: provider 'google-vertex' has "
                                                "no edits"),
    ({"characters": ["Mira"]}, {"characters": [{"name": "Mira", "clip": "mira.mp4"}]},
     "plan: characters: provider 'google-vertex' has no characters"),
])
def test_what_veo_cannot_do_is_refused_before_any_call(scene: dict[str, Any], plan: dict[str, Any], expected: str,
                                                      tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"{name}.png").write_bytes(image_bytes((256, 256)))
    if "subjects" in plan:
        plan = {**plan, "subjects": [str(tmp_path / name) for name in plan["subjects"]]}
    found = problems(scene, tmp_path, **plan)
    assert any(p.startswith(expected) for p in found), found

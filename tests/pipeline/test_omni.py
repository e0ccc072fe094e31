"""Plans rendered on Gemini Omni through Google's own SDK (google-genai's Interactions client), configured as its
users configure it, against the sandbox posing as Google's Interactions API: on the Gemini API with a
GEMINI_API_KEY alone, and on Vertex AI with a project, a region and Application Default Credentials. A first frame,
reference images, a 30 s scene made by Omni's own extensions (no clip chained from a last frame) and a refinement;
the dry run's exact Interactions bodies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from reelflow import parse_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from tests.conftest import image_bytes
from tests.media import probe_video, sound_of
from tests.pipeline.test_google import adc_environment

PLAN = """name: omni
defaults: {size: 1280x720, seconds: 8}
scenes:
  - {id: harbour, prompt: "a harbour at dawn", image: first.png}
  - {id: cast, prompt: "three friends on the quay", subjects: [p0.png, p1.png, p2.png]}
  - id: voyage
    prompt: "the trawler leaves the harbour"
    seconds: 10
    extensions:
      - {prompt: "she passes the lighthouse", seconds: 10}
      - {prompt: "she clears the breakwater", seconds: 10}
  - {id: dusk, prompt: "the quay at noon", revisions: [{edit: "make it dusk"}]}
"""
LENGTHS = {"harbour": 8, "cast": 8, "voyage": 30, "dusk": 8}


def written_plan(tmp_path: Path) -> Path:
    (tmp_path / "first.png").write_bytes(image_bytes((1280, 720), colour=(200, 120, 40)))
    for n in range(3):
        (tmp_path / f"p{n}.png").write_bytes(image_bytes((512, 512), colour=(n * 80, 40, 120)))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    return plan


def gemini_environment(pose: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    """What a Gemini API user sets: the key alone (the SDK's own variable moves its endpoint to the sandbox)."""
    return {**os.environ, "GEMINI_API_KEY": "AIza-test", "GOOGLE_GEMINI_BASE_URL": pose.base_url,
            "REELFLOW_POLL_MIN_SECONDS": "0.1"}


def vertex_environment(pose: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    """What a Vertex user sets: a project, the `global` region and Application Default Credentials."""
    return {**adc_environment(pose, tmp_path), "REELFLOW_PROVIDER": "gemini-omni-vertex",
            "GOOGLE_CLOUD_LOCATION": "global"}


@pytest.mark.parametrize(("profile", "environment", "base"), [
    ("gemini-omni", gemini_environment, "/{version}"),
    ("gemini-omni-vertex", vertex_environment, "/{version}/projects/{project}/locations/{location}"),
], ids=["gemini-api", "vertex"])
def test_a_plan_renders_on_omni_through_the_sdks_interactions(profile: str, environment: Any, base: str,
                                                              tmp_path: Path, local_prefect_server: str) -> None:
    plan = written_plan(tmp_path)
    with run_sandbox(profile=profile, job_seconds=0.3) as pose:
        done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                               f"file://{tmp_path}/out"], env=environment(pose, tmp_path), capture_output=True,
                              text=True, timeout=600)
        stats = pose.stats()
        requests = [job.request for job in pose.sandbox.state.jobs.values()]
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"Rendering on '{profile}'")
    videos = {scene: (tmp_path / "out" / "omni" / scene / "video.mp4").read_bytes() for scene in LENGTHS}
    for scene, seconds in LENGTHS.items():
        info = probe_video(videos[scene])
        assert (info.size, info.seconds) == ((1280, 720), seconds) and sound_of(videos[scene]) is not None, scene
    routes = set(stats["requests"]) - {"GET /_sandbox/stats", "POST /_sandbox/oauth2/token"}
    assert routes == {f"POST {base}/interactions", f"GET {base}/interactions/{{id}}"}
    # the 30 s scene is one clip and two of Omni's own extensions, the revision one refinement: nothing chained
    assert stats["jobs_by_kind"] == {"create": 4, "extension": 2, "edit": 1}
    tasks = sorted(r["generation_config"]["video_config"]["task"] for r in requests)
    assert tasks == ["edit", "extend", "extend", "image_to_video", "reference_to_video", "text_to_video",
                     "text_to_video"]
    images = {r["generation_config"]["video_config"]["task"]: [p for p in r["input"][0]["content"]
                                                             if p["type"] == "image"] for r in requests}
    assert len(images["image_to_video"]) == 1 and len(images["reference_to_video"]) == 3
    assert all(r.get("background") is True for r in requests)


def test_the_dry_run_shows_the_interactions_bodies(tmp_path: Path) -> None:
    plan = written_plan(tmp_path)
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(plan)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "REELFLOW_PROVIDER": "gemini-omni"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("  1. POST v1/interactions") == 4 and lines.count("  2. POST v1/interactions") == 2

    def shown(field: str) -> list[Any]:
        return [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith(f"       {field}: ")]

    assert [g["video_config"]["task"] for g in shown("generation_config")] == [
        "image_to_video", "reference_to_video", "text_to_video", "extend", "extend", "text_to_video", "edit"]
    assert shown("response_format")[0] == {"type": "video", "aspect_ratio": "16:9", "resolution": "720p",
                                           "duration": "8s", "delivery": "inline"}
    assert shown("response_format")[3] == {"type": "video", "duration": "10s", "delivery": "inline"}
    assert shown("previous_interaction_id") == ["<the video of request 1>", "<the video of request 2>",
                                                "<the video of request 1>"]
    first = shown("input")[0][0]
    assert first["type"] == "user_input" and first["content"][0] == {"type": "text", "text": "a harbour at dawn"}
    assert first["content"][1]["type"] == "image" and first["content"][1]["data"].startswith("reference.png (")
    assert set(shown("model")) == {"gemini-omni-1.1-flash"} and set(shown("background")) == {True}


class FakeCloudStorage(MemoryFileSystem):  # type: ignore[misc]
    """`gs://` in this process, in memory (gcsfs against Google is not reachable here): the sandbox posing as
    Vertex writes the videos there, reelflow writes its output there and reads the videos back, through fsspec."""

    protocol = ("gs", "gcs")
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return MemoryFileSystem._strip_protocol(str(path).replace("gs://", "memory://", 1))

    def unstrip_protocol(self, name: str) -> str:
        return "gs://" + name.lstrip("/")


@pytest.fixture
def cloud_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeCloudStorage]]:
    """`gs` is FakeCloudStorage for the test (fsspec's registry has no public way to take a filesystem back)."""
    monkeypatch.setitem(sys.modules["fsspec.registry"]._registry, "gs", FakeCloudStorage)
    yield FakeCloudStorage
    FakeCloudStorage.store.clear()


@pytest.mark.parametrize(("profile", "extension", "field"), [
    ("google-vertex", 7, "storageUri"), ("gemini-omni-vertex", 4, "gcs_uri")])
def test_on_vertex_an_output_on_cloud_storage_has_google_deliver_there(
        profile: str, extension: int, field: str, cloud_storage: type[FakeCloudStorage],
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    """Veo (`output_gcs_uri`) and Omni (`delivery: uri`, `gcs_uri`) write the videos beside the run's output on
    Cloud Storage; reelflow reads them back through fsspec (an extension passes Veo its source's URI)."""
    from flows.render_plan import render_plan

    with run_sandbox(profile=profile, job_seconds=0.2) as vertex:
        for name, value in {"REELFLOW_PROVIDER": profile, "REELFLOW_API_KEY": "AQ.express",
                            "REELFLOW_BASE_URL": vertex.base_url, "REELFLOW_POLL_MIN_SECONDS": "0.05"}.items():
            monkeypatch.setenv(name, value)
        plan = parse_plan({"name": "stored", "scenes": [{"id": "pier", "prompt": "a pier", "seconds": 8, "extensions": [
            {"prompt": "the tide rises", "seconds": extension}]}]})
        result = render_plan(plan, output="gs://reels/out")
        requests = [job.request for job in vertex.sandbox.state.jobs.values()]
    assert [s.status for s in result.scenes] == ["completed"]
    storage = FakeCloudStorage()
    video = storage.cat("gs://reels/out/stored/pier/video.mp4")
    assert probe_video(video).seconds == 8 + extension and sound_of(video) is not None
    delivered = storage.glob("gs://reels/out/stored/.google-deliveries/*/sample_0.mp4")
    assert len(delivered) == 2  # the clip and its extension, written by the provider
    folders = {json.dumps(r, sort_keys=True).split(f'"{field}": "', 1)[1].split('"')[0] for r in requests}
    assert folders == {"gs://reels/out/stored/.google-deliveries/"}

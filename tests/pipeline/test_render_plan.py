"""A user's story: write a plan, render it, find finished videos in their storage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fsspec
import pytest
from PIL import Image

from flows.render_plan import RenderFailed, render_plan
from flows.render_scene import render_scene
from reelflow import Plan, Scene, parse_plan
from reelflow.sandbox import FPS, RunningSandbox
from tests.images import awkward_references
from tests.media import probe_video, psnr, video_frames
from tests.pipeline.conftest import point_at


def read(url: str) -> bytes:
    with fsspec.open(url, "rb") as handle:
        data: bytes = handle.read()
    return data


def write_images(folder: Path, images: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (folder / name).write_bytes(data)


def test_reference_images_of_every_shape_come_out_exactly_the_video_size(
        provider: RunningSandbox, tmp_path: Path) -> None:
    references = awkward_references()
    write_images(tmp_path / "images", references)
    fits = ["cover", "pad", "stretch"]
    plan = parse_plan({
        "name": "shapes",
        "defaults": {"size": "1280x720", "seconds": 4},
        "scenes": [{"id": name.replace(".", "-"), "prompt": f"shot from {name}",
                    "image": str(tmp_path / "images" / name), "fit": fits[index % 3]}
                   for index, name in enumerate(references)],
    })
    creates_before = provider.stats()["jobs_by_kind"].get("create", 0)
    result = render_plan(plan, output="memory://renders")
    assert [s.status for s in result.scenes] == ["completed"] * len(references)
    assert provider.stats()["jobs_by_kind"]["create"] - creates_before == len(references)
    for scene in result.scenes:
        reference_name = next(name for name in scene.files if name.startswith("reference."))
        reference = Image.open(io.BytesIO(read(scene.files[reference_name].url)))
        assert reference.size == (1280, 720), scene.id
        video = read(scene.files["video.mp4"].url)
        assert probe_video(video).size == (1280, 720)
        assert psnr(video_frames(video)[0], reference) > 30, scene.id
    warnings = {s.id: " ".join(s.warnings) for s in result.scenes}
    assert "upscaled" in warnings["tiny-png"]
    assert "first frame" in warnings["animated-gif"]
    assert "reference.jpg" in result.scenes[-1].files  # already exact: sent unchanged


def test_an_exif_rotated_photo_is_turned_upright(provider: RunningSandbox, tmp_path: Path) -> None:
    write_images(tmp_path, {"rotated.jpg": awkward_references()["exif-rotated.jpg"]})
    plan = parse_plan({"name": "upright", "scenes": [
        {"id": "portrait", "prompt": "p", "image": str(tmp_path / "rotated.jpg"), "size": "720x1280",
         "fit": "stretch"}]})
    scene = render_plan(plan, output="memory://renders").scenes[0]
    reference = Image.open(io.BytesIO(read(scene.files["reference.jpg"].url))).convert("RGB")
    # Upright, the sun (yellow) is in the top-left and the grass (green) along the bottom.
    sun = reference.getpixel((130, 230))
    grass = reference.getpixel((360, 1200))
    assert isinstance(sun, tuple) and isinstance(grass, tuple)
    assert sun[0] > 200 and sun[1] > 150 and sun[2] < 120
    assert grass[1] > grass[0] and grass[1] > grass[2]


def test_extensions_produce_the_stitched_duration(provider: RunningSandbox, tmp_path: Path) -> None:
    plan = parse_plan({"name": "long", "defaults": {"size": "1280x720"}, "scenes": [
        {"id": "journey", "prompt": "a train departs", "seconds": 8,
         "extensions": [{"prompt": "it crosses a bridge", "seconds": 4},
                        {"prompt": "it enters a tunnel", "seconds": 8}]},
    ]})
    scene = render_plan(plan, output=f"file://{tmp_path}").scenes[0]
    assert (scene.status, scene.seconds, len(scene.job_ids)) == ("completed", 20, 3)
    info = probe_video((tmp_path / "long" / "journey" / "video.mp4").read_bytes())
    assert (info.size, info.seconds, info.frames) == ((1280, 720), 20.0, 20 * FPS)


@pytest.mark.parametrize("backend", ["file", "memory", "s3"])
def test_every_output_lands_and_decodes_on_each_storage(provider: RunningSandbox, tmp_path: Path, backend: str,
                                                         request: pytest.FixtureRequest) -> None:
    output = {"file": f"file://{tmp_path}/out", "memory": "memory://out",
              "s3": request.getfixturevalue("s3_output") if backend == "s3" else ""}[backend]
    write_images(tmp_path, {"harbor.jpg": awkward_references()["huge.jpg"]})
    plan = parse_plan({"name": "stores", "defaults": {"size": "720x1280", "seconds": 4}, "scenes": [
        {"id": "one", "prompt": "first", "image": str(tmp_path / "harbor.jpg")},
        {"id": "two", "prompt": "second", "extensions": [{"prompt": "more", "seconds": 4}]},
    ]})
    result = render_plan(plan, output=output)
    manifest = json.loads(read(f"{output}/stores/manifest.json"))
    assert [s["id"] for s in manifest["scenes"]] == ["one", "two"]
    for scene in result.scenes:
        for name, record in scene.files.items():
            data = read(record.url)
            assert len(data) == record.bytes, name
            if name == "video.mp4":
                info = probe_video(data)
                assert (info.size, info.seconds) == ((720, 1280), scene.seconds)
            else:
                assert Image.open(io.BytesIO(data)).size[0] > 0
        assert set(scene.files) >= {"video.mp4", "thumbnail.webp", "spritesheet.jpg"}
    fs, root = fsspec.url_to_fs(output)
    written = {p.removeprefix(root.rstrip("/") + "/") for p in fs.find(root)}
    assert written == {"stores/manifest.json", "stores/report.html", "stores/ledger/lease/1.json",
                       "stores/ledger/one.json", "stores/ledger/two.json",
                       *(f"stores/{s}/{f}" for s in ("one", "two") for f in ("video.mp4", "thumbnail.webp",
                                                                            "spritesheet.jpg")),
                       "stores/one/reference.jpg"}


def test_a_blocked_scene_fails_alone_and_the_run_says_why(provider: RunningSandbox) -> None:
    plan = parse_plan({"name": "mixed", "scenes": [
        {"id": "fine", "prompt": "a calm lake"},
        {"id": "refused", "prompt": "something [blocked]"},
    ]})
    with pytest.raises(RenderFailed) as raised:
        render_plan(plan, output="memory://out")
    by_id = {s.id: s for s in raised.value.result.scenes}
    assert by_id["fine"].status == "completed"
    assert by_id["refused"].status == "failed"
    assert "moderation_blocked" in (by_id["refused"].error or "")
    assert "scene 'refused' failed" in str(raised.value)
    manifest = json.loads(read("memory://out/mixed/manifest.json"))
    assert {s["id"]: s["status"] for s in manifest["scenes"]} == {"fine": "completed", "refused": "failed"}


def test_a_single_scene_renders_on_its_own(provider: RunningSandbox) -> None:
    result = render_scene(Plan(name="scenes", output="memory://single",
                               scenes=[Scene(id="solo", prompt="one shot", size="1280x720")]))
    assert result.status == "completed"
    assert probe_video(read(result.files["video.mp4"].url)).size == (1280, 720)


def test_transient_faults_are_retried_by_the_tasks_and_permanent_ones_are_not(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    """With the SDK's own retries off, Prefect's task retries absorb server errors and dropped connections."""
    from reelflow.sandbox import run_sandbox

    with run_sandbox(job_seconds=0.2, faults="5xx=0.15,drop=0.05", seed=11) as faulty:
        point_at(monkeypatch, faulty.base_url, faulty.api_key, request_retries="0", task_retries="6")
        plan = parse_plan({"name": "bumpy", "scenes": [
            *({"id": f"s{i}", "prompt": f"shot {i}"} for i in range(4)),
            {"id": "refused", "prompt": "[blocked] never"},
        ]})
        with pytest.raises(RenderFailed) as raised:
            render_plan(plan, output="memory://out")
        stats = faulty.stats()
    by_id = {s.id: s for s in raised.value.result.scenes}
    assert [by_id[f"s{i}"].status for i in range(4)] == ["completed"] * 4
    assert by_id["refused"].status == "failed" and len(by_id["refused"].job_ids) == 1
    assert sum(stats["faults"].values()) >= 3, stats["faults"]
    assert stats["jobs_by_kind"]["create"] == 5  # faults strike before the server creates anything

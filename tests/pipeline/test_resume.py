"""Running a plan again resumes it: nothing already paid for is paid for twice."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import fsspec
import pytest

from flows.render_plan import RenderFailed, render_plan
from reelflow import parse_plan
from reelflow.sandbox import RunningSandbox
from tests.pipeline.conftest import point_at

PLAN: dict[str, Any] = {"name": "again", "defaults": {"size": "1280x720"}, "scenes": [
    {"id": "one", "prompt": "first shot"},
    {"id": "two", "prompt": "second shot", "extensions": [{"prompt": "and more", "seconds": 4}]},
]}


def calls(provider: RunningSandbox) -> Counter[str]:
    return Counter(provider.stats()["requests"])


def test_a_second_run_skips_finished_scenes_without_any_call(provider: RunningSandbox) -> None:
    first = render_plan(parse_plan(PLAN), output="memory://out")
    before = calls(provider)
    second = render_plan(parse_plan(PLAN), output="memory://out")
    assert calls(provider) - before == Counter()
    assert [s.job_ids for s in second.scenes] == [s.job_ids for s in first.scenes]
    assert [s.files for s in second.scenes] == [s.files for s in first.scenes]


def test_of_a_changed_scene_only_the_changed_step_is_paid(provider: RunningSandbox) -> None:
    render_plan(parse_plan(PLAN), output="memory://out")
    changed = json.loads(json.dumps(PLAN))
    changed["scenes"][1]["extensions"][0]["prompt"] = "and something else"
    before = calls(provider)
    result = render_plan(parse_plan(changed), output="memory://out")
    spent = calls(provider) - before
    assert (spent["POST /v1/videos"], spent["POST /v1/videos/extensions"]) == (0, 1)
    assert result.scenes[1].status == "completed" and result.scenes[1].reused_jobs == 1


def test_a_lost_output_is_downloaded_again_not_paid_again(provider: RunningSandbox) -> None:
    result = render_plan(parse_plan(PLAN), output="memory://out")
    fs, path = fsspec.url_to_fs(result.scenes[0].files["video.mp4"].url)
    fs.pipe_file(path, b"damaged")
    before = calls(provider)
    again = render_plan(parse_plan(PLAN), output="memory://out")
    spent = calls(provider) - before
    assert spent["POST /v1/videos"] == 0 and spent["GET /v1/videos/{id}/content"] == 3
    assert again.scenes[0].files["video.mp4"] == result.scenes[0].files["video.mp4"]


def test_a_permanent_failure_is_not_paid_again_unless_asked(provider: RunningSandbox) -> None:
    plan = parse_plan({"name": "blocked", "scenes": [{"id": "no", "prompt": "[blocked] never"}]})
    with pytest.raises(RenderFailed):
        render_plan(plan, output="memory://out")
    before = calls(provider)
    with pytest.raises(RenderFailed) as raised:
        render_plan(plan, output="memory://out")
    assert calls(provider) - before == Counter()
    assert "in an earlier run; --retry-failed renders it again" in (raised.value.result.scenes[0].error or "")
    with pytest.raises(RenderFailed):
        render_plan(plan, output="memory://out", retry_failed=True)
    assert (calls(provider) - before)["POST /v1/videos"] == 1


def test_the_ledger_records_every_job_of_the_chain(provider: RunningSandbox) -> None:
    result = render_plan(parse_plan(PLAN), output="memory://out")
    with fsspec.open("memory://out/again/ledger/two.json") as handle:
        entry = json.load(handle)
    assert [(j["step"], j["id"], j["status"]) for j in entry["jobs"]] == [
        (0, result.scenes[1].job_ids[0], "completed"), (1, result.scenes[1].job_ids[1], "completed")]
    assert entry["status"] == "completed" and set(entry["files"]) == {"video.mp4", "thumbnail.webp",
                                                                      "spritesheet.jpg"}


def test_lost_create_answers_are_adopted_not_paid_twice(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    """The server creates the job but the answer never arrives; the retry finds the job instead."""
    from reelflow.sandbox import run_sandbox

    with run_sandbox(job_seconds=0.2, faults="lost=0.25", seed=5) as lossy:
        point_at(monkeypatch, lossy.base_url, lossy.api_key, task_retries="8")
        plan = parse_plan({"name": "lossy", "scenes": [
            *({"id": f"s{i}", "prompt": f"shot {i}"} for i in range(6)),
            {"id": "ext", "prompt": "long shot", "extensions": [{"prompt": "longer", "seconds": 4}]}]})
        result = render_plan(plan, output="memory://out")
        stats = lossy.stats()
    assert all(s.status == "completed" for s in result.scenes)
    assert stats["faults"]["lost"] >= 3
    assert stats["jobs_by_kind"] == {"create": 7, "extension": 1}


def test_identical_scenes_never_share_a_job_when_answers_are_lost(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    """Two scenes asking for the very same video cannot be told apart in the provider's list, so a
    lost answer is paid again rather than adopted from the sibling."""
    from reelflow.sandbox import run_sandbox

    with run_sandbox(job_seconds=0.2, faults="lost=0.3", seed=9) as lossy:
        point_at(monkeypatch, lossy.base_url, lossy.api_key, task_retries="8")
        twins = [{"id": f"twin{i}", "prompt": "the same shot", "extensions": [{"prompt": "same", "seconds": 4}]}
                 for i in range(3)]
        result = render_plan(parse_plan({"name": "twins", "scenes": twins}), output="memory://out")
    ids = [job for scene in result.scenes for job in scene.job_ids]
    assert all(s.status == "completed" for s in result.scenes)
    assert len(ids) == len(set(ids)) == 6


def test_downloads_cut_short_are_fetched_again(monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    from reelflow.sandbox import run_sandbox
    from tests.media import probe_video
    from tests.pipeline.test_render_plan import read

    with run_sandbox(job_seconds=0.1, faults="truncate=0.4", seed=3) as cutting:
        point_at(monkeypatch, cutting.base_url, cutting.api_key, task_retries="10")
        result = render_plan(parse_plan({"name": "cut", "scenes": [{"id": f"c{i}", "prompt": f"p{i}"}
                                                                   for i in range(3)]}), output="memory://out")
        stats = cutting.stats()
    assert stats["faults"]["truncate"] >= 2
    for scene in result.scenes:
        assert probe_video(read(scene.files["video.mp4"].url)).seconds == 4.0
        assert scene.files["video.mp4"].bytes == len(read(scene.files["video.mp4"].url))


def test_a_job_whose_files_expired_is_rendered_again_on_the_next_run(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    import time

    from reelflow.sandbox import run_sandbox

    plan = parse_plan({"name": "late", "scenes": [{"id": "slow-to-fetch", "prompt": "gone soon"}]})
    with run_sandbox(job_seconds=0.1, asset_ttl_seconds=8) as brief:
        point_at(monkeypatch, brief.base_url, brief.api_key)
        first = render_plan(plan, output="memory://out")
        fs, path = fsspec.url_to_fs(first.scenes[0].files["video.mp4"].url)
        fs.rm(path)  # the file is lost, and by the time we look again its job's assets have expired
        time.sleep(8.5)
        second = render_plan(plan, output="memory://out")  # the provider said when: no download is tried
        stats = brief.stats()
    assert second.scenes[0].status == "completed" and stats["jobs"] == 2
    assert second.scenes[0].job_ids[-1] != first.scenes[0].job_ids[0] and second.scenes[0].reused_jobs == 0
    assert stats["requests"]["GET /v1/videos/{id}/content"] == 2 * 3  # video, thumbnail, spritesheet of each

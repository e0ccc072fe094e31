"""A 20-scene plan through a faulty provider: every video still arrives, correct."""

from __future__ import annotations

import pytest

from flows.render_plan import render_plan
from reelflow import parse_plan
from reelflow.sandbox import run_sandbox
from tests.media import probe_video
from tests.pipeline.conftest import point_at
from tests.pipeline.test_render_plan import read


def test_twenty_scenes_through_server_errors_rate_limits_drops_and_truncation(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None, capsys: pytest.CaptureFixture[str]) -> None:
    with run_sandbox(job_seconds=0.3, faults="5xx=0.1,429=0.05,drop=0.02,truncate=0.02", seed=2026) as faulty:
        point_at(monkeypatch, faulty.base_url, faulty.api_key, task_retries="8", max_concurrent="6")
        plan = parse_plan({"name": "soak", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
            {"id": f"shot-{i:02d}", "prompt": f"shot number {i}",
             **({"extensions": [{"prompt": "and then", "seconds": 4}]} if i % 5 == 0 else {})}
            for i in range(20)]})
        result = render_plan(plan, output="memory://soak")
        stats = faulty.stats()
    for scene in result.scenes:
        info = probe_video(read(scene.files["video.mp4"].url))
        assert (scene.status, info.size, info.seconds) == ("completed", (1280, 720), scene.seconds), scene.id
    assert stats["jobs_by_kind"] == {"create": 20, "extension": 4}
    absorbed = sum(stats["faults"].values())
    with capsys.disabled():
        print(f"\nfault soak: {absorbed} injected faults absorbed {dict(stats['faults'])}, "
              f"{sum(stats['requests'].values())} requests, 20/20 scenes correct")
    assert absorbed >= 10

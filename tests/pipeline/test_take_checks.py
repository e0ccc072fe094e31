"""Take checks through the pipeline (#37): every delivered take is checked, on each dialect's pose. A scene whose
prompt carries a sandbox defect marker (`[black]`, `[frozen]`, `[silent]`, `[short]`, `[off-reference]`,
`[flash]`) ends with its defect found and named in the manifest, the report and the Prefect scene table; with
`qa: {retake: 1}` it is made again once (a new paid job, recorded first) and the clean retake kept beside the
failed one; a budget that cannot cover the retakes refuses them, as the estimate says; with takes and no review,
the best take by the checks is kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.render_plan import render_plan
from flows.review import PausedReview
from reelflow import Settings, parse_plan
from reelflow.cli import app
from reelflow.costs import estimate
from reelflow.ledger import Ledger
from reelflow.providers import dialect_entries
from reelflow.results import PlanResult, SceneResult
from reelflow.routes import checked_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from tests.images import encoded, photo
from tests.pipeline.conftest import FAST, point_at
from tests.pipeline.test_takes import reviewed
from tests.pipeline.test_what_users_see import latest_artifacts

DIALECTS = [entry.profile for entry in dialect_entries() if entry.profile]
# What each marker makes, as the checks name it (a finding's `check`).
FOUND = {"black": "black", "frozen": "frozen", "silent": "silent", "short": "duration",
         "off-reference": "reference", "flash": "flash"}


@pytest.fixture(params=DIALECTS)
def pose(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
         ) -> Iterator[RunningSandbox]:
    """A sandbox posing as the dialect's provider, the pipeline pointed at it as a user points it."""
    with run_sandbox(profile=str(request.param), job_seconds=0.2) as running:
        for name, value in {"REELFLOW_PROVIDER": str(request.param), "REELFLOW_API_KEY": running.api_key,
                            "REELFLOW_BASE_URL": running.base_url, **FAST}.items():
            monkeypatch.setenv(name, value)
        yield running


def marked(defect: str, reference: Path | None = None) -> dict[str, Any]:
    scene: dict[str, Any] = {"id": f"s-{defect}", "prompt": f"a harbour at dawn [{defect}]"}
    return scene | ({"image": str(reference)} if reference else {})


def plan_of(name: str, *scenes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "defaults": {"size": "1280x720", "seconds": 4}, "scenes": list(scenes), **fields}


def reference_image(folder: Path) -> Path:
    path = folder / "harbour.png"
    path.write_bytes(encoded(photo((1280, 720)), "PNG"))
    return path


def rendered(plan: dict[str, Any], output: str) -> PlanResult:
    return render_plan(parse_plan(plan), output=output)


def found(scene: SceneResult) -> set[str]:
    checks = scene.checks
    return {finding.check for finding in checks.findings} if checks else set()


def jobs(pose: RunningSandbox) -> int:
    return int(pose.stats()["jobs"])


def test_each_defect_is_found_and_named_in_the_manifest_report_and_scene_table(
        pose: RunningSandbox, tmp_path: Path) -> None:
    defects, reference = list(FOUND), reference_image(tmp_path)
    scenes = [marked(defect, reference if defect == "off-reference" else None) for defect in defects]
    clean = {"id": "clean", "prompt": "gulls over the pier", "image": str(reference)}
    result = rendered(plan_of("checked", *scenes, clean), f"file://{tmp_path}/out")

    by_id = {scene.id: scene for scene in result.scenes}
    assert by_id["clean"].qa == "pass", by_id["clean"].checks
    assert all(scene.status == "completed" for scene in result.scenes)  # a failed take is delivered, and said
    manifest = json.loads((tmp_path / "out" / "checked" / "manifest.json").read_text())
    report = (tmp_path / "out" / "checked" / "report.html").read_text()
    (table,) = asyncio.run(latest_artifacts("checked-scenes"))
    rows = {row["scene"]: row for row in json.loads(str(table.data))}
    for defect in defects:
        scene = by_id[f"s-{defect}"]
        assert scene.qa == "fail" and FOUND[defect] in found(scene), (defect, scene.checks)
        listed = next(s for s in manifest["scenes"] if s["id"] == scene.id)
        assert listed["qa"] == "fail"
        assert FOUND[defect] in {f["check"] for f in listed["files"]["video.mp4"]["checks"]["findings"]}
        assert FOUND[defect] in rows[scene.id]["qa"], rows[scene.id]
        assert f"QA: {scene.qa_said}" in report.replace("&#39;", "'"), defect
    assert rows["clean"]["qa"] == "pass"
    entry = Ledger(Storage(f"file://{tmp_path}/out").child("checked")).load(f"s-{defects[0]}")
    assert entry is not None and entry.files["video.mp4"].checks is not None  # kept with the take in the ledger
    assert entry.files["video.mp4"].checks.verdict == "fail"


def test_with_a_retake_each_failed_scene_is_made_once_more_and_the_clean_retake_kept(
        pose: RunningSandbox, tmp_path: Path) -> None:
    defects, reference = list(FOUND), reference_image(tmp_path)
    scenes = [marked(defect, reference if defect == "off-reference" else None) for defect in defects]
    before = jobs(pose)
    result = rendered(plan_of("retaken", *scenes, {"id": "clean", "prompt": "gulls over the pier"},
                              qa={"retake": 1}), f"file://{tmp_path}/out")

    assert jobs(pose) - before == 2 * len(defects) + 1  # each marked scene twice, the clean one once
    assert result.paid.jobs == 2 * len(defects) + 1
    folder = Storage(f"file://{tmp_path}/out").child("retaken")
    for defect in defects:
        scene = next(s for s in result.scenes if s.id == f"s-{defect}")
        assert scene.qa == "pass", (defect, scene.checks)
        (rejected,) = scene.rejected
        assert rejected.checks is not None and FOUND[defect] in {f.check for f in rejected.checks.findings}
        assert folder.exists(scene.id, "video.rejected1.mp4") and "video.rejected1.mp4" in rejected.files
        assert rejected.jobs and not set(rejected.jobs) & set(scene.job_ids)  # the retake is a job of its own
        entry = Ledger(folder).load(scene.id)
        assert entry is not None
        assert [job.status for job in entry.jobs] == ["rejected", "completed"]  # each recorded, none paid twice
    clean = next(s for s in result.scenes if s.id == "clean")
    assert clean.qa == "pass" and not clean.rejected


def test_a_budget_that_cannot_cover_the_retakes_refuses_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              prefect_harness: None) -> None:
    with run_sandbox(job_seconds=0.2) as sandbox:
        for name, value in {"REELFLOW_PROVIDER": "sandbox", "REELFLOW_API_KEY": sandbox.api_key,
                            "REELFLOW_BASE_URL": sandbox.base_url, **FAST}.items():
            monkeypatch.setenv(name, value)
        once = plan_of("tight", marked("black"), qa={"retake": 1})
        plan = parse_plan(once)
        routed = checked_plan(plan, Settings())
        costs = estimate(plan, routed.scenes, routed.profiles, Settings())
        assert costs.with_retakes_usd == pytest.approx(2 * costs.total_usd)
        plan = parse_plan({**once, "budget_usd": costs.total_usd * 1.5})
        costs = costs.model_copy(update={"budget_usd": plan.budget_usd})
        assert not costs.retakes_allowed and "not made again" in (costs.retakes_note() or "")
        written = tmp_path / "tight.json"
        written.write_text(json.dumps({**once, "budget_usd": plan.budget_usd}))
        said = CliRunner().invoke(app, ["estimate", str(written)])
        assert said.exit_code == 0 and f"with retakes ${costs.with_retakes_usd:.2f}, over the budget" in said.output

        run = CliRunner().invoke(app, ["run", str(written), "--output", f"file://{tmp_path}/out"])
        assert run.exit_code == 0, run.output
        assert sandbox.stats()["jobs"] == 1  # the failed take is not made again
        manifest = json.loads((tmp_path / "out" / "tight" / "manifest.json").read_text())
        (scene,) = manifest["scenes"]
        assert (scene["qa"], scene["rejected"], manifest["paid"]["jobs"]) == ("fail", [], 1)
        # The run's summary: the QA column, and why the take stays as it is.
        assert "qa" in run.output and "fail: black" in " ".join(run.output.split()), run.output
        assert "warning: its take failed the checks and is not made again" in " ".join(run.output.split())
        assert "1 of the delivered takes failed their checks (s-black: the qa column;" in " ".join(run.output.split())


def test_with_takes_and_no_review_the_best_take_by_the_checks_is_kept(provider: RunningSandbox) -> None:
    # Both takes ask the same: the first job made is black, the other clean, whichever take it is.
    result = rendered(plan_of("best", {"id": "dawn", "prompt": "a harbour at dawn [black]", "takes": 2}),
                      "memory://best-take")
    (scene,) = result.scenes
    assert scene.choice is not None and scene.choice.by == "checks"
    assert scene.qa == "pass" and "black" not in found(scene)


def test_a_review_shows_what_the_checks_found_in_each_take(provider: RunningSandbox) -> None:
    said: dict[str, str] = {}

    def answer(review: PausedReview) -> None:
        (question,) = review.questions
        said["form"] = question.checks
        review.answer({})

    plan = plan_of("qa-review", {"id": "dusk", "prompt": "a harbour at dusk [flash]", "takes": 2}, review=True)
    result = reviewed(plan, answer)
    assert "fail: flash" in said["form"] and "pass" in said["form"], said  # one take flashed, the other did not
    (page,) = asyncio.run(latest_artifacts("qa-review-review"))
    assert "fail: flash" in str(page.data)
    (scene,) = result.scenes
    assert scene.choice is not None and scene.choice.by == "review"


def test_a_chain_stitched_here_is_checked_at_its_joins_and_retaken_whole(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_harness: None) -> None:
    # Runway through LiteLLM has no extensions: the chain continues from each clip's last frame, stitched here.
    with run_sandbox(profile="litellm-runway", job_seconds=0.2) as runway:
        point_at(monkeypatch, runway.base_url, runway.api_key, provider="litellm-runway")
        scene = {"id": "chain", "prompt": "a harbour at dawn", "seconds": 5,
                 "extensions": [{"prompt": "the first boat leaves [black]", "seconds": 5}]}
        first = render_plan(parse_plan(plan_of("stitched", scene, defaults={"size": "1280x720"})),
                            output=f"file://{tmp_path}/once")
        (once,) = first.scenes
        assert once.qa == "fail" and {"join", "black"} <= found(once), once.checks  # the second clip starts black
        assert once.checks is not None and next(f for f in once.checks.findings if f.check == "join").at == \
            pytest.approx(5.0, abs=0.1)
        before = jobs(runway)
        again = render_plan(parse_plan(plan_of("stitched", {**scene, "id": "chain2", "prompt": "a quay at dawn",
                                                            "extensions": [{"prompt": "a gull lands [black]",
                                                                            "seconds": 5}]},
                                               defaults={"size": "1280x720"}, qa={"retake": 1})),
                            output=f"file://{tmp_path}/retaken")
        (retaken,) = again.scenes
        assert jobs(runway) - before == 4  # both clips of the chain, twice
        assert retaken.qa == "pass" and len(retaken.rejected) == 1, retaken.checks

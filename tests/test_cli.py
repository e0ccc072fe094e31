"""The command line as a user meets it: one clear line per mistake, real videos, honest exit codes."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reelflow import builtin_profile_names
from reelflow.sandbox import RunningSandbox
from tests.images import awkward_references
from tests.media import probe_video

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("local_prefect_server")


def reelflow(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelflow.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=900)


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_validate_reports_every_problem_in_one_line_each(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: trip\nscenes:\n  - {id: a, prompt: x, model: sora-3}\n  - {id: a, prompt: y, size: 1x1}\n")
    done = reelflow("validate", str(plan))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: {plan}: scene 'a': model: 'sora-3' is not offered by provider 'sandbox' "
        "(choose from sora-2, sora-2-pro)",
        f"error: {plan}: scene 'a': id: duplicate scene id",
        f"error: {plan}: scene 'a': size: 1x1 is not available for sora-2 on sandbox "
        "(choose from 720x1280, 1280x720)",
    ]


def test_validate_says_how_a_length_the_provider_lacks_is_rendered(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: trip\nscenes:\n  - {id: a, prompt: x, seconds: 25}\n")
    done = reelflow("validate", str(plan), env={"REELFLOW_PROVIDER": "litellm-runway"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "note: scene 'a': seconds: 25 s is not one job on litellm-runway (gen4_turbo: 5, 10 s); rendered as 10+10+5 s",
        "note: scene 'a': litellm-runway cannot extend its videos: each continuation is a new clip that starts from "
        "the previous clip's last frame; the clips are stitched here",
        f"{plan}: 1 scenes, 25 s of video on litellm-runway: valid"]


def test_providers_lists_every_profile_and_what_it_can_do(tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("profiles:\n  - {name: my-gateway, extends: litellm, description: the team's gateway}\n")
    env = {"REELFLOW_PROVIDERS_FILE": str(own), "REELFLOW_PROVIDER": "my-gateway"}
    listed = reelflow("providers", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    profiles = {p["name"]: p for p in found["profiles"]}
    assert found["active"] == "my-gateway"
    assert set(profiles) == {*builtin_profile_names(), "my-gateway"}
    assert (profiles["openrouter"]["api"], profiles["openrouter"]["credentials"]["api_key"]) == (
        "openrouter-videos", "OPENROUTER_API_KEY")
    assert profiles["sora"]["extensions"] == {"seconds": [4, 8, 12, 16, 20], "max_count": 6, "max_total_seconds": 120,
                                             "sizes": None}
    runway = profiles["litellm-runway"]
    assert (runway["extensions"], runway["variants"], runway["models"]["gen4_turbo"]["seconds"]) == (None, ["video"],
                                                                                                      [5, 10])
    assert profiles["my-gateway"]["description"] == "the team's gateway"
    table = reelflow("providers", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100 and len(lines) < 30  # a short list, in 100 columns
    assert lines[0].rstrip() == "Provider profiles (* is active: my-gateway, chosen by REELFLOW_PROVIDER)"
    assert re.search(r"^ +\* my-gateway +openai-videos +OPENAI_API_KEY +the team's gateway *$", table.stdout, re.M)
    assert re.search(r"^ +openrouter +openrouter-videos +OPENROUTER_API_KEY +OpenRouter's video API *$", table.stdout,
                     re.M)
    one = reelflow("providers", "litellm-runway", env=env)
    assert one.returncode == 0, one.stderr
    assert re.search(r"│ models +│ gen4_turbo: 1280x720, 720x1280; 5/10 s +│", one.stdout)
    assert re.search(r"│ continuations +│ from the last frame, stitched here +│", one.stdout)
    assert re.search(r"│ downloads +│ video \(thumbnail and spritesheet made here\) +│", one.stdout)
    assert json.loads(reelflow("providers", "fal", "--json", env=env).stdout)["credentials"]["api_key"] == "FAL_KEY"


def test_help_wraps_each_description_as_one_paragraph_and_the_version_is_one_switch() -> None:
    """No description is broken where its source breaks: each line of a wrapped one is as full as the terminal
    allows (the next word would not have fit on it)."""
    done = reelflow("--help", env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    rows = [re.fullmatch(r"│ (\S*) +(.*?) *│", line) for line in done.stdout.splitlines()]
    cells = [(row.group(1), row.group(2)) for row in rows if row and not row.group(1).startswith("-")]
    width = max(len(text) for _, text in cells)
    for (_, text), (command, following) in itertools.pairwise(cells):
        if not command and following:  # `following` continues `text`'s description
            assert len(text) + 1 + len(following.split()[0]) > width, (text, following)
    review = " ".join(text for command, text in cells[next(i for i, (c, _) in enumerate(cells) if c == "review"):][:2])
    assert review == ("Answer the review a run of the plan is paused for: per scene, keep a take, redo it with a "
                      "changed prompt, or drop it. The run then goes on.")
    version = reelflow("--version")
    assert version.returncode == 0 and re.fullmatch(r"reelflow \d+\.\d+\.\d+\S*\n", version.stdout)


def test_validate_accepts_the_demo_plan() -> None:
    done = reelflow("validate", "deployments/plans/demo.yaml")
    assert done.returncode == 0, done.stderr
    assert "3 scenes, 20 s of video on openrouter: valid" in done.stdout  # the plan's own provider


def test_run_without_a_key_uses_the_embedded_sandbox_and_stays_quiet(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    (tmp_path / "wide.jpg").write_bytes(awkward_references()["panorama.jpg"])
    plan.write_text("name: quick\ndefaults: {size: 1280x720}\nscenes:\n"
                    "  - {id: first, prompt: a harbour, image: wide.jpg}\n"
                    "  - {id: second, prompt: a city, extensions: [{prompt: night falls, seconds: 4}]}\n")
    done = reelflow("run", str(plan), "--output", f"file://{tmp_path}/out",
                    env={"REELFLOW_SANDBOX_JOB_SECONDS": "0.2"})
    assert done.returncode == 0, done.stderr
    notice, *progress = done.stderr.strip().splitlines()
    assert notice == ("No provider's credentials are set: rendering test videos on the embedded sandbox on loopback, "
                      "at no cost. To render for real, set FAL_KEY (fal), GEMINI_API_KEY (gemini-omni), "
                      "GOOGLE_API_KEY or GOOGLE_CLOUD_PROJECT (google-vertex), OPENAI_API_KEY with OPENAI_BASE_URL "
                      "(openai-gateway), or OPENROUTER_API_KEY (openrouter).")
    # Not a terminal: progress is plain lines, one per change of stage, in order for each scene.
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    assert [line for line in progress if line.startswith("scene 'first'")][::-1][:2] == [
        "scene 'first': done", "scene 'first': downloading"]
    second = [line.removeprefix("scene 'second': ") for line in progress if line.startswith("scene 'second'")]
    assert second[0] == "queued" and second[-1] == "done"
    assert any(stage.startswith("extending 1/1") for stage in second)
    assert "Estimated total: $1.20 for 12 s of video in 3 jobs" in done.stdout  # what the sandbox would cost on Sora
    assert f"Videos are in file://{tmp_path}/out/quick" in done.stdout
    assert probe_video((tmp_path / "out/quick/second/video.mp4").read_bytes()).seconds == 8.0
    assert size_of(tmp_path / "out/quick/first/reference.jpg") == (1280, 720)


def test_estimate_prints_each_scene_and_the_total_without_any_call(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: costs\ndefaults: {model: sora-2-pro, size: 1280x720}\nscenes:\n"
                    "  - {id: long, seconds: 8, prompt: a road, extensions: [{prompt: a town, seconds: 4}]}\n"
                    "  - {id: tall, size: 1024x1792, seconds: 4, prompt: a face}\n")
    done = reelflow("estimate", str(plan), env={"REELFLOW_PROVIDER": "sora"})
    assert done.returncode == 0, done.stderr
    assert "$3.60" in done.stdout and "$2.00" in done.stdout  # 12 s x $0.30; 4 s x $0.50
    assert "Estimated total: $5.60 for 16 s of video in 3 jobs" in done.stdout


def test_a_plan_over_budget_is_refused_before_any_paid_call(tmp_path: Path, sandbox: RunningSandbox) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: dear\nbudget_usd: 1\nscenes:\n  - {id: a, prompt: x, seconds: 8}\n"
                    "  - {id: b, prompt: y, seconds: 4}\n")
    creates_before = sandbox.stats()["requests"].get("POST /v1/videos", 0)
    done = reelflow("run", str(plan), "--output", f"file://{tmp_path}/out", env={
        "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url, "REELFLOW_PROVIDER": "sandbox"})
    assert done.returncode == 3
    assert done.stderr.strip() == (f"error: {plan}: the estimate $1.20 exceeds the budget $1.00; "
                                   "nothing was submitted")
    assert "Estimated total: $1.20" in done.stdout
    assert sandbox.stats()["requests"].get("POST /v1/videos", 0) == creates_before
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_every_request_and_sends_none(sandbox: RunningSandbox) -> None:
    env = {"OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url, "REELFLOW_PROVIDER": "sandbox"}
    requests_before = sum(sandbox.stats()["requests"].values())
    done = reelflow("run", "deployments/plans/crafted.yaml", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert sum(sandbox.stats()["requests"].values()) == requests_before
    out = done.stdout
    assert out.count("POST /v1/videos\n") == 3 and out.count("POST /v1/videos/extensions\n") == 2
    assert 'video: {"id": "<the video of request 2>"}' in out
    assert "input_reference: reference.jpg (image/jpeg, 1280x720," in out
    for line in (Path(__file__).parent / "snapshots" / "crafted.prompts.txt").read_text().splitlines():
        assert line.startswith("==") or not line or f"         {line}" in out.splitlines(), line
    assert "Estimated total: $2.40 for 24 s of video in 5 jobs" in out
    assert "warning:" not in done.stderr


def test_dry_run_shows_the_reference_a_real_run_sends(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    (tmp_path / "wide.jpg").write_bytes(awkward_references()["panorama.jpg"])
    plan.write_text("name: same\ndefaults: {size: 1280x720}\nscenes:\n"
                    "  - {id: a, prompt: a harbour, image: wide.jpg}\n")
    dry = reelflow("run", str(plan), "--dry-run")
    real = reelflow("run", str(plan), "--output", f"file://{tmp_path}/out", env={"REELFLOW_SANDBOX_JOB_SECONDS": "0.1"})
    assert dry.returncode == 0 and real.returncode == 0, dry.stderr + real.stderr
    sent = (tmp_path / "out/same/a/reference.jpg").read_bytes()
    assert f"{len(sent)} bytes, sha256 {hashlib.sha256(sent).hexdigest()})" in dry.stdout


def test_a_failed_scene_makes_the_exit_code_non_zero(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: mixed\nscenes:\n  - {id: ok, prompt: fine}\n  - {id: nope, prompt: '[blocked] x'}\n")
    done = reelflow("run", str(plan), "--output", f"file://{tmp_path}/out",
                    env={"REELFLOW_SANDBOX_JOB_SECONDS": "0.2"})
    assert done.returncode == 1
    assert "moderation_blocked" in done.stdout and "Traceback" not in done.stderr + done.stdout
    assert (tmp_path / "out/mixed/ok/video.mp4").exists()


def test_prepare_makes_a_folder_of_images_one_size(tmp_path: Path) -> None:
    sources = tmp_path / "in"
    sources.mkdir()
    for name in ("huge.jpg", "portrait.webp", "transparent.png", "cmyk.jpg"):
        (sources / name).write_bytes(awkward_references()[name])
    done = reelflow("prepare", str(sources), "--size", "720x1280", "--mode", "pad", "--out", f"file://{tmp_path}/out")
    assert done.returncode == 0, done.stderr
    assert "4 of 4 images prepared at 720x1280" in done.stdout
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == ["cmyk.jpg", "huge.jpg", "portrait.jpg", "transparent.jpg"]
    assert {size_of(p) for p in outputs} == {(720, 1280)}


def test_a_bad_switch_is_one_line_without_a_traceback() -> None:
    done = reelflow("sandbox", "--faults", "5xx=lots")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: bad fault rate in '5xx=lots': 'lots' is not a number"


def test_the_sandbox_runs_in_the_foreground_until_stopped() -> None:
    import signal

    import openai

    process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "sandbox", "--port", "0", "--job-seconds", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "(profile sandbox, accepting any non-empty key)" in banner
        base_url = banner.split(" serving ")[1].split(" ")[0]
        with openai.OpenAI(api_key="sk-any", base_url=base_url) as client:
            video = client.videos.create(prompt="from the foreground", size="1280x720")
            assert client.videos.poll(video.id, poll_interval_ms=10).status == "completed"
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=20)
    assert process.returncode in (0, 130)  # 130 is Ctrl-C's code, unless SIGINT was inherited as ignored
    assert "Traceback" not in rest


def test_the_sandbox_given_a_key_says_so_and_refuses_any_other() -> None:
    import signal

    import openai

    process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "sandbox", "--port", "0", "--api-key",
                                "sk-only-this"], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "(profile sandbox, accepting only the 1 key given)" in banner
        base_url = banner.split(" serving ")[1].split(" ")[0]
        with openai.OpenAI(api_key="sk-another", base_url=base_url, max_retries=0) as client, pytest.raises(
                openai.AuthenticationError):
            client.videos.list()
        with openai.OpenAI(api_key="sk-only-this", base_url=base_url, max_retries=0) as client:
            assert client.videos.list().data == []
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_a_long_plan_is_estimated_by_kind_of_scene_in_a_run_and_scene_by_scene_on_request(tmp_path: Path) -> None:
    plan = tmp_path / "long.yaml"
    plan.write_text("name: long\nbudget_usd: 0.01\ndefaults: {size: 1280x720}\nscenes:\n" + "".join(
        f"  - {{id: a{n}, prompt: shot {n}, seconds: {8 if n % 3 == 0 else 4}}}\n" for n in range(45)))
    refused = reelflow("run", str(plan), "--output", f"file://{tmp_path}/out")
    assert refused.returncode == 3  # over budget: nothing is sent, the estimate says why
    assert "by kind of scene (45 scenes" in refused.stdout
    assert re.search(r"│ 15 \(a0 \.\.\. a42\) +│ sora-2 │ 1280x720 │ +8 │ +15 │", refused.stdout), refused.stdout
    assert re.search(r"│ 30 \(a1 \.\.\. a44\) +│ sora-2 │ 1280x720 │ +4 │ +30 │", refused.stdout), refused.stdout
    assert "│ a7 " not in refused.stdout
    listed = reelflow("estimate", str(plan))
    assert all(f"│ a{n} " in listed.stdout for n in range(45))


def test_a_long_plans_outcome_lists_only_the_scenes_that_did_not_complete(capsys: pytest.CaptureFixture[str]
                                                                         ) -> None:
    from reelflow.cli import LISTED_SCENES, _print_result
    from reelflow.results import PlanResult, SceneResult

    scenes = [SceneResult(id=f"s{n}", status="failed" if n == 7 else "completed", size="1280x720", seconds=4,
                          error="moderation_blocked" if n == 7 else None) for n in range(LISTED_SCENES + 1)]
    _print_result(PlanResult(plan="long", provider="sandbox", output="file:///out/long", scenes=scenes,
                             estimate_usd=16.4))
    printed = capsys.readouterr().out
    assert re.search(r"│ s7 +│ failed", printed) and "│ s8 " not in printed
    assert f"long on sandbox: {LISTED_SCENES} of {LISTED_SCENES + 1} scenes completed" in printed
    assert "scene 's7' failed: moderation_blocked" in printed

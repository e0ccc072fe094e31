"""OpenRouter's catalog and callbacks, against the sandbox posing as OpenRouter: `reelflow providers --refresh
openrouter` writes a profile of the user's from `GET /api/v1/videos/models`, with which a plan using a model the
built-in profile lacks validates and renders; `reelflow doctor` says how the built-in profile differs from the
catalog; `reelflow webhooks` verifies OpenRouter's signed callbacks (`X-OpenRouter-Signature`) and refuses forged or
stale ones, and a run with REELFLOW_WEBHOOK_URL waits on them."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from flows.render_plan import render_plan
from reelflow import PlanError, load_profile, parse_plan, validate_plan
from reelflow.providers.openrouter_catalog import price_per_second
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from reelflow.webhooks import Inbox, SignatureError, receiver, verify_openrouter
from tests.pipeline.test_openrouter import use_openrouter
from tests.pipeline.test_webhooks import receiving

REPO = Path(__file__).resolve().parents[2]
SECRET = "or-workspace-signing-secret-0123"  # OpenRouter's is any text set in the workspace, not a whsec_ one
NEWER = "google/veo-3.1-lite"  # in the pose's catalog, not in the built-in profile
LITE_PLAN = {"name": "lite", "provider": "openrouter", "defaults": {"size": "1280x720", "seconds": 4},
             "scenes": [{"id": "one", "model": NEWER, "prompt": "a lamp on a desk"}]}


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> str:
    """The header as OpenRouter's own sender example makes it: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t," + body>."""
    stamp = str(int(time.time() if at is None else at))
    return f"t={stamp},v1={hmac.new(secret.encode(), stamp.encode() + b',' + body, hashlib.sha256).hexdigest()}"


def callback(status: str = "completed", job: str = "gen-vid-1-abc") -> bytes:
    return json.dumps({"type": f"video.generation.{status}", "created_at": "2026-12-07T12:00:00Z",
                       "data": {"id": job, "status": status}}).encode()


REFUSED: dict[str, Callable[[], tuple[bytes, str]]] = {
    "forged (body changed after signing)": lambda: (callback().replace(b"abc", b"xyz"), signed(callback())),
    "signed with another secret": lambda: (callback(), signed(callback(), secret="someone-else")),
    "stale (10 minutes old)": lambda: (callback(), signed(callback(), at=time.time() - 600)),
    "from the future": lambda: (callback(), signed(callback(), at=time.time() + 600)),
    "garbled": lambda: (callback(), "v1=deadbeef"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_forged_or_stale_openrouter_callback_is_refused(case: str) -> None:
    body, header = REFUSED[case]()
    with pytest.raises(SignatureError):
        verify_openrouter(body, header, SECRET)
    inbox = Inbox(Storage("memory://or-refused"))
    with TestClient(receiver(SECRET, inbox)) as client:
        answer = client.post("/", content=body, headers={"X-OpenRouter-Signature": header})
    assert answer.status_code == 400, answer.text
    assert inbox.arrived("gen-vid-1-abc") is None and inbox.arrived("gen-vid-1-xyz") is None


def test_each_of_the_four_openrouter_events_is_verified_and_recorded_once() -> None:
    inbox = Inbox(Storage("memory://or-verified"))
    with TestClient(receiver(SECRET, inbox)) as client:
        for status in ("completed", "failed", "cancelled", "expired"):
            body = callback(status, job=f"gen-vid-1-{status}")
            headers = {"X-OpenRouter-Signature": signed(body), "X-OpenRouter-Idempotency-Key": f"k-{status}"}
            assert client.post("/", content=body, headers=headers).json() == {"received": True}
            assert client.post("/", content=body, headers=headers).json()["duplicate"] is True  # a retry
            event = inbox.arrived(f"gen-vid-1-{status}")
            assert event is not None and (event.type, event.id) == (f"video.generation.{status}", f"k-{status}")
        # Standard Webhooks headers cannot be verified with OpenRouter's secret (it is no whsec_ one): refused.
        standard = {"webhook-id": "evt_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,x"}
        assert client.post("/", content=callback(), headers=standard).status_code == 400


def test_prices_are_read_from_the_catalogs_skus() -> None:
    sizes = ["1280x720", "1920x1080", "3840x2160"]
    assert price_per_second({"duration_seconds_with_audio": "0.40", "duration_seconds_with_audio_4k": "0.60",
                             "duration_seconds_without_audio": "0.20"}, sizes, audio=True) == {
        "1280x720": 0.4, "1920x1080": 0.4, "3840x2160": 0.6}
    assert price_per_second({"duration_seconds_with_audio": "0.40", "duration_seconds_without_audio": "0.20"},
                            sizes[:1], audio=False) == {"1280x720": 0.2}
    # cents, per resolution; a price per image input is not one per second and is left out
    assert price_per_second({"cents_per_video_output_second_720p": "3", "cents_per_image_input": "1"}, sizes,
                            audio=False) == {"1280x720": 0.03}
    # per video token: width x height x 24 / 1024 tokens a second
    assert price_per_second({"video_tokens": "0.000007"}, ["1280x720"], audio=True) == {"1280x720": 0.1512}


@pytest.fixture
def pose() -> Iterator[RunningSandbox]:
    with run_sandbox(profile="openrouter", job_seconds=0.2) as running:
        yield running


def reelflow(*args: str, pose: RunningSandbox, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REELFLOW_", "OPENROUTER_"))}
    env.update({"OPENROUTER_API_KEY": "sk-or-v1-test", "OPENROUTER_BASE_URL": pose.base_url,
                "REELFLOW_PROVIDER": "openrouter", **variables})
    return subprocess.run([sys.executable, "-m", "reelflow.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=env)


def test_refresh_writes_a_profile_with_which_a_model_the_built_in_one_lacks_validates_and_renders(
        pose: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    own = tmp_path / "profiles.yaml"
    own.write_text("profiles:\n- {name: mine, extends: sandbox}\n")  # someone's own profile, kept
    done = reelflow("providers", "--refresh", "openrouter", pose=pose, REELFLOW_PROVIDERS_FILE=str(own))
    assert done.returncode == 0, done.stderr
    assert f"Wrote profile 'openrouter' to {own}: 7 models" in done.stdout
    assert pose.stats()["requests"] == {"GET /api/v1/videos/models": 1}
    written = yaml.safe_load(own.read_text())["profiles"]
    assert [entry["name"] for entry in written] == ["mine", "openrouter"]
    lite = written[1]["models"][NEWER]
    assert lite["price_per_second"] == {"1280x720": 0.05, "720x1280": 0.05, "1920x1080": 0.08, "1080x1920": 0.08}
    assert (lite["frames"], lite["passthrough"]) == (["first_frame", "last_frame"], ["negativePrompt",
                                                                                     "personGeneration"])
    assert (lite["continuation"], lite["references"]) == (False, False)
    wan = written[1]["models"]["alibaba/wan-2.7"]
    assert (wan["frames"], wan["audio"]) == (["first_frame"], False)
    # The built-in profile's prices come back through the catalog's SKUs (per token for Seedance, within 2%).
    builtin, refreshed = load_profile("openrouter"), load_profile("openrouter", own)
    for name, limits in builtin.models.items():
        for size, price in limits.price_per_second.items():
            assert refreshed.models[name].price_per_second[size] == pytest.approx(price, rel=0.02), (name, size)

    plan = parse_plan(LITE_PLAN)
    with pytest.raises(PlanError, match=NEWER):
        validate_plan(plan, builtin)
    assert [scene.model for scene in validate_plan(plan, refreshed)] == [NEWER]
    last_frame_on_wan = parse_plan({**LITE_PLAN, "scenes": [{"id": "w", "model": "alibaba/wan-2.7", "seconds": 5,
                                                             "prompt": "x", "last_image": "end.png"}]})
    with pytest.raises(PlanError, match="last"):
        validate_plan(last_frame_on_wan, refreshed)

    use_openrouter(monkeypatch, pose, providers_file=str(own))
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [scene.status for scene in result.scenes] == ["completed"]
    assert [job.model for job in pose.sandbox.state.jobs.values()] == [NEWER]
    assert (tmp_path / "out" / "lite" / "one" / "video.mp4").stat().st_size > 0


def test_refresh_without_a_profile_file_says_where_to_write(pose: RunningSandbox) -> None:
    done = reelflow("providers", "--refresh", "openrouter", pose=pose)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --refresh: give --to FILE or set REELFLOW_PROVIDERS_FILE (where your own "
                                   "profiles live)")


def test_doctor_compares_the_built_in_profile_with_the_live_catalog(tmp_path: Path) -> None:
    """The pose serves a catalog that has moved on: Kling std gone, Veo 3.1 dearer at 720p, two models added."""
    moved = tmp_path / "moved.yaml"
    builtin = load_profile("openrouter")
    veo = builtin.models["google/veo-3.1"].model_dump(mode="json", exclude_defaults=True)
    veo["price_per_second"] = {**veo["price_per_second"], "1280x720": 0.45, "720x1280": 0.45}
    models = {name: limits.model_dump(mode="json", exclude_defaults=True) for name, limits in builtin.models.items()
              if name != "kwaivgi/kling-v3.0-std"}
    moved.write_text(yaml.safe_dump({"name": "openrouter", "extends": "openrouter",
                                     "models": {**models, "google/veo-3.1": veo}}))
    with run_sandbox(profile="openrouter", providers_file=moved, job_seconds=0) as pose:
        done = reelflow("doctor", "--output", f"file://{tmp_path}/out", pose=pose)
        assert not [job for job in pose.sandbox.state.jobs.values()]  # nothing created
    lines = [line for line in done.stdout.splitlines() if "openrouter catalog" in line]
    assert lines == [
        "passed   openrouter catalog: 2 models listed that the built-in openrouter profile lacks: google/veo-3.1-lite, "
        "alibaba/wan-2.7 (`reelflow providers --refresh openrouter` writes a profile with them)",
        "degraded openrouter catalog: no longer listed, though the built-in openrouter profile has them: "
        "kwaivgi/kling-v3.0-std",
        "degraded openrouter catalog: prices changed since the built-in openrouter profile: google/veo-3.1: "
        "1280x720 0.4 -> 0.45, 720x1280 0.4 -> 0.45"], done.stdout


@pytest.fixture
def callback_receiver(tmp_path: Path, local_prefect_server: str) -> Iterator[tuple[str, str]]:
    """`reelflow webhooks` with OpenRouter's workspace secret, in its own process; yields its URL and inbox."""
    with receiving(tmp_path, SECRET) as listening:
        yield listening


def test_a_run_on_openrouter_waits_on_its_signed_callbacks(
        callback_receiver: tuple[str, str], monkeypatch: pytest.MonkeyPatch, prefect_harness: None,
        tmp_path: Path) -> None:
    url, inbox = callback_receiver
    with run_sandbox(profile="openrouter", job_seconds=1.0, webhook_secret=SECRET) as pose:
        use_openrouter(monkeypatch, pose, webhook_secret=SECRET, webhook_url=url, webhook_inbox=inbox,
                       webhook_fallback_seconds="600")
        plan = parse_plan({"name": "told", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
            {"id": "one", "prompt": "a harbour"}, {"id": "two", "prompt": "a pier"}]})
        result = render_plan(plan, output=f"file://{tmp_path}/out")
        stats = pose.stats()
        jobs = list(pose.sandbox.state.jobs.values())
    assert [s.status for s in result.scenes] == ["completed"] * 2
    assert [job.request["callback_url"] for job in jobs] == [url, url]
    assert stats["webhooks"]["delivered"] == len(jobs) == 2
    assert stats["requests"]["GET /api/v1/videos/{id}"] <= len(jobs)  # one check per video, after its callback
    recorded = Inbox(Storage(inbox))
    events = [recorded.arrived(job.id) for job in jobs]
    assert [event.type if event else None for event in events] == ["video.generation.completed"] * 2

    body = callback(job="gen-vid-1-forged")  # and a forged one, end to end: refused, not recorded
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-OpenRouter-Signature": signed(body, secret="guessed")})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()  # (its response holds the connection's socket)
    assert refused.value.code == 400
    assert recorded.arrived("gen-vid-1-forged") is None

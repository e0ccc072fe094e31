"""Webhooks instead of polling: the sandbox signs `video.completed` events, `reelflow webhooks` verifies and
records them (refusing forged, re-signed and stale ones), and a run waits on them: one status check per
video, when its event has arrived."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from flows.render_plan import render_plan
from reelflow import ReelflowError, parse_plan
from reelflow.sandbox import RunningSandbox, run_sandbox
from reelflow.storage import Storage
from reelflow.webhooks import Inbox, VideoEvent, receiver
from tests.conftest import free_port, wait_until
from tests.media import probe_video
from tests.pipeline.conftest import point_at

SECRET = "whsec_" + base64.b64encode(b"reelflow-webhooks-0123456789abcd").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode()


def signed(event_type: str = "video.completed", video_id: str = "video_abc", secret: str = SECRET,
           at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    stamp = at or datetime.now(UTC)
    body = json.dumps({"id": "evt_1", "object": "event", "created_at": int(stamp.timestamp()),
                       "type": event_type, "data": {"id": video_id}})
    return body.encode(), {"webhook-id": "evt_1", "webhook-timestamp": str(int(stamp.timestamp())),
                           "webhook-signature": Webhook(secret).sign("evt_1", stamp, body),
                           "content-type": "application/json"}


def tampered() -> tuple[bytes, dict[str, str]]:
    body, headers = signed()
    return body.replace(b"video_abc", b"video_xyz"), headers


def garbled_signature() -> tuple[bytes, dict[str, str]]:
    body, headers = signed()
    return body, {**headers, "webhook-signature": "garbage-without-a-version"}


def not_utf8() -> tuple[bytes, dict[str, str]]:
    _, headers = signed()
    return b"\xff\xfe\x00 not text", headers


REFUSED: dict[str, Callable[[], tuple[bytes, dict[str, str]]]] = {
    "forged (body changed after signing)": tampered,
    "re-signed with another secret": lambda: signed(secret=OTHER_SECRET),
    "stale (10 minutes old)": lambda: signed(at=datetime.now(UTC) - timedelta(minutes=10)),
    "from the future": lambda: signed(at=datetime.now(UTC) + timedelta(minutes=10)),
    "unsigned": lambda: (signed()[0], {"content-type": "application/json"}),
    "a garbled signature header": garbled_signature,
    "a body that is not text": not_utf8,
}


@pytest.fixture
def inbox() -> Inbox:
    return Inbox(Storage("memory://webhooks"))


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_receiver_refuses_what_the_provider_did_not_sign(case: str, inbox: Inbox) -> None:
    body, headers = REFUSED[case]()
    with TestClient(receiver(SECRET, inbox)) as client:
        answer = client.post("/", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert inbox.arrived("video_abc") is None and inbox.arrived("video_xyz") is None


def test_the_receiver_records_video_events_and_accepts_others(inbox: Inbox) -> None:
    announced: list[VideoEvent] = []
    with TestClient(receiver(SECRET, inbox, announced.append)) as client:
        assert client.post("/", content=signed()[0], headers=signed()[1]).status_code == 200
        other_body, other_headers = signed(event_type="batch.completed", video_id="video_other")
        assert client.post("/", content=other_body, headers=other_headers).status_code == 200
    event = inbox.arrived("video_abc")
    assert event is not None and (event.type, event.id) == ("video.completed", "evt_1")
    assert inbox.arrived("video_other") is None
    assert [e.video_id for e in announced] == ["video_abc"]


@pytest.fixture
def webhook_receiver(tmp_path: Path, local_prefect_server: str) -> Iterator[tuple[str, str]]:
    """`reelflow webhooks` in its own process; yields its URL and its inbox."""
    with receiving(tmp_path, SECRET) as listening:
        yield listening


@contextlib.contextmanager
def receiving(tmp_path: Path, secret: str) -> Iterator[tuple[str, str]]:
    """`reelflow webhooks` with this secret, in its own process, until the block ends: its URL and its inbox."""
    port, folder = free_port(), f"file://{tmp_path}/inbox"
    env = {**os.environ, "REELFLOW_WEBHOOK_SECRET": secret}
    process = subprocess.Popen([sys.executable, "-m", "reelflow.cli", "webhooks", "--port", str(port), "--inbox",
                                folder], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_listener(url, process)
        yield url, folder
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        assert "Traceback" not in errors, errors


def wait_for_listener(url: str, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=2)
        except urllib.error.HTTPError as answered:
            answered.close()  # (its response holds the connection's socket)
            return  # it answers (400: unsigned)
        except OSError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "reelflow webhooks never listened"
            time.sleep(0.2)


@pytest.fixture
def signing_provider(webhook_receiver: tuple[str, str]) -> Iterator[RunningSandbox]:
    url, _ = webhook_receiver
    with run_sandbox(job_seconds=1.0, webhook_url=url, webhook_secret=SECRET) as running:
        yield running


def test_a_run_with_webhooks_checks_each_video_once(signing_provider: RunningSandbox,
                                                   webhook_receiver: tuple[str, str], local_prefect_server: str,
                                                   monkeypatch: pytest.MonkeyPatch, prefect_harness: None,
                                                   tmp_path: Path) -> None:
    _, inbox = webhook_receiver
    point_at(monkeypatch, signing_provider.base_url, signing_provider.api_key, webhook_secret=SECRET,
             webhook_inbox=inbox)
    plan = parse_plan({"name": "told", "defaults": {"size": "1280x720", "seconds": 4}, "scenes": [
        {"id": "one", "prompt": "a harbour"}, {"id": "two", "prompt": "a pier"},
        {"id": "three", "prompt": "a lighthouse", "extensions": [{"prompt": "night falls", "seconds": 4}]}]})
    result = render_plan(plan, output=f"file://{tmp_path}/out")
    assert [s.status for s in result.scenes] == ["completed"] * 3
    stats = signing_provider.stats()
    videos = stats["jobs"]
    assert videos == 4
    assert stats["webhooks"]["delivered"] == videos
    assert stats["requests"]["GET /v1/videos/{id}"] <= videos  # one check per video, after its event
    assert probe_video((tmp_path / "out" / "told" / "three" / "video.mp4").read_bytes()).seconds == 8.0
    # The receiver also told Prefect: one event per video, for automations and the UI's event feed.
    assert wait_until(lambda: len(prefect_events(local_prefect_server, "reelflow.video.completed")) >= videos)


def prefect_events(api: str, name: str) -> list[dict[str, object]]:
    request = urllib.request.Request(f"{api}/events/filter", method="POST", headers={
        "Content-Type": "application/json"}, data=json.dumps({"filter": {"event": {"name": [name]}},
                                                               "limit": 50}).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        events: list[dict[str, object]] = json.load(answer)["events"]
    return events


def test_webhooks_on_a_provider_that_sends_none_are_refused_before_any_call(
        monkeypatch: pytest.MonkeyPatch, prefect_harness: None, tmp_path: Path) -> None:
    with run_sandbox(profile="litellm-runway", job_seconds=0) as narrow:
        point_at(monkeypatch, narrow.base_url, narrow.api_key, provider="litellm-runway", webhook_secret=SECRET)
        with pytest.raises(ReelflowError, match="provider 'litellm-runway' sends no webhooks"):
            render_plan(parse_plan({"name": "p", "scenes": [{"id": "a", "prompt": "x"}]}),
                        output=f"file://{tmp_path}")
        assert narrow.stats()["requests"] == {}

"""Signed webhooks that the SDK verifies, and jobs that survive a restart with --state-dir."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest

from reelflow.sandbox import run_sandbox
from tests.conftest import sdk
from tests.media import probe_video

SECRET = "whsec_" + base64.b64encode(b"reelflow-test-secret-0123456789ab").decode()


class Receiver:
    """A webhook endpoint on loopback that records events and can refuse the first few."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.events: list[tuple[bytes, dict[str, str]]] = []
        self.refusals_left = refuse_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.refusals_left > 0:
                    receiver.refusals_left -= 1
                    self.send_response(503)
                else:
                    receiver.events.append((body, dict(self.headers.items())))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.events) >= count, f"only {len(self.events)} of {count} webhooks arrived"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(refuse_first=1)
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_completed_and_failed_jobs_send_signed_events(receiver: Receiver) -> None:
    with run_sandbox(job_seconds=0.2, webhook_url=receiver.url, webhook_secret=SECRET) as running:
        client = sdk(running)
        done = client.videos.create(prompt="fine")
        blocked = client.videos.create(prompt="not fine [blocked]")
        receiver.wait_for(2)
        events = {}
        for body, headers in receiver.events:
            event = client.webhooks.unwrap(body, headers, secret=SECRET)
            events[event.data.id] = event.type  # type: ignore[union-attr]
        assert events == {done.id: "video.completed", blocked.id: "video.failed"}
        assert running.stats()["webhooks"]["attempts"] == 3  # the refused first delivery was retried


def test_events_signed_with_another_secret_do_not_verify(receiver: Receiver) -> None:
    with run_sandbox(job_seconds=0, webhook_url=receiver.url, webhook_secret=SECRET) as running:
        client = sdk(running)
        client.videos.create(prompt="fine")
        receiver.wait_for(1)
        body, headers = receiver.events[0]
        other = "whsec_" + base64.b64encode(b"some-other-secret-0123456789abcd").decode()
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(body, headers, secret=other)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(body.replace(b"completed", b"failed"), headers, secret=SECRET)


def test_jobs_and_media_survive_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    with run_sandbox(job_seconds=0, state_dir=tmp_path) as first:
        client = sdk(first)
        video = client.videos.create(prompt="keep me", size="1280x720", seconds="8")
        mp4 = client.videos.download_content(video.id).read()
        pending = sdk(first).videos.create(prompt="finishes later")
    with run_sandbox(job_seconds=0, state_dir=tmp_path) as second:
        client = sdk(second)
        assert client.videos.retrieve(video.id).status == "completed"
        assert client.videos.download_content(video.id).read() == mp4
        assert {v.id for v in client.videos.list()} >= {video.id, pending.id}
        assert probe_video(mp4).seconds == 8.0


def test_unfinished_jobs_keep_their_clock_across_a_restart(tmp_path: Path) -> None:
    with run_sandbox(job_seconds=1.5, state_dir=tmp_path) as first:
        video = sdk(first).videos.create(prompt="slow")
    with run_sandbox(job_seconds=30, state_dir=tmp_path) as second:
        client = sdk(second)
        assert client.videos.retrieve(video.id).status in ("queued", "in_progress")
        assert client.videos.poll(video.id, poll_interval_ms=100).status == "completed"

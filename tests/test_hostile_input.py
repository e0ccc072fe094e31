"""Hostile input, each as the failure it once was: a plan that exhausted memory, a crafted id that climbed
out of its folder, a webhook flood, a duplicate key that silently won, control characters on the terminal."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from reelflow import PlanError, load_plan
from reelflow.storage import Storage
from reelflow.webhooks import MAX_BODY_BYTES, Inbox, VideoEvent, receiver
from tests.conftest import free_port
from tests.pipeline.test_webhooks import SECRET

REPO = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 768 * 2**20  # a validate needs about 60 MB; the old length search took 3 GB for 10**6 s
HOSTILE_SECONDS = ["1000000", "100000000000000000000"]


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def plan_file(tmp_path: Path, body: str) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: hostile\nscenes:\n{body}")
    return plan


@pytest.mark.parametrize("seconds", HOSTILE_SECONDS)
@pytest.mark.parametrize("command", [["validate"], ["estimate"], ["run", "--dry-run"], ["run"]])
def test_a_huge_length_is_refused_at_once_in_bounded_memory(tmp_path: Path, seconds: str, command: list[str]) -> None:
    """`seconds: 1000000` raised MemoryError at 3 GB; `seconds: 10**20` took 24 GB until the kernel killed it."""
    plan = plan_file(tmp_path, f"  - {{id: long, prompt: x, seconds: {seconds}}}\n")
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", *command, str(plan)], capture_output=True,
                          text=True, cwd=REPO, preexec_fn=limited, timeout=60)
    assert done.returncode == 2, done.stderr
    shown = f"{seconds} s" if len(seconds) < 10 else "more than a billion seconds"
    assert done.stderr.splitlines() == [
        f"error: {plan}: scene 'long': seconds: the scene would be {shown} long; at most 600 s on sandbox"]


def test_a_huge_chain_of_extensions_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "  - id: long\n    prompt: x\n    extensions:\n"
                     + "      - {prompt: y, seconds: 99999999999}\n" * 50)
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "validate", str(plan)], capture_output=True,
                          text=True, cwd=REPO, preexec_fn=limited, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: {plan}: scene 'long': extensions: the scene would be more than a "
                                        "billion seconds long; at most 600 s on sandbox"]


def test_a_repeated_key_is_an_error_not_the_last_value(tmp_path: Path) -> None:
    """`seconds: 4` then `seconds: 40` on one scene silently rendered 40 s."""
    plan = plan_file(tmp_path, "  - id: a\n    prompt: x\n    seconds: 4\n    seconds: 40\n")
    with pytest.raises(PlanError) as raised:
        load_plan(str(plan))
    assert raised.value.problems == [f"{plan}: not valid YAML/JSON (line 6, column 5): duplicate key 'seconds'"]


def test_a_repeated_key_in_a_json_plan_is_an_error_too(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"name": "p", "name": "q", "scenes": [{"id": "a", "prompt": "x"}]}')
    with pytest.raises(PlanError, match="duplicate key 'name'"):
        load_plan(str(plan))


def test_dry_run_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    """A prompt holding an escape sequence (or a bidi override) was printed raw and acted on the terminal."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "p", "scenes": [{"id": "a", "prompt": "red \x1b[31mALERT\x1b[0m \u202etxt"}]}))
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", "--dry-run", str(plan)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    assert "red \\x1b[31mALERT\\x1b[0m \\u202etxt" in done.stdout


def test_an_image_url_that_cannot_be_reached_is_not_called_missing(tmp_path: Path) -> None:
    """A port that refused connections was reported as "does not exist"."""
    url = f"http://127.0.0.1:{free_port()}/harbor.jpg"
    plan = plan_file(tmp_path, f"  - {{id: a, prompt: x, image: '{url}'}}\n")
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "validate", str(plan)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {plan}: scene 'a': image: {url} cannot be read: ") and "Connect call failed" in line


# -- the webhook receiver ---------------------------------------------------------------------------------


def delivery(video_id: str, event_id: str = "evt_1", padding: str = "") -> tuple[bytes, dict[str, str]]:
    stamp = datetime.now(UTC)
    body = json.dumps({"id": event_id, "object": "event", "created_at": int(stamp.timestamp()),
                       "type": "video.completed", "data": {"id": video_id}, "padding": padding})
    return body.encode(), {"webhook-id": event_id, "webhook-timestamp": str(int(stamp.timestamp())),
                           "webhook-signature": Webhook(SECRET).sign(event_id, stamp, body),
                           "content-type": "application/json"}


def test_a_signed_event_whose_id_climbs_out_stays_in_the_inbox(tmp_path: Path) -> None:
    """A signed event with `data.id: ../../escape` was written outside the inbox."""
    inbox = Inbox(Storage(f"file://{tmp_path}/inbox"))
    with TestClient(receiver(SECRET, inbox)) as client:
        assert client.post("/", content=delivery("../../escape")[0], headers=delivery("../../escape")[1]
                           ).status_code == 200
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.parent == tmp_path / "inbox" for p in written), written
    event = inbox.arrived("../../escape")
    assert event is not None and event.video_id == "../../escape"


def test_a_very_long_id_is_recorded_not_answered_with_500(tmp_path: Path) -> None:
    """A 5,000-character id made the receiver answer 500, and the provider then retried forever."""
    inbox, long_id = Inbox(Storage(f"file://{tmp_path}/inbox")), "video_" + "x" * 5000
    body, headers = delivery(long_id)
    with TestClient(receiver(SECRET, inbox)) as client:
        assert client.post("/", content=body, headers=headers).status_code == 200
    assert inbox.arrived(long_id) is not None


def test_a_retried_delivery_is_recorded_and_announced_once(tmp_path: Path) -> None:
    inbox, announced = Inbox(Storage(f"file://{tmp_path}/inbox")), list[VideoEvent]()
    body, headers = delivery("video_abc")
    with TestClient(receiver(SECRET, inbox, announced.append)) as client:
        answers = [client.post("/", content=body, headers=headers).json() for _ in range(3)]
        other_body, other_headers = delivery("video_abc", event_id="evt_2")
        assert client.post("/", content=other_body, headers=other_headers).status_code == 200
    assert answers == [{"received": True}, {"received": True, "duplicate": True}, {"received": True, "duplicate": True}]
    assert [e.id for e in announced] == ["evt_1", "evt_2"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    inbox = Inbox(Storage(f"file://{tmp_path}/inbox"))
    body, headers = delivery("video_big", padding="x" * MAX_BODY_BYTES)
    with TestClient(receiver(SECRET, inbox)) as client:
        assert client.post("/", content=body, headers=headers).status_code == 413
        streamed = client.post("/", content=iter([body[:1000], body[1000:]]),
                               headers={k: v for k, v in headers.items() if k != "content-length"})
        assert streamed.status_code == 413
    assert inbox.arrived("video_big") is None

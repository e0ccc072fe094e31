"""Real failures, each as the story it once was: another output's job adopted, a SIGTERM traceback, an S3
output without credentials, a full disk that left temporaries behind, an outage the console kept quiet about."""

from __future__ import annotations

import os
import pty
import re
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.render_plan import render_plan
from reelflow import parse_plan
from reelflow.sandbox import Faults, RunningSandbox, run_sandbox
from tests.conftest import wait_until
from tests.pipeline.conftest import point_at

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "deployments" / "plans" / "demo.yaml"
TAKE = {"name": "take", "defaults": {"size": "1280x720"}, "scenes": [
    {"id": f"shot{i}", "prompt": f"the same shot {i} of the harbour"} for i in range(3)]}


def test_a_new_output_never_adopts_the_job_another_output_made(monkeypatch: pytest.MonkeyPatch,
                                                               prefect_harness: None) -> None:
    """The same plan rendered to outB shortly after outA, with server errors on its creates: the retry's
    search for a lost answer found outA's job (same prompt, size and seconds) and outB silently got
    outA's video, paying for no new generation."""
    with run_sandbox(job_seconds=0.2) as sandbox:
        point_at(monkeypatch, sandbox.base_url, sandbox.api_key, task_retries="10")
        first = render_plan(parse_plan(TAKE), output="memory://outA")
        sandbox.sandbox.config = sandbox.sandbox.config.model_copy(
            update={"faults": Faults.parse("5xx=0.5"), "fault_scope": "creates"})
        second = render_plan(parse_plan(TAKE), output="memory://outB")
        stats = sandbox.stats()
    assert stats["faults"]["5xx"] >= 1  # the story happened: creates failed and were retried
    taken_a = {job for scene in first.scenes for job in scene.job_ids}
    taken_b = {job for scene in second.scenes for job in scene.job_ids}
    assert len(taken_a) == len(taken_b) == 3 and not taken_a & taken_b
    assert stats["jobs_by_kind"] == {"create": 6}


def cli_env(sandbox: RunningSandbox, **settings: str) -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": sandbox.api_key, "OPENAI_BASE_URL": sandbox.base_url,
            "REELFLOW_PROVIDER": "sandbox", "REELFLOW_POLL_MIN_SECONDS": "0.1", **settings}


def run_command(output: Path) -> list[str]:
    return [sys.executable, "-m", "reelflow.cli", "run", str(DEMO), "--output", f"file://{output}"]


def terminated_while_downloading(sandbox: RunningSandbox, start: Callable[[], subprocess.Popen[bytes]]
                                 ) -> subprocess.Popen[bytes]:
    victim = start()
    assert wait_until(lambda: sandbox.stats()["requests"].get("GET /v1/videos/{id}/content", 0) > 0
                      or victim.poll() is not None, seconds=300, every=0.02)
    assert victim.poll() is None, "the run ended before its downloads"
    victim.send_signal(signal.SIGTERM)
    return victim


def test_sigterm_while_downloading_without_a_terminal_is_one_line_and_143(tmp_path: Path,
                                                                          local_prefect_server: str) -> None:
    """Under CI, `docker stop` or systemd, SIGTERM during downloads printed a 119-line BaseExceptionGroup /
    TerminationSignal traceback and exited 1."""
    with run_sandbox(job_seconds=0.5) as sandbox:
        victim = terminated_while_downloading(sandbox, lambda: subprocess.Popen(
            run_command(tmp_path / "out"), env=cli_env(sandbox), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        _, errors = victim.communicate(timeout=120)
    text = errors.decode()
    assert victim.returncode == 143, text
    assert "Traceback" not in text and "TerminationSignal" not in text
    assert text.splitlines()[-1] == ("error: stopped by SIGTERM; what was paid for is recorded: run the same command "
                                     "again to resume")
    assert not list((tmp_path / "out").rglob("*.part-*"))


def test_sigterm_while_downloading_on_a_terminal_is_one_line_and_143(tmp_path: Path,
                                                                     local_prefect_server: str) -> None:
    leader, follower = pty.openpty()
    seen = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    with run_sandbox(job_seconds=0.5) as sandbox:
        victim = terminated_while_downloading(sandbox, lambda: subprocess.Popen(
            run_command(tmp_path / "out"), env={**cli_env(sandbox), "TERM": "xterm", "COLUMNS": "120"},
            stdin=follower, stdout=follower, stderr=follower))
        victim.wait(timeout=120)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert victim.returncode == 143, text
    assert "Traceback" not in text and "TerminationSignal" not in text
    assert "error: stopped by SIGTERM; what was paid for is recorded" in text


def test_an_s3_output_without_credentials_is_one_line(tmp_path: Path, moto_s3: str, sandbox: RunningSandbox,
                                                      local_prefect_server: str) -> None:
    """An s3:// output with no credentials printed a 114-line NoCredentialsError traceback."""
    env = {key: value for key, value in cli_env(sandbox).items() if not key.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               REELFLOW_STORAGE_OPTIONS=f'{{"endpoint_url": "{moto_s3}"}}')
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(DEMO), "--output", "s3://reels/nocreds"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == ("error: cannot look at s3://reels/nocreds/demo/ledger: Unable "
                                            "to locate credentials (NoCredentialsError)")


def file_size_limit(limit: int) -> Callable[[], None]:
    """A disk that fills up after `limit` bytes of any one file (RLIMIT_FSIZE: writes past it fail with EFBIG,
    as they would with ENOSPC)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_fails_scenes_cleanly_and_leaves_no_temporaries(tmp_path: Path, sandbox: RunningSandbox,
                                                                     local_prefect_server: str) -> None:
    """A full disk left `*.part-*` temporaries behind, 21 in one run, and a later successful run kept them."""
    output = tmp_path / "out"
    # (no bytecode written under the limit: Python would keep a cut-off .pyc, and the next run fail to import)
    full = subprocess.run(run_command(output), env=cli_env(sandbox, PYTHONDONTWRITEBYTECODE="1"), capture_output=True,
                          text=True, timeout=600, preexec_fn=file_size_limit(30_000))
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr and "Traceback" not in full.stdout
    assert "File too large" in full.stdout  # each failed scene says why, in the summary
    assert not list(output.rglob("*.part-*"))
    again = subprocess.run(run_command(output), env=cli_env(sandbox), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert not list(output.rglob("*.part-*"))
    assert (output / "demo" / "reel.mp4").stat().st_size > 30_000


def test_an_outage_is_shown_with_its_start_and_its_end(tmp_path: Path, local_prefect_server: str) -> None:
    """During a provider outage the console said nothing until the run gave up. (A provider that answers 5xx:
    one that cannot be reached at all stops the run at once, tests/test_unreachable_provider.py.)"""
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: outage\nscenes:\n  - {id: a, prompt: x, size: 1280x720}\n")
    # seed 4's draws are 0.236, 0.103, 0.396: the first two creates answer 500, the third goes through
    with run_sandbox(job_seconds=0.2, faults="5xx=0.3", fault_scope="creates", seed=4) as failing:
        done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output",
                               f"file://{tmp_path}"], capture_output=True, text=True, timeout=300, env={
            **os.environ, "OPENAI_API_KEY": failing.api_key, "OPENAI_BASE_URL": failing.base_url,
            "REELFLOW_PROVIDER": "sandbox", "REELFLOW_RETRY_DELAYS_SECONDS": "[1]", "REELFLOW_POLL_MIN_SECONDS": "0.1"})
        faults = failing.stats()["faults"]
    lines = done.stderr.splitlines()
    assert done.returncode == 0, lines
    assert faults == {"5xx": 2}
    waiting = next(line for line in lines if line.startswith("provider: "))
    assert re.fullmatch(r"provider: waiting for the provider since \d\d:\d\d:\d\d \(create a video: 500 The server "
                        r"had an error while processing your request\. Sorry about that!\); retrying", waiting), waiting
    assert lines.index("provider: answering again") > lines.index(waiting)
    assert lines.index("provider: answering again") < lines.index("scene 'a': done")

"""Dialects are plugins: one a third party installs (here a tiny fake, through the entry-point group) is used
by `REELFLOW_PROVIDER` without touching reelflow's code; and what flows, tasks, deployments and benchmarks
import from reelflow is its public API."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reelflow import ProfileError, load_profile
from reelflow.providers import ENTRY_POINT_GROUP, check_capabilities, dialect, known_dialects
from tests.media import probe_video

REPO = Path(__file__).resolve().parent.parent
FAKE_DIALECT = '''
"""A third party's dialect: jobs finish at once, their videos made here (with the sandbox's media engine)."""
import contextlib
import itertools

from reelflow.providers import Body, Capabilities, JobState, WireRequest
from reelflow.sandbox import Recipe, Segment, render


class FakeDialect:
    dialect = "fake-dialect"
    capabilities = Capabilities(variants=("video",))

    def __init__(self, config):
        self.videos, self.ids = {}, itertools.count(1)

    async def submit(self, job):
        job_id = f"fake-{next(self.ids)}"
        width, height = map(int, job.size.split("x"))
        recipe = Recipe(size=(width, height), segments=[Segment(seconds=job.seconds, seed=job.prompt)])
        self.videos[job_id] = render(recipe, lambda key: b"").video
        return JobState(id=job_id, status="queued")

    async def poll(self, job_id):
        return JobState(id=job_id, status="completed", progress=100)

    @contextlib.asynccontextmanager
    async def download(self, job, variant):
        data = self.videos[job.id]

        async def chunks():
            yield data

        yield Body(chunks(), len(data), lambda: len(data))

    async def find_lost(self, job, since, exclude):
        return None

    async def create_character(self, name, clip):
        raise NotImplementedError

    @classmethod
    def describe(cls, job):
        return WireRequest("FAKE create", {"prompt": job.prompt, "seconds": job.seconds})

    @classmethod
    def describe_followup(cls, variants):
        return "nothing to wait for"

    async def close(self):
        pass
'''
FAKE_PROFILE = """\
name: fake
api: fake-dialect
description: a third party's provider
base_url: fake://local
credentials: {api_key: FAKE_API_KEY}
default_model: tiny
default_size: 320x180
default_seconds: 2
reference_formats: [JPEG]
models:
  tiny: {sizes: [320x180], seconds: [2], price_per_second: {320x180: 0.01}}
list_jobs: false
"""


def installed_plugin(folder: Path) -> Path:
    """The fake dialect as an installed distribution declaring its entry point (what pip would write)."""
    folder.mkdir()
    (folder / "fake_dialect.py").write_text(FAKE_DIALECT)
    info = folder / "fake_reelflow_dialect-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-reelflow-dialect\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nfake-dialect = fake_dialect:FakeDialect\n")
    return folder


def test_a_dialect_from_the_entry_point_group_renders_a_plan(tmp_path: Path, local_prefect_server: str) -> None:
    plugins = installed_plugin(tmp_path / "site")
    profiles, plan = tmp_path / "providers.yaml", tmp_path / "plan.yaml"
    profiles.write_text(FAKE_PROFILE)
    plan.write_text("name: plugged\nscenes:\n  - {id: a, prompt: one}\n  - {id: b, prompt: two, seconds: 4}\n")
    env = {**os.environ, "PYTHONPATH": f"{plugins}{os.pathsep}{REPO}", "REELFLOW_PROVIDERS_FILE": str(profiles),
           "REELFLOW_PROVIDER": "fake", "FAKE_API_KEY": "fake-key"}
    listed = subprocess.run([sys.executable, "-m", "reelflow.cli", "providers", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert '"api": "fake-dialect"' in listed.stdout, listed.stderr
    done = subprocess.run([sys.executable, "-m", "reelflow.cli", "run", str(plan), "--output", f"file://{tmp_path}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for scene, seconds in (("a", 2), ("b", 4)):  # b: 4 s is two of the fake's 2 s clips, stitched here
        info = probe_video((tmp_path / "plugged" / scene / "video.mp4").read_bytes())
        assert (info.size, round(info.seconds)) == ((320, 180), seconds)


def test_an_unknown_dialect_names_the_known_ones_and_the_entry_point_group() -> None:
    with pytest.raises(ProfileError) as refused:
        dialect("nowhere-videos")
    assert "openai-videos" in str(refused.value) and ENTRY_POINT_GROUP in str(refused.value)
    assert {"openai-videos", "openrouter-videos"} <= set(known_dialects())


def test_a_profile_cannot_switch_on_what_its_dialect_cannot_do(tmp_path: Path) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: remixing-router\nextends: openrouter\nremix: true\nbatch: true\n")
    with pytest.raises(ProfileError, match="cannot do remix, batch"):
        check_capabilities(load_profile("remixing-router", own), dialect("openrouter-videos"))


def private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
        found += [f"{path.relative_to(REPO)}:{node.lineno}: {name}" for name in names
                  if name.startswith("reelflow") and any(part.startswith("_") for part in name.split("."))]
    return found


def test_flows_tasks_deployments_and_benchmarks_import_only_public_reelflow() -> None:
    files = [p for folder in ("flows", "tasks", "deployments", "bench") for p in (REPO / folder).rglob("*.py")]
    assert len(files) > 20
    assert [hit for path in files for hit in private_imports(path)] == []

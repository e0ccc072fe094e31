"""The provider is the user's: REELFLOW_PROVIDER, else the plan's `provider:`, else the one provider whose
credentials are set, else the sandbox; each key alone picks its provider and the run's first line says so; a key
that reaches no video API, or the keys of several providers, are one line each; Vertex express mode runs on a
key alone; `validate` refuses what a run would miss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from reelflow import ProfileError, Settings, UserError, load_profile, parse_plan
from reelflow.providers import ProviderConfig, announcement, choose_provider, provider_access
from reelflow.sandbox import run_sandbox

REPO = Path(__file__).resolve().parent.parent
SANDBOX_LINE = ("No provider's credentials are set: rendering test videos on the embedded sandbox on loopback, at no "
                "cost. To render for real, set FAL_KEY (fal), GEMINI_API_KEY (gemini-omni), GOOGLE_API_KEY or "
                "GOOGLE_CLOUD_PROJECT (google-vertex), OPENAI_API_KEY with OPENAI_BASE_URL (openai-gateway), or "
                "OPENROUTER_API_KEY (openrouter).")


def first_line(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, planned: str | None = None) -> str:
    """The line a run of a plan (naming `planned`, or no provider) starts with, in `environment`."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    choice = choose_provider(settings, planned)
    return announcement(choice, provider_access(settings, choice.profile), settings)


@pytest.mark.parametrize(("environment", "line"), [
    ({"OPENROUTER_API_KEY": "sk-or-v1-x"},
     "Rendering on 'openrouter' at https://openrouter.ai/api/v1 (chosen by OPENROUTER_API_KEY)."),
    ({"FAL_KEY": "fal-id:secret"}, "Rendering on 'fal' at https://queue.fal.run (chosen by FAL_KEY)."),
    ({"GOOGLE_CLOUD_PROJECT": "film-123", "GOOGLE_CLOUD_LOCATION": "us-central1"},
     "Rendering on 'google-vertex' at project film-123 in us-central1 (chosen by GOOGLE_CLOUD_PROJECT)."),
    ({"GOOGLE_API_KEY": "AQ.express"},
     "Rendering on 'google-vertex' at its SDK's own endpoint (chosen by GOOGLE_API_KEY)."),
    ({"GEMINI_API_KEY": "AIza-x"},  # Veo left the Gemini API on 2026-10-22: its key reaches Gemini Omni
     "Rendering on 'gemini-omni' at its SDK's own endpoint (chosen by GEMINI_API_KEY)."),
    ({"OPENAI_API_KEY": "sk-gw", "OPENAI_BASE_URL": "http://gateway.local/v1"},
     "Rendering on 'openai-gateway' at http://gateway.local/v1 (chosen by OPENAI_API_KEY and OPENAI_BASE_URL)."),
    ({"OPENAI_API_KEY": "sk-gw", "REELFLOW_BASE_URL": "http://gateway.local/v1"},
     "Rendering on 'openai-gateway' at http://gateway.local/v1 (chosen by OPENAI_API_KEY and REELFLOW_BASE_URL)."),
    ({}, SANDBOX_LINE),
], ids=["openrouter", "fal", "vertex-project", "vertex-express", "gemini", "gateway", "gateway-reelflow-url", "none"])
def test_each_key_alone_picks_its_provider_and_says_so(environment: dict[str, str], line: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert first_line(environment, monkeypatch) == line


@pytest.mark.parametrize(("environment", "refusal"), [
    ({"OPENAI_API_KEY": "sk-proj-x"},
     "OPENAI_API_KEY is set, but OpenAI shut its video API (Sora 2) down on 2026-09-24; to render elsewhere, set "
     "FAL_KEY (fal), GEMINI_API_KEY (gemini-omni), GOOGLE_API_KEY or GOOGLE_CLOUD_PROJECT (google-vertex), "
     "OPENAI_API_KEY with OPENAI_BASE_URL (openai-gateway), or OPENROUTER_API_KEY (openrouter)"),
    ({"REELFLOW_API_KEY": "sk-x"}, "REELFLOW_API_KEY is set, but no provider is named: set REELFLOW_PROVIDER=NAME"),
    ({"OPENROUTER_API_KEY": "sk-or-v1-x", "FAL_KEY": "fal-id:secret"},
     "the credentials of several providers are set: fal (FAL_KEY); openrouter (OPENROUTER_API_KEY). Choose one with "
     "REELFLOW_PROVIDER=NAME or the plan's `provider: NAME`"),
], ids=["openai-without-a-gateway", "reelflow-key", "several"])
def test_a_key_that_picks_no_single_provider_is_one_line_saying_what_to_do(
        environment: dict[str, str], refusal: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError) as refused:
        first_line(environment, monkeypatch)
    assert str(refused.value).startswith(refusal) and "\n" not in str(refused.value)


def test_sora_is_never_picked_and_not_used_at_openais_own_address(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="provider 'sora': OpenAI shut its video API"):
        first_line({"REELFLOW_PROVIDER": "sora", "OPENAI_API_KEY": "sk-x"}, monkeypatch)
    monkeypatch.delenv("REELFLOW_PROVIDER")
    assert first_line({"OPENAI_BASE_URL": "http://compatible.local/v1"}, monkeypatch, "sora") == (
        "Rendering on 'sora' at http://compatible.local/v1 (chosen by the plan's `provider:`).")


def test_reelflow_provider_over_the_plans_provider_over_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-id:secret")
    assert choose_provider(Settings(), "openrouter").profile.name == "openrouter"  # the plan's, over the key
    assert first_line({}, monkeypatch, "openrouter") == (
        "No credentials of 'openrouter' are set: rendering test videos on the embedded sandbox on loopback, posing "
        "as 'openrouter'. To render on openrouter for real, set OPENROUTER_API_KEY.")
    monkeypatch.setenv("REELFLOW_PROVIDER", "google-vertex")
    assert choose_provider(Settings(), "openrouter").profile.name == "google-vertex"
    with pytest.raises(ProfileError, match="the plan's provider: unknown provider profile 'acme'"):
        choose_provider(Settings(provider=None), "acme")


def test_a_profile_of_ones_own_is_picked_by_name_not_by_its_parents_key(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "providers.yaml"
    own.write_text("name: my-router\nextends: openrouter\ndescription: ours\n")
    assert first_line({"REELFLOW_PROVIDERS_FILE": str(own), "OPENROUTER_API_KEY": "sk-or-v1-x"}, monkeypatch) == (
        "Rendering on 'openrouter' at https://openrouter.ai/api/v1 (chosen by OPENROUTER_API_KEY).")
    assert choose_provider(Settings(), "my-router").profile.picked_by == []


def test_a_plans_provider_is_a_profile_name() -> None:
    assert parse_plan({"name": "p", "provider": "fal", "scenes": [{"id": "a", "prompt": "x"}]}).provider == "fal"
    with pytest.raises(UserError, match="plan: provider: String should match pattern"):
        parse_plan({"name": "p", "provider": "../etc", "scenes": [{"id": "a", "prompt": "x"}]})


def test_vertex_express_mode_configures_google_genai_with_the_key_alone() -> None:
    """As google-genai 3.6.1 configures express mode: Vertex, the key as x-goog-api-key, the global endpoint."""
    from reelflow.providers.google_genai import GoogleGenAI

    dialect = GoogleGenAI(ProviderConfig(base_url=None, api_key=SecretStr("AQ.express"),
                                         profile=load_profile("google-vertex")))
    try:
        client = dialect.client._api_client
        assert client.vertexai and (client.project, client.location) == (None, None)
        assert client._http_options.base_url == "https://aiplatform.googleapis.com/"
        assert client._http_options.headers is not None
        assert client._http_options.headers["x-goog-api-key"] == "AQ.express"
    finally:
        dialect.clients.unused_sync.close()


@pytest.mark.parametrize(("profile", "key", "address", "create"), [
    ("google-vertex", "GOOGLE_API_KEY", "GOOGLE_VERTEX_BASE_URL",  # express mode: no project in the path
     "POST /{version}/publishers/google/models/{model}:predictLongRunning"),
    ("openrouter", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "POST /api/v1/videos"),
])
def test_a_key_alone_renders_on_its_provider(profile: str, key: str, address: str, create: str, tmp_path: Path,
                                             local_prefect_server: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: mine\nscenes:\n  - {id: a, prompt: a lighthouse at dusk, seconds: 4}\n")
    with run_sandbox(profile=profile, job_seconds=0.2, api_keys=frozenset({"the-users-key"})) as pose:
        done = run_cli(["run", str(plan), "--output", f"file://{tmp_path}/out"], {
            key: "the-users-key", address: pose.base_url, "REELFLOW_POLL_MIN_SECONDS": "0.1"})
        stats = pose.stats()
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"Rendering on {profile!r} at {pose.base_url} (chosen by {key})."
    assert stats["requests"][create] == 1 and stats["jobs"] == 1
    assert f"mine on {profile}" in done.stdout and (tmp_path / "out/mine/a/video.mp4").is_file()


def test_validate_refuses_what_a_run_would_miss(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\nscenes:\n  - {id: a, prompt: x}\n")
    done = run_cli(["validate", str(plan)], {"GOOGLE_CLOUD_PROJECT": "film-123"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: provider 'google-vertex': set GOOGLE_CLOUD_LOCATION (the region of "
                                        "project film-123)"]
    done = run_cli(["validate", str(plan)], {"GOOGLE_CLOUD_PROJECT": "film-123", "GOOGLE_CLOUD_LOCATION": "eu"})
    assert done.returncode == 0 and done.stdout.strip() == f"{plan}: 1 scenes, 8 s of video on google-vertex: valid"


def run_cli(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelflow.cli", *arguments], capture_output=True, text=True,
                          env={**os.environ, **environment}, cwd=REPO, timeout=300)

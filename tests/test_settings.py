"""Settings come from the environment and `.env`; the API key stays secret wherever it goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelflow import Settings
from reelflow.providers import active_profile, connect_provider, provider_access, provider_key


def test_no_key_means_the_embedded_sandbox() -> None:
    settings = Settings()
    assert active_profile(settings).name == "sandbox"
    assert provider_key(settings, active_profile(settings)) is None


def test_standard_openai_variables_and_prefixed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway.local/v1")
    monkeypatch.setenv("REELFLOW_MAX_CONCURRENT", "9")
    monkeypatch.setenv("REELFLOW_RETRY_DELAYS_SECONDS", "[1, 2]")
    settings = Settings()
    profile = active_profile(settings)
    access = provider_access(settings, profile)
    assert profile.name == "openai-gateway" and access is not None and access.api_key is not None
    assert access.api_key.get_secret_value() == "sk-live-123"
    assert (access.base_url, settings.max_concurrent, settings.retry_delays_seconds) == (
        "http://gateway.local/v1", 9, [1, 2])
    assert "sk-live-123" not in repr(settings) and "sk-live-123" not in str(settings.model_dump())


def test_reelflow_key_and_url_override_any_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("REELFLOW_API_KEY", "sk-reelflow")
    monkeypatch.setenv("REELFLOW_BASE_URL", "http://127.0.0.1:9/v1")
    settings = Settings()
    with connect_provider(settings, active_profile(settings)) as connection:
        assert connection.api_key is not None
        assert (connection.api_key.get_secret_value(), connection.base_url) == ("sk-reelflow", "http://127.0.0.1:9/v1")
    assert "sk-reelflow" not in repr(settings)


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\nREELFLOW_PROVIDER=sora-spec\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    key = provider_key(settings, active_profile(settings))
    assert key is not None and key.get_secret_value() == "sk-from-dotenv"
    assert active_profile(settings).name == "sora-spec"


def test_a_dotenv_key_picks_its_provider_as_the_environment_does(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("FAL_KEY=fal-from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    assert active_profile(Settings()).name == "fal"

"""Settings come from the environment and `.env`; the API key stays secret wherever it goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelflow import Settings


def test_no_key_means_the_embedded_sandbox() -> None:
    settings = Settings()
    assert settings.uses_sandbox and settings.provider_name == "sandbox"


def test_standard_openai_variables_and_prefixed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway.local/v1")
    monkeypatch.setenv("REELFLOW_MAX_CONCURRENT", "9")
    monkeypatch.setenv("REELFLOW_RETRY_DELAYS_SECONDS", "[1, 2]")
    settings = Settings()
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-live-123"
    assert (settings.openai_base_url, settings.max_concurrent, settings.retry_delays_seconds) == (
        "http://gateway.local/v1", 9, [1, 2])
    assert settings.provider_name == "sora"
    assert "sk-live-123" not in repr(settings) and "sk-live-123" not in str(settings.model_dump())


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\nREELFLOW_PROVIDER=sora-spec\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-from-dotenv"
    assert settings.provider_name == "sora-spec"

"""The README's configuration table lists every setting, so it cannot silently fall behind."""

from __future__ import annotations

from pathlib import Path

from reelflow import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        variable = name.upper() if name.startswith("openai_") else f"REELFLOW_{name.upper()}"
        assert f"| `{variable}` |" in README, variable
        assert field.description and field.description in README, variable

"""Every setting is documented in .env.example, so operators can find it."""

from __future__ import annotations

from pathlib import Path

from backend.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_env_example() -> None:
    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = [
        name for name in Settings.model_fields if f"HELPDESK_{name.upper()}" not in documented
    ]
    assert missing == [], f"document these in .env.example: {missing}"
    assert len(Settings.model_fields) > 40

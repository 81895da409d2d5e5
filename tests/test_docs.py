"""Docs that drift from the code fail the build."""

from __future__ import annotations

from pathlib import Path

from backend.config import Settings
from backend.events.types import BoardEventType

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    missing = [f"KANBAN_{name.upper()}" for name in Settings.model_fields if f"KANBAN_{name.upper()}" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_event_type_is_documented():
    text = (DOCS / "events.md").read_text()
    missing = [t.value for t in BoardEventType if f"`{t.value}`" not in text]
    assert not missing, f"document these events in docs/events.md: {missing}"

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, false, func, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, sql_in, utcnow


class PluginSource(enum.StrEnum):
    builtin = "builtin"
    glama = "glama"
    official = "official"
    custom = "custom"


class PluginTransport(enum.StrEnum):
    stdio = "stdio"
    http = "http"
    sse = "sse"


class Plugin(Base):
    """An MCP server agents can be given: built in, installed from a registry, or custom.

    `env`, `headers` and `settings` map names to values. A value is a JSON string, or
    `{"secret": "<Fernet token>"}` when it is secret (see backend/plugins/secrets.py).
    `settings` holds the values of the properties of `settings_schema`; each property's
    `x-target` says where its value goes (`env`, `header` or `arg`, a `{name}` placeholder
    in `args` or `url`).
    """

    __tablename__ = "plugins"
    __table_args__ = (
        CheckConstraint(f"source IN ({sql_in(PluginSource)})", name="source"),
        CheckConstraint(f"transport IN ({sql_in(PluginTransport)})", name="transport"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The MCP server's name in runs: its tools are mcp__<name>__<tool>.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(String(20))
    # Where it came from: the registry's name for it (official) or namespace/slug (Glama).
    source_ref: Mapped[str | None] = mapped_column(String(500))
    transport: Mapped[str] = mapped_column(String(10))
    command: Mapped[str | None] = mapped_column(Text)
    args: Mapped[list[str]] = mapped_column(JSONType, default=list)
    url: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    env: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    settings_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The global switch; a project's runs get the plugin only if it is enabled for the project too.
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The last connection test.
    tested_at: Mapped[datetime | None] = mapped_column()
    test_ok: Mapped[bool | None] = mapped_column()
    test_tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    test_error: Mapped[str | None] = mapped_column(Text)
    installed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class PluginProject(Base):
    """A plugin switched on or off for one project (no row: off)."""

    __tablename__ = "plugin_projects"

    plugin_id: Mapped[int] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True)
    enabled: Mapped[bool] = mapped_column(default=False, server_default=false())

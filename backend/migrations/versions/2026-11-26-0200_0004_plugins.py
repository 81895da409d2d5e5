"""plugins (MCP servers given to agents) and their per-project enablement

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from backend.models.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_ref", sa.String(length=500), nullable=True),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("args", JSON, nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("env", JSON, nullable=False),
        sa.Column("settings_schema", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("tested_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("test_ok", sa.Boolean(), nullable=True),
        sa.Column("test_tools", JSON, nullable=True),
        sa.Column("test_error", sa.Text(), nullable=True),
        sa.Column("installed_at", UTCDateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("source IN ('builtin', 'glama', 'official', 'custom')", name=op.f("ck_plugins_source")),
        sa.CheckConstraint("transport IN ('stdio', 'http', 'sse')", name=op.f("ck_plugins_transport")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugins")),
        sa.UniqueConstraint("name", name=op.f("uq_plugins_name")),
    )

    op.create_table(
        "plugin_projects",
        sa.Column("plugin_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"], ["plugins.id"], name=op.f("fk_plugin_projects_plugin_id_plugins"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_plugin_projects_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plugin_id", "project_id", name=op.f("pk_plugin_projects")),
    )
    op.create_index(op.f("ix_plugin_projects_project_id"), "plugin_projects", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_plugin_projects_project_id"), table_name="plugin_projects")
    op.drop_table("plugin_projects")
    op.drop_table("plugins")

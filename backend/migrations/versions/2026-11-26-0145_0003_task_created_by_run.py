"""tasks remember the agent run that created them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("created_by_run_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_tasks_created_by_run_id_agent_runs"),
            "agent_runs",
            ["created_by_run_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_constraint(op.f("fk_tasks_created_by_run_id_agent_runs"), type_="foreignkey")
        batch_op.drop_column("created_by_run_id")

"""tasks blocked by other tasks, and starting by themselves once unblocked

`task_dependencies` links a task to the tasks it waits for (a graph apart from parent and
subtask). A deleted predecessor leaves its link with a null id and its short id, so the
dependent stays blocked and can say by what. `tasks.start_when_unblocked` is the stored
intent to start an agent run once every predecessor is done.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.models.base import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("start_when_unblocked", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_tasks_start_when_unblocked",
        "tasks",
        ["start_when_unblocked"],
        sqlite_where=sa.text("start_when_unblocked"),
        postgresql_where=sa.text("start_when_unblocked"),
    )
    op.create_table(
        "task_dependencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("blocked_by_id", sa.Integer(), nullable=True),
        sa.Column("blocked_by_short_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_dependencies_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["blocked_by_id"], ["tasks.id"], name=op.f("fk_task_dependencies_blocked_by_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_dependencies")),
        sa.UniqueConstraint("task_id", "blocked_by_id", name=op.f("uq_task_dependencies_task_id_blocked_by_id")),
    )
    op.create_index(op.f("ix_task_dependencies_blocked_by_id"), "task_dependencies", ["blocked_by_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_dependencies_blocked_by_id"), table_name="task_dependencies")
    op.drop_table("task_dependencies")
    op.drop_index("ix_tasks_start_when_unblocked", table_name="tasks")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("start_when_unblocked")

"""workflows: templates instantiated as a parent card and step cards; check runs

`workflows` keeps what a workflow was made from (the template as it was, the inputs) and
whether it was cancelled; its state is its cards (`tasks.workflow_id`, the step's id and kind),
their dependency links and their runs. `agent_runs.kind` tells an agent run from a check
step's command, and `agent_runs.check_passed` records the check that followed a run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.models.base import JSONType, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("parent_task_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("inputs", JSONType, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('running', 'done', 'cancelled')", name=op.f("ck_workflows_status")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_workflows_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_task_id"], ["tasks.id"], name=op.f("fk_workflows_parent_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_index(op.f("ix_workflows_project_id"), "workflows", ["project_id"])
    op.create_index(op.f("ix_workflows_parent_task_id"), "workflows", ["parent_task_id"])
    op.create_index("ix_workflows_status", "workflows", ["status"])
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("workflow_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("workflow_step", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("workflow_step_kind", sa.String(length=10), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_tasks_workflow_id_workflows"), "workflows", ["workflow_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(op.f("ix_tasks_workflow_id"), ["workflow_id"])
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=10), server_default="agent", nullable=False))
        batch_op.add_column(sa.Column("check_passed", sa.Boolean(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_agent_runs_kind"), "kind IN ('agent', 'check')")


def downgrade() -> None:
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_agent_runs_kind"), type_="check")
        batch_op.drop_column("check_passed")
        batch_op.drop_column("kind")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_index(op.f("ix_tasks_workflow_id"))
        batch_op.drop_constraint(op.f("fk_tasks_workflow_id_workflows"), type_="foreignkey")
        batch_op.drop_column("workflow_step_kind")
        batch_op.drop_column("workflow_step")
        batch_op.drop_column("workflow_id")
    op.drop_index("ix_workflows_status", table_name="workflows")
    op.drop_index(op.f("ix_workflows_parent_task_id"), table_name="workflows")
    op.drop_index(op.f("ix_workflows_project_id"), table_name="workflows")
    op.drop_table("workflows")

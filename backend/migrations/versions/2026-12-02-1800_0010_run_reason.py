"""agent_runs.reason: why a run was queued (started, changes requested, a failed `until` check,
sent back by a workflow's approval step), so the task's runs read as one conversation

Runs from before are given the reason their prompt shows: a first run's prompt is the task
("You are working on task …"), a workflow step sent back quotes its reviewer ("A person
reviewing …"), a failed check's retry quotes the check ("The check `…`"); any other later
attempt continued a session with a reviewer's feedback.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = "'start', 'changes_requested', 'check_failed', 'sent_back'"


def upgrade() -> None:
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=20), server_default="start", nullable=False))
        batch_op.create_check_constraint(op.f("ck_agent_runs_reason"), f"reason IN ({REASONS})")
    op.execute(
        "UPDATE agent_runs SET reason = CASE"
        " WHEN prompt LIKE 'A person reviewing %' THEN 'sent_back'"
        " WHEN prompt LIKE 'The check %' THEN 'check_failed'"
        " ELSE 'changes_requested' END"
        " WHERE kind = 'agent' AND resume_session_id IS NOT NULL AND prompt NOT LIKE 'You are working on task %'"
    )


def downgrade() -> None:
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_agent_runs_reason"), type_="check")
        batch_op.drop_column("reason")

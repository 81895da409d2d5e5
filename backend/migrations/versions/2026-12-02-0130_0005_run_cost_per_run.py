"""runs store their own cost, the session's total and the task's total

The CLI reports a resumed session's total cost, so a run that continued a session (request
changes, resume) showed the earlier runs' cost as well. `session_cost_usd` keeps what the CLI
reported; `cost_usd` becomes the run's own part; `task_cost_usd` is the task's spending up to
and including the run. Existing rows are converted the same way.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.add_column(sa.Column("session_cost_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("task_cost_usd", sa.Float(), nullable=True))
    op.execute("UPDATE agent_runs SET session_cost_usd = cost_usd WHERE cost_usd IS NOT NULL")
    op.execute(
        """
        UPDATE agent_runs SET cost_usd = session_cost_usd - COALESCE((
            SELECT earlier.session_cost_usd FROM agent_runs AS earlier
            WHERE earlier.task_id = agent_runs.task_id AND earlier.session_id = agent_runs.session_id
              AND earlier.id < agent_runs.id AND earlier.session_cost_usd IS NOT NULL
            ORDER BY earlier.id DESC LIMIT 1
        ), 0)
        WHERE session_cost_usd IS NOT NULL AND session_id IS NOT NULL
        """
    )
    op.execute("UPDATE agent_runs SET cost_usd = 0 WHERE cost_usd < 0")
    op.execute(
        """
        UPDATE agent_runs SET task_cost_usd = (
            SELECT SUM(earlier.cost_usd) FROM agent_runs AS earlier
            WHERE earlier.task_id = agent_runs.task_id AND earlier.id <= agent_runs.id
        )
        """
    )


def downgrade() -> None:
    op.execute("UPDATE agent_runs SET cost_usd = session_cost_usd WHERE session_cost_usd IS NOT NULL")
    with op.batch_alter_table("agent_runs") as batch_op:
        batch_op.drop_column("task_cost_usd")
        batch_op.drop_column("session_cost_usd")

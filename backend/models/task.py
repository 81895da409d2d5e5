from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, OrderKey, TimestampMixin, sql_in, utcnow


class TaskStatus(enum.StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    needs_review = "needs_review"
    done = "done"


class TaskPriority(enum.StrEnum):
    none = "none"
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        Index("ix_tasks_project_status_position", "project_id", "status", "position"),
        CheckConstraint(f"status IN ({sql_in(TaskStatus)})", name="status"),
        CheckConstraint(f"priority IN ({sql_in(TaskPriority)})", name="priority"),
        # The few tasks waiting to start by themselves, found without reading the others.
        Index(
            "ix_tasks_start_when_unblocked",
            "start_when_unblocked",
            sqlite_where=text("start_when_unblocked"),
            postgresql_where=text("start_when_unblocked"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # Fixed when the task is made (KAN-12), so references in commits and branches stay valid.
    short_id: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.todo.value)
    # A fractional order key inside the task's column: a move rewrites one row, never the column.
    position: Mapped[str] = mapped_column(OrderKey)
    priority: Mapped[str] = mapped_column(String(10), default=TaskPriority.none.value)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    result: Mapped[str | None] = mapped_column(Text)
    # Optimistic concurrency: every write bumps it; a write based on an older one is refused.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The agent run that made this task (an agent splitting its work), if any.
    created_by_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent_runs.id", ondelete="SET NULL", use_alter=True)
    )
    # Start an agent run by itself once every task it is blocked by is done (consumed by that start).
    start_when_unblocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A card of a workflow: its parent card (no step) or one of its steps (the step's id and kind).
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"), index=True)
    workflow_step: Mapped[str | None] = mapped_column(String(40))
    workflow_step_kind: Mapped[str | None] = mapped_column(String(10))


class TaskDependency(Base):
    """`task_id` is blocked by `blocked_by_id` until that task is done: a graph of its own,
    apart from parent and subtask. A deleted predecessor leaves the row with a null id and its
    short id, so its dependents stay blocked and can say by what."""

    __tablename__ = "task_dependencies"
    __table_args__ = (UniqueConstraint("task_id", "blocked_by_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    blocked_by_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    blocked_by_short_id: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

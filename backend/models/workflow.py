from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin, sql_in


class WorkflowStatus(enum.StrEnum):
    running = "running"
    done = "done"
    cancelled = "cancelled"


class StepKind(enum.StrEnum):
    """What a workflow step's card does when it starts (a task outside a workflow has none)."""

    agent = "agent"
    check = "check"
    approval = "approval"


class Workflow(TimestampMixin, Base):
    """A template instantiated on a project: a parent card and one card per step, linked by
    dependencies. Its state is those cards, their links and their runs; this row keeps what
    they were made from (the template as it was then, the inputs) and whether it was cancelled."""

    __tablename__ = "workflows"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(WorkflowStatus)})", name="status"),
        Index("ix_workflows_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    # The workflow's own card (null once a person deleted it).
    parent_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL", use_alter=True), index=True
    )
    template_name: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    # Where the template came from: builtin, user or project, and its file.
    origin: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(Text)
    # The template as it was when the workflow started: later edits of the file change nothing here.
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    inputs: Mapped[dict[str, str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12), default=WorkflowStatus.running.value)
    finished_at: Mapped[datetime | None] = mapped_column()

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigIntKey, JSONType, TimestampMixin, sql_in, utcnow


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    waiting_approval = "waiting_approval"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"


ACTIVE_RUN_STATUSES = (RunStatus.queued, RunStatus.running, RunStatus.waiting_approval)
FINISHED_RUN_STATUSES = (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled, RunStatus.interrupted)


class RunKind(enum.StrEnum):
    """An agent run, or a workflow's check step (a command in the task's worktree)."""

    agent = "agent"
    check = "check"


class RunReason(enum.StrEnum):
    """Why a run was queued: what the user (or a check) said to the agent before it."""

    start = "start"
    changes_requested = "changes_requested"
    check_failed = "check_failed"
    sent_back = "sent_back"


class ApprovalStatus(enum.StrEnum):
    pending = "pending"
    allowed = "allowed"
    denied = "denied"
    expired = "expired"


class AgentRun(TimestampMixin, Base):
    """One attempt of an agent at a task. A task's runs share its worktree and branch."""

    __tablename__ = "agent_runs"
    __table_args__ = (
        UniqueConstraint("task_id", "attempt"),
        Index("ix_agent_runs_status_id", "status", "id"),
        CheckConstraint(f"status IN ({sql_in(RunStatus)})", name="status"),
        CheckConstraint(f"kind IN ({sql_in(RunKind)})", name="kind"),
        CheckConstraint(f"reason IN ({sql_in(RunReason)})", name="reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default=RunKind.agent.value, server_default=RunKind.agent.value)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.queued.value)
    reason: Mapped[str] = mapped_column(String(20), default=RunReason.start.value, server_default=RunReason.start.value)
    # What the agent was asked: the task for a first run, the feedback for a follow-up.
    prompt: Mapped[str] = mapped_column(Text)
    # The Claude session this run continues (request changes, resume after a restart).
    resume_session_id: Mapped[str | None] = mapped_column(String(100))
    session_id: Mapped[str | None] = mapped_column(String(100))
    branch: Mapped[str | None] = mapped_column(String(255))
    worktree_path: Mapped[str | None] = mapped_column(Text)
    base_commit: Mapped[str | None] = mapped_column(String(64))
    head_commit: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # This run's own cost. The CLI reports a resumed session's total (`session_cost_usd`);
    # the run's part is that minus the total of the session's previous run.
    cost_usd: Mapped[float | None] = mapped_column(Float)
    session_cost_usd: Mapped[float | None] = mapped_column(Float)
    # The task's spending up to and including this run (on its newest run: the task's total).
    task_cost_usd: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    turns: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # How many times this run was started (restarts resume the same run).
    starts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by a cancel request; the process running the agent acts on it.
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A workflow step's check after this run (`until`, or a check step): passed, or not; null when none ran.
    check_passed: Mapped[bool | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # The worker executing the run (`workers.id`) while it runs, and until when its lease
    # holds unless renewed. Every claim or takeover adds one to the generation; a write
    # for the run carries the generation it was given and is refused once it moved on.
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    lease_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The host its worktree and Claude session are on (set when it first starts; a run that
    # continues a session stays there).
    host: Mapped[str | None] = mapped_column(String(255))
    # Why a queued run waits when no live worker can take it (its host, its folder); else null.
    waiting_for: Mapped[str | None] = mapped_column(Text)


class RunEvent(Base):
    """Append-only log of everything an agent did; seq counts 1, 2, 3… per run, no gaps."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """A tool request the agent may only make with the user's consent."""

    __tablename__ = "approvals"
    __table_args__ = (CheckConstraint(f"status IN ({sql_in(ApprovalStatus)})", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"), index=True)
    tool_name: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default=ApprovalStatus.pending.value)
    # allow, deny or always_allow; message is what the agent is told on deny.
    decision: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()

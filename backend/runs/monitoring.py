"""What operators see of runs: their states in one query, the queue, the runs in progress
(`/metrics` and `kanban status`), and the runs' starts and finishes counted as they commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ..db import Database
from ..metrics import DatabaseGauges, Metrics
from ..models import AgentRun, RunStatus, Task
from ..models.agent_run import FINISHED_RUN_STATUSES
from ..models.base import utcnow
from . import leases
from .service import IN_PROGRESS, RunFinished, RunStarted, committed_outcomes


class RunStates(NamedTuple):
    by_status: dict[str, int]  # every status, 0 included
    oldest_queued_since: datetime | None

    @property
    def queue_depth(self) -> int:
        return self.by_status[RunStatus.queued.value]

    def oldest_queued_age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_queued_since).total_seconds()) if self.oldest_queued_since else 0.0


async def states(session: AsyncSession) -> RunStates:
    """Runs by state, and since when the longest-waiting queued run waits: one GROUP BY (a
    queued run's updated_at is when it was queued)."""
    rows = (
        await session.execute(
            select(AgentRun.status, func.count(), func.min(AgentRun.updated_at)).group_by(AgentRun.status)
        )
    ).all()
    by_status = {status.value: 0 for status in RunStatus}
    oldest = None
    for status, count, earliest in rows:
        by_status[status] = count
        if status == RunStatus.queued.value:
            oldest = earliest
    return RunStates(by_status, oldest)


async def database_gauges(database: Database) -> DatabaseGauges:
    """The scrape-time figures of `/metrics`."""
    async with database.session() as session:
        found = await states(session)
        takeovers = await leases.takeovers_total(session)
    return DatabaseGauges(found.by_status, found.queue_depth, found.oldest_queued_age_seconds(utcnow()), takeovers)


class QueuedRun(NamedTuple):
    id: int
    task: str  # the task's short id
    queued_since: datetime


class RunInProgress(NamedTuple):
    id: int
    task: str
    status: str
    started_at: datetime | None
    starts: int


async def oldest_queued(session: AsyncSession) -> QueuedRun | None:
    row = (
        await session.execute(
            select(AgentRun.id, Task.short_id, AgentRun.updated_at)
            .join(Task, Task.id == AgentRun.task_id)
            .where(AgentRun.status == RunStatus.queued.value)
            .order_by(AgentRun.updated_at, AgentRun.id)
            .limit(1)
        )
    ).first()
    return QueuedRun(*row) if row else None


async def in_progress(session: AsyncSession) -> Sequence[RunInProgress]:
    """Runs running or waiting for an approval, oldest first."""
    rows = await session.execute(
        select(AgentRun.id, Task.short_id, AgentRun.status, AgentRun.started_at, AgentRun.starts)
        .join(Task, Task.id == AgentRun.task_id)
        .where(AgentRun.status.in_(IN_PROGRESS))
        .order_by(AgentRun.id)
    )
    return [RunInProgress(*row) for row in rows]


def counting(metrics: Metrics) -> Callable[[Session], None]:
    """A `Database.on_commit` callback: counts the runs started and finished in each commit
    (and observes their queue wait), so a rolled-back change is never counted."""
    for status in FINISHED_RUN_STATUSES:
        metrics.runs_finished.labels(status.value)  # shown as 0 before the first

    def count(session: Session) -> None:
        for outcome in committed_outcomes(session):
            if isinstance(outcome, RunStarted):
                metrics.runs_started.inc()
                metrics.queue_wait.observe(outcome.queue_wait_seconds)
            elif isinstance(outcome, RunFinished):
                metrics.runs_finished.labels(outcome.status).inc()

    return count

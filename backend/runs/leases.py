"""Workers and the leases of the runs they execute.

A worker (`kanban worker`, or `kanban serve` running agents) has a row in `workers` that its
heartbeat keeps fresh. A run it claims gets it as `owner`, a lease (`lease_expires_at`) and a
new `lease_generation`; the heartbeat renews the leases of all its runs in one statement.
A worker that stops heartbeating (killed, paused, cut off) loses its runs when their leases
expire, and a live worker takes them over (`service.take_over`: the generation moves on).

Fencing: every write a worker makes for a run carries the `Lease` it was given (owner and
generation) and first checks it against the run's row, under that row's lock, in the same
transaction; once the generation moved on the write is refused with `LeaseLost` and nothing
of it is written. So a worker that wakes up after its run was taken over cannot add events
(the seq stays gapless) or change the run's state.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ..db import scoped_channel
from ..errors import Conflict
from ..models import AgentRun, Project, RunStatus, Worker
from ..models.base import utcnow

IN_PROGRESS = [RunStatus.running.value, RunStatus.waiting_approval.value]
_RUNS = cast(Table, AgentRun.__table__)


class WorkerIdentity(NamedTuple):
    id: str
    host: str
    pid: int


def identity(worker_id: str | None, host: str | None) -> WorkerIdentity:
    """This process as a worker: the configured id, else `<host>:<pid>`."""
    host = host or socket.gethostname()
    pid = os.getpid()
    return WorkerIdentity(worker_id or f"{host}:{pid}", host, pid)


class Lease(NamedTuple):
    """What a worker holds of a run: writes for the run carry it."""

    owner: str
    generation: int


class LeaseLost(Conflict):
    """The run's lease moved on (taken over): this worker may write nothing more for it."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"Run {run_id} is no longer this worker's: its lease expired and another worker took it over")
        self.run_id = run_id


def check(run: AgentRun, lease: Lease | None) -> None:
    """Refuse a write by `lease`'s holder for a run (read under its row lock) that moved on.
    None: not a worker's write (the API's: cancel requests, answers), always allowed."""
    if lease is not None and (run.owner != lease.owner or run.lease_generation != lease.generation):
        raise LeaseLost(run.id)


async def hold(
    connection: AsyncConnection,
    run_id: int,
    lease: Lease,
    session_id: str | None = None,
    notify: tuple[str, str] | None = None,
) -> None:
    """Lock the run's row if `lease` still holds it (saving its Claude session id when given),
    for the rest of the transaction; LeaseLost otherwise. One statement, for the event writer.
    On PostgreSQL `notify` (channel, payload) rides on it: sent with the commit, if any."""
    values: dict[str, Any] = {"updated_at": _RUNS.c.updated_at}  # not a change of the run
    if session_id:
        values["session_id"] = session_id
    statement = (
        update(_RUNS)
        .where(_RUNS.c.id == run_id, _RUNS.c.owner == lease.owner, _RUNS.c.lease_generation == lease.generation)
        .values(**values)
    )
    if notify is not None:
        channel, payload = notify
        held = len(
            (await connection.execute(statement.returning(func.pg_notify(scoped_channel(channel), payload)))).all()
        )
    else:
        held = cast(CursorResult[Any], await connection.execute(statement)).rowcount
    if held != 1:
        raise LeaseLost(run_id)


# -- the workers table ------------------------------------------------------------------


async def register(session: AsyncSession, me: WorkerIdentity, max_concurrent_runs: int, projects: list[int]) -> None:
    """This worker is alive (a restart with the same id starts its row afresh)."""
    now = utcnow()
    worker = await session.get(Worker, me.id, with_for_update=True)
    if worker is None:
        worker = Worker(id=me.id, takeovers=0)
        session.add(worker)
    worker.host, worker.pid = me.host, me.pid
    worker.started_at = worker.heartbeat_at = now
    worker.stopped_at = None
    worker.projects = projects
    worker.max_concurrent_runs = max_concurrent_runs
    await session.flush()


async def heartbeat(
    session: AsyncSession,
    me: WorkerIdentity,
    lease_seconds: float,
    projects: list[int] | None,
    working_on: Sequence[int],
) -> dict[int, int]:
    """Report this worker alive and renew the leases of the runs it owns and still works on
    (`working_on`), in one statement each; the runs renewed and their generations.

    Only those: a run this worker gave up (it stopped the agent after a missed renewal) may
    still name it as owner, and renewing it would keep it from every worker for good.
    """
    now = utcnow()
    values: dict[str, Any] = {"heartbeat_at": now, "stopped_at": None}
    if projects is not None:
        values["projects"] = projects
    await session.execute(update(Worker).where(Worker.id == me.id).values(**values))
    if not working_on:
        return {}
    renewed = await session.execute(
        update(_RUNS)
        .where(_RUNS.c.owner == me.id, _RUNS.c.status.in_(IN_PROGRESS), _RUNS.c.id.in_(list(working_on)))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=_RUNS.c.updated_at)
        .returning(_RUNS.c.id, _RUNS.c.lease_generation)
    )
    return {run_id: generation for run_id, generation in renewed.all()}


async def stopped(session: AsyncSession, me: WorkerIdentity) -> None:
    """This worker stopped (its agents are stopped): its runs' leases end now, so another
    worker takes them over at its next heartbeat (or this one, restarted with the same id)."""
    now = utcnow()
    await session.execute(update(Worker).where(Worker.id == me.id).values(stopped_at=now))
    await session.execute(
        update(_RUNS)
        .where(_RUNS.c.owner == me.id, _RUNS.c.status.in_(IN_PROGRESS))
        .values(lease_expires_at=now, updated_at=_RUNS.c.updated_at)
    )


async def generations(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(select(AgentRun.id, AgentRun.lease_generation).where(AgentRun.id.in_(list(run_ids))))
    return {run_id: generation for run_id, generation in rows.all()}


async def live_workers(session: AsyncSession, lease_seconds: float, now: datetime | None = None) -> Sequence[Worker]:
    """Workers whose heartbeat is younger than a lease and that did not stop."""
    since = (now or utcnow()) - timedelta(seconds=lease_seconds)
    return (
        await session.scalars(
            select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at > since).order_by(Worker.id)
        )
    ).all()


async def all_workers(session: AsyncSession) -> Sequence[Worker]:
    return (await session.scalars(select(Worker).order_by(Worker.heartbeat_at.desc()))).all()


async def project_folders(session: AsyncSession) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in await session.execute(select(Project.id, Project.workspace_path))]


def reachable(folders: Sequence[tuple[int, str]]) -> list[int]:
    """The projects whose folder this machine can reach: it exists and is a git repository.
    Blocking (file system), cheap: a stat or two per project."""
    return sorted(project_id for project_id, path in folders if (Path(path) / ".git").exists())


async def expired(session: AsyncSession, now: datetime, limit: int = 20) -> Sequence[AgentRun]:
    """Runs in progress whose lease expired (or that never had one: left by a version
    without leases), locked, skipping rows another worker is taking over right now."""
    return (
        await session.scalars(
            select(AgentRun)
            .where(
                AgentRun.status.in_(IN_PROGRESS),
                or_(AgentRun.lease_expires_at.is_(None), AgentRun.lease_expires_at < now),
            )
            .order_by(AgentRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def owned_by(session: AsyncSession, worker_id: str) -> Sequence[AgentRun]:
    """Runs in progress this worker id owns (a worker restarted with the same id: its own)."""
    return (
        await session.scalars(
            select(AgentRun)
            .where(AgentRun.status.in_(IN_PROGRESS), AgentRun.owner == worker_id)
            .order_by(AgentRun.id)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def count_takeover(session: AsyncSession, worker_id: str) -> None:
    await session.execute(update(Worker).where(Worker.id == worker_id).values(takeovers=Worker.takeovers + 1))


async def takeovers_total(session: AsyncSession) -> int:
    return int((await session.scalar(select(func.coalesce(func.sum(Worker.takeovers), 0)))) or 0)


def waiting_reason(run: AgentRun, folder: str, live: Sequence[Worker]) -> str | None:
    """Why no live worker can take this queued run (None: one can)."""
    candidates = [worker for worker in live if run.host is None or worker.host == run.host]
    if not candidates:
        if run.host:
            return f"Waiting for a worker on {run.host} (its Claude session is there)"
        return "Waiting for a worker: no worker is running"
    if not any(run.project_id in (worker.projects or []) for worker in candidates):
        where = f" on {run.host}" if run.host else ""
        return f"Waiting for a worker that can reach {folder}{where}"
    return None


async def runs_owned(session: AsyncSession) -> Sequence[AgentRun]:
    """Runs in progress that have an owner."""
    return (
        await session.scalars(
            select(AgentRun).where(AgentRun.status.in_(IN_PROGRESS), AgentRun.owner.is_not(None)).order_by(AgentRun.id)
        )
    ).all()

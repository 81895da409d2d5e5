"""`kanban status`: what the board's database says, read directly (like `kanban db upgrade`).

It reads only: it works while servers run, takes no lock (it looks at them: pg_locks on
PostgreSQL, `<data dir>/kanban.lock` on SQLite) and on SQLite opens an existing database only.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from . import data_dir, singleton_lock
from .config import Settings
from .db import APPLICATION_NAME, create_engine
from .migrations_runner import current_revision, head_revision
from .models.base import utcnow
from .runs import leases
from .runs import monitoring as run_monitoring

# Connecting and reading, in all: an unreachable PostgreSQL is reported, not waited on for a minute.
STATUS_TIMEOUT_SECONDS = 10.0


class DatabaseUnreachable(Exception):
    """The database cannot be reached (the message says which and why, without a password)."""


def database_label(settings: Settings) -> str:
    if settings.database_kind == "sqlite":
        return str(make_url(settings.resolved_database_url).database)
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


async def collect(settings: Settings, timeout: float = STATUS_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The status as JSON-ready data; DatabaseUnreachable when the database cannot be read."""
    label = database_label(settings)
    if settings.database_kind == "sqlite" and not Path(label).is_file():
        raise DatabaseUnreachable(f"there is no database at {label}: `kanban serve` or `kanban db upgrade` makes it")
    engine = create_engine(settings)
    try:
        async with asyncio.timeout(timeout):
            try:
                connection = await engine.connect()
            except Exception as exc:  # whatever the driver raised: refused, unknown database, password
                reason = getattr(exc, "orig", None) or exc
                raise DatabaseUnreachable(f"cannot connect to the database at {label}: {reason}") from None
            try:
                return await _read(settings, connection)
            finally:
                await connection.close()
    except TimeoutError:
        raise DatabaseUnreachable(f"the database at {label} did not answer within {timeout:g} s") from None
    finally:
        await engine.dispose()


async def _read(settings: Settings, connection: AsyncConnection) -> dict[str, Any]:
    head = head_revision()
    revision = await connection.run_sync(current_revision)
    report: dict[str, Any] = {
        "database": {
            "kind": settings.database_kind,
            "url": database_label(settings),
            "schema": settings.database_schema,  # PostgreSQL: None is the server's default
            "revision": revision,
            "head": head,
            "at_head": revision == head,
        }
    }
    if revision is not None:  # else there are no tables yet
        async with AsyncSession(bind=connection) as session:
            report.update(await _runs(session))
            if revision >= "0011":  # the workers table
                report["workers"] = await _workers(session, settings.worker_lease_seconds)
    if settings.database_kind == "postgresql":
        report["duties"] = _lock_holder(await singleton_lock.holder(connection))
    await connection.rollback()  # it only read
    if settings.database_kind == "sqlite":
        holder = data_dir.in_use(settings.data_dir)
        report["agents"] = {
            "lock": "data dir lock",
            "path": str(settings.data_dir / data_dir.LOCK_FILE),
            "held": holder is not None,
            "pid": holder.pid if holder else None,
        }
    return report


async def _runs(session: AsyncSession) -> dict[str, Any]:
    """Runs by state, the queue and the runs in progress."""
    found = await run_monitoring.states(session)
    oldest = await run_monitoring.oldest_queued(session)
    running = await run_monitoring.in_progress(session)
    now = utcnow()
    return {
        "runs": found.by_status,
        "queue_depth": found.queue_depth,
        "oldest_queued": {
            "id": oldest.id,
            "task": oldest.task,
            "queued_at": oldest.queued_since.isoformat(),
            "age_seconds": round(max(0.0, (now - oldest.queued_since).total_seconds()), 1),
        }
        if oldest
        else None,
        "running": [
            {
                "id": run.id,
                "task": run.task,
                "status": run.status,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "starts": run.starts,
            }
            for run in running
        ],
    }


async def _workers(session: AsyncSession, lease_seconds: float) -> list[dict[str, Any]]:
    """Every worker that reported itself, newest heartbeat first, with the runs it owns."""
    now = utcnow()
    owned: dict[str, list[Any]] = {}
    for run in await leases.runs_owned(session):
        owned.setdefault(run.owner or "", []).append(run)
    found = []
    for worker in await leases.all_workers(session):
        age = max(0.0, (now - worker.heartbeat_at).total_seconds())
        runs = owned.get(worker.id, [])
        expiry = max((run.lease_expires_at for run in runs if run.lease_expires_at), default=None)
        found.append(
            {
                "id": worker.id,
                "host": worker.host,
                "pid": worker.pid,
                "alive": worker.stopped_at is None and age < lease_seconds,
                "started_at": worker.started_at.isoformat(),
                "heartbeat_at": worker.heartbeat_at.isoformat(),
                "heartbeat_age_seconds": round(age, 1),
                "stopped_at": worker.stopped_at.isoformat() if worker.stopped_at else None,
                "projects": len(worker.projects or []),
                "max_concurrent_runs": worker.max_concurrent_runs,
                "runs": [run.id for run in runs],
                "lease_expires_at": expiry.isoformat() if expiry else None,
                "takeovers": worker.takeovers,
            }
        )
    return found


def _lock_holder(held: singleton_lock.LockHolder | None) -> dict[str, Any]:
    return {
        "lock": "postgresql advisory lock",
        "held": held is not None,
        "backend_pid": held.backend_pid if held else None,
        "application_name": held.application_name if held else None,
        "client_addr": held.client_addr if held else None,
        "since": held.since.isoformat() if held and held.since else None,
    }


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _when(value: str | None) -> str:
    if value is None:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(report: dict[str, Any]) -> str:
    """The status as text for a person."""
    db = report["database"]
    if db["revision"] is None:
        state = f"no schema yet (this version needs {db['head']}: run `kanban db upgrade`)"
    elif db["at_head"]:
        state = f"revision {db['revision']} (at head)"
    else:
        state = f"revision {db['revision']}, not at head {db['head']}: run `kanban db upgrade`"
    where = f"{db['url']} (schema {db['schema']})" if db.get("schema") else db["url"]
    lines = [f"Database:  {db['kind']} {where}, {state}"]
    if "runs" in report:
        counts = ", ".join(f"{status} {count}" for status, count in report["runs"].items())
        lines.append(f"Runs:      {counts}")
        oldest = report["oldest_queued"]
        queue = f"{report['queue_depth']} queued"
        if oldest:
            queue += f"; oldest: run {oldest['id']} ({oldest['task']}), waiting {_age(oldest['age_seconds'])}"
        lines.append(f"Queue:     {queue}")
        running = report["running"]
        lines.append(f"Running:   {len(running)}" + ("" if running else " (none)"))
        for run in running:
            waiting = "" if run["status"] == "running" else f", {run['status'].replace('_', ' ')}"
            lines.append(
                f"  run {run['id']} ({run['task']}{waiting}): started {_when(run['started_at'])}, starts {run['starts']}"
            )
    workers = report.get("workers")
    if workers is not None:
        alive = [worker for worker in workers if worker["alive"]]
        lines.append(
            f"Workers:   {len(alive)} alive"
            + (f", {len(workers) - len(alive)} gone" if len(alive) < len(workers) else "")
        )
        for worker in workers:
            if worker["alive"]:
                state = f"heartbeat {_age(worker['heartbeat_age_seconds'])} ago"
            elif worker["stopped_at"]:
                state = f"stopped {_when(worker['stopped_at'])}"
            else:
                state = f"no heartbeat for {_age(worker['heartbeat_age_seconds'])}"
            runs = ", ".join(str(run) for run in worker["runs"]) or "none"
            lease = f", lease until {_when(worker['lease_expires_at'])}" if worker["lease_expires_at"] else ""
            lines.append(
                f"  {worker['id']} on {worker['host']} (pid {worker['pid']}): {state}; runs {runs}{lease}; "
                f"{worker['projects']} project(s) reachable; {worker['takeovers']} takeover(s)"
            )
    if "duties" in report:
        duties = report["duties"]
        if duties["held"]:
            name = duties["application_name"] or "a session not named by the board"
            where = f" from {duties['client_addr']}" if duties["client_addr"] else ""
            lines.append(
                f"Duties:    knowledge ingestion and notifications by {name}{where} (PostgreSQL backend pid "
                f"{duties['backend_pid']}, connected {_when(duties['since'])})"
            )
        else:
            lines.append("Duties:    no process holds the singleton lock: no knowledge ingestion, no notifications")
        return "\n".join(lines)
    agents = report["agents"]
    if agents["lock"] == "data dir lock":
        if agents["held"]:
            who = f"pid {agents['pid']}" if agents["pid"] else "pid unknown"
            lines.append(
                f"Agents:    a server ({who}) holds the data dir lock {agents['path']}: it is the one that runs agents"
            )
        else:
            lines.append(f"Agents:    no server holds the data dir lock {agents['path']}: none runs agents")
    return "\n".join(lines)


def main(settings: Settings, as_json: bool) -> int:
    try:
        report = asyncio.run(collect(settings))
    except DatabaseUnreachable as exc:
        raise SystemExit(f"kanban: {exc}") from None
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0


__all__ = ["APPLICATION_NAME", "DatabaseUnreachable", "collect", "main", "render"]

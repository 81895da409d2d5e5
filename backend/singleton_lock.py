"""PostgreSQL: the duties done once per database, by one process at a time.

Any number of workers run agents on one database (runs are leased, `runs/leases.py`), but
knowledge ingestion and notification delivery must each run in one process only (two would
ingest a document twice, send a notification twice). A session-level advisory lock, held on
a connection of its own, says which agent-running process does them; the others try again
now and then, so the duties move on when that process stops. (On SQLite there is one
process: `kanban serve` locks the data dir.)
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database

# First key of the advisory lock; the second is the database and schema's hash.
SINGLETON_LOCK_SPACE = 0x4B414E  # "KAN"
SCHEMA_KEY = "hashtext(current_database() || '.' || current_schema())"


class LockHolder(NamedTuple):
    """The session holding the singleton lock, as pg_locks and pg_stat_activity show it."""

    backend_pid: int  # PostgreSQL's process serving that session
    application_name: str | None  # "kanban-orchestrator (pid N)": the board process
    client_addr: str | None
    since: datetime | None  # when that session started


async def holder(connection: AsyncConnection) -> LockHolder | None:
    """Who holds this database and schema's singleton lock (None: no process does the duties).
    Reads pg_locks only: it takes nothing."""
    row = (
        await connection.execute(
            text(
                "SELECT l.pid, a.application_name, host(a.client_addr), a.backend_start "
                "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                f"AND l.classid = CAST(:space AS oid) AND l.objid = CAST({SCHEMA_KEY} AS oid)"
            ),
            {"space": SINGLETON_LOCK_SPACE},
        )
    ).first()
    return LockHolder(row[0], row[1] or None, row[2], row[3]) if row else None


class SingletonLock:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.schema: str | None = None
        self._connection: AsyncConnection | None = None

    async def take(self) -> bool:
        """True when this process now holds the lock (until `release`)."""
        connection = await self.database.engine.connect()
        try:
            self.schema = await connection.scalar(text("SELECT current_schema()"))
            taken = await connection.scalar(
                text(f"SELECT pg_try_advisory_lock(:space, {SCHEMA_KEY})"),
                {"space": SINGLETON_LOCK_SPACE},
            )
            await connection.commit()  # the lock is the session's, not the transaction's
        except BaseException:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()  # ends the session: the lock goes with it
            self._connection = None

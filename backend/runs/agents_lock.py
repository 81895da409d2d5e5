"""PostgreSQL: one agent-running process per database schema.

Start-up recovery treats every `running` run as left by a dead server, so a second
agent-running process would kill and requeue the first's runs: it must not run agents at
all. A session-level advisory lock, held on a connection of its own for the process's
lifetime, says who runs them. (On SQLite `kanban serve` locks the data dir instead.)
"""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import Database

# First key of the advisory lock; the second is the database and schema's hash.
AGENTS_LOCK_SPACE = 0x4B414E  # "KAN"


class AgentsLock:
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
                text("SELECT pg_try_advisory_lock(:space, hashtext(current_database() || '.' || current_schema()))"),
                {"space": AGENTS_LOCK_SPACE},
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

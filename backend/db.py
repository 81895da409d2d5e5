"""Engine, sessions and the unit of work.

One owner commits: HTTP routes get a session from `read_session`/`write_session`, everything
else (orchestrator, CLI) uses `Database.session()`. Services only `flush()`.

SQLite: WAL, foreign keys, a busy timeout, and write transactions that start with
`BEGIN IMMEDIATE`, so two writers queue on the lock instead of failing when one upgrades a
read transaction to a write (SQLITE_BUSY_SNAPSHOT).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from .config import Settings

WRITE_OPTION = "kanban_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    url = settings.resolved_database_url
    if settings.database_kind == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if settings.database_schema:
        connect_args["server_settings"] = {"search_path": settings.database_schema}
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine and hands out sessions. One per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind = settings.database_kind
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._after_commit: list[Callable[[Session], None]] = []
        # SQLite has one writer at a time. Queue this process's writers here instead of in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms while it waits.
        self._sqlite_write_lock = asyncio.Lock() if self.kind == "sqlite" else None

        @event.listens_for(self.sessionmaker.class_.sync_session_class, "after_commit")
        def _after_commit(sync_session: Session) -> None:
            for callback in self._after_commit:
                callback(sync_session)

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Run `callback(session)` after every successful commit (e.g. wake the event stream)."""
        self._after_commit.append(callback)

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends, rolls back on an exception."""
        if write and self._sqlite_write_lock is not None:
            async with self._sqlite_write_lock:
                async with self._unit_of_work(write=True) as session:
                    yield session
        else:
            async with self._unit_of_work(write=write) as session:
                yield session

    @asynccontextmanager
    async def _unit_of_work(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            if write:
                await session.connection(execution_options={WRITE_OPTION: True})
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()

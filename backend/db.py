"""Engine, sessions and the unit of work.

One owner commits: HTTP routes get a session from `read_session`/`write_session`, everything
else (orchestrator, CLI) uses `Database.session()`. Services only `flush()`; a service that
waits on slow outside work (git, a subprocess, the network) wraps it in `outside_transaction`.

SQLite: WAL, foreign keys, a busy timeout. Reads run in `BEGIN` (deferred) transactions.
Writes use their own engine whose connections begin with `BEGIN IMMEDIATE` (issued by the
driver together with the first change, which saves a round trip to the driver's thread),
and this process queues its writers on an asyncio lock, so writers never wait in SQLite's
busy handler (which sleeps in steps of up to 100 ms) and never fail to upgrade a read
transaction to a write (SQLITE_BUSY_SNAPSHOT). One server process owns a SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, String, event, exc, func, literal, make_url, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from . import sqlite_connection
from .config import Settings
from .data_dir import create_private_file, make_private_dir

SQLITE_BUSY_TIMEOUT_MS = 30_000
APPLICATION_NAME = "kanban-orchestrator"  # PostgreSQL's application_name, with the pid
WRITER_TURN = "kanban_writer_turn"  # session.info key: the write session's place in the writers' queue
# A PostgreSQL connection that lay in the pool this long is pinged before it is handed out (a
# server restart or an idle timeout may have closed it). One in steady use is not: on asyncpg
# a ping is three round trips (BEGIN, an empty query, ROLLBACK), as many as the live event
# path's whole read. A connection that broke since its last use fails that one use, and the
# pool then replaces every connection it had opened before.
PING_AFTER_IDLE_SECONDS = 5.0
_IDLE_SINCE = "kanban_idle_since"  # a pooled connection's info key: when it was given back


def scoped_channel(channel: str) -> ColumnElement[str]:
    """A PostgreSQL NOTIFY channel of this board only, as SQL. Channels belong to the database,
    not to a schema: boards in other schemas of the same database (a staging board, a test's)
    would otherwise act on each other's signals (a cancel of "run 8" stops their run 8)."""
    return literal(channel, String) + "_" + func.left(func.md5(func.current_schema()), 12)


async def notify(executor: AsyncConnection | AsyncSession, channel: str, payload: str) -> None:
    """NOTIFY on this board's `channel` (delivered when the transaction commits)."""
    await executor.execute(select(func.pg_notify(scoped_channel(channel), payload)))


class _WriterTurn:
    """A write session's hold on this process's SQLite writer lock, which it can give back
    while it waits on outside work (`outside_transaction`) and take again afterwards."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = False

    async def take(self) -> None:
        await self.lock.acquire()
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


def create_engine(settings: Settings, *, sqlite_writer: bool = False, **kwargs: Any) -> AsyncEngine:
    url = settings.resolved_database_url
    if settings.database_kind == "sqlite":
        make_private_dir(settings.data_dir)
        path = make_url(url).database
        if not path:  # normalise_database_url refuses these: SQLite needs a file here
            raise ValueError(f"SQLite needs a file: {url!r}")
        if Path(path).parent.is_dir():
            create_private_file(Path(path))  # 0600 before SQLite makes it (and its -wal, -shm) 0644
        engine = create_async_engine(
            url, async_creator=partial(sqlite_connection.connect, path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000), **kwargs
        )
        _configure_sqlite(engine, writer=sqlite_writer)
        return engine
    # The process's pid in pg_stat_activity: `kanban status` names the one holding the agents lock.
    server_settings = {"application_name": f"{APPLICATION_NAME} (pid {os.getpid()})"}
    if settings.database_schema:
        server_settings["search_path"] = settings.database_schema
    engine = create_async_engine(url, connect_args={"server_settings": server_settings}, **kwargs)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """`pool_pre_ping`, but only for connections idle `PING_AFTER_IDLE_SECONDS` or longer."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure: the pool opens a new connection
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error


def _configure_sqlite(engine: AsyncEngine, *, writer: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Writer: the driver opens a BEGIN IMMEDIATE transaction before the first change.
        # Reader: the "begin" hook below issues BEGIN instead of the driver.
        dbapi_connection.isolation_level = "IMMEDIATE" if writer else None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if not writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")


class Database:
    """Owns the engine and hands out sessions. One per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind = settings.database_kind
        # A Session class of our own: commit hooks must not fire for other Database objects.
        session_class = type("KanbanSession", (Session,), {})
        options: dict[str, Any] = {"expire_on_commit": False, "autoflush": False, "sync_session_class": session_class}
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, **options)
        if self.kind == "sqlite":
            self.write_engine = create_engine(
                settings, sqlite_writer=True, pool_size=1, max_overflow=0, pool_reset_on_return=None
            )
            self.write_sessionmaker = async_sessionmaker(self.write_engine, **options)
            self._sqlite_write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.write_engine = self.engine
            self.write_sessionmaker = self.sessionmaker
            self._sqlite_write_lock = None
        self._after_commit: list[Callable[[Session], None]] = []

        @event.listens_for(session_class, "after_commit")
        def _after_commit(sync_session: Session) -> None:
            for callback in list(self._after_commit):
                callback(sync_session)

    def on_commit(self, callback: Callable[[Session], None]) -> Callable[[], None]:
        """Run `callback(session)` after every successful commit of this database's sessions
        (e.g. wake the event stream, start a queued run), on the event loop's thread, in commit
        order. What a transaction did it finds in `session.info`, put there by the services.
        Returns a function that removes the callback again."""
        self._after_commit.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._after_commit.remove(callback)

        return remove

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends, rolls back on an exception."""
        if write and self._sqlite_write_lock is not None:
            turn = _WriterTurn(self._sqlite_write_lock)
            await turn.take()
            try:
                async with self._unit_of_work(write=True) as session:
                    session.info[WRITER_TURN] = turn
                    yield session
            finally:
                turn.give_back()
        else:
            async with self._unit_of_work(write=write) as session:
                yield session

    @asynccontextmanager
    async def connection(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A Core transaction without the ORM session, for hot paths (run events): commits
        when the block ends, rolls back on an exception. No `on_commit` callbacks."""
        if write and self._sqlite_write_lock is not None:
            async with self._sqlite_write_lock, self.write_engine.begin() as connection:
                yield connection
        else:
            async with (self.write_engine if write else self.engine).begin() as connection:
                yield connection

    async def channel_name(self, channel: str) -> str:
        """The name this board's `channel` has on its PostgreSQL database (to LISTEN on)."""
        async with self.engine.connect() as connection:
            name = await connection.scalar(select(scoped_channel(channel)))
        if not name:
            raise RuntimeError(f"no schema to listen in: search_path {self.settings.database_schema!r}")
        return name

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that need no transaction around them (a live follower's look
        at the log): on PostgreSQL each statement commits by itself, one round trip instead of
        three; on SQLite the reads share one read transaction, as everywhere."""
        async with self.engine.connect() as connection:
            if self.kind != "sqlite":
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @asynccontextmanager
    async def _unit_of_work(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        async with (self.write_sessionmaker if write else self.sessionmaker)() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


@asynccontextmanager
async def outside_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Slow work outside the database (a git merge, waiting for an agent, the network) in the
    middle of a unit of work, holding nothing the database's other users wait for.

    What the session did so far commits first (its `on_commit` callbacks run); during the
    block it holds no connection and, if it is a SQLite write session, not this process's
    writer lock, so other writers go on. After it the session starts afresh: it takes its turn
    as a writer again, and objects read before are detached (still readable, not refreshed):
    read again what is to be changed. The unit of work commits at its end as always.
    """
    await session.commit()
    turn: _WriterTurn | None = session.info.get(WRITER_TURN)
    if turn is not None:
        turn.give_back()
    try:
        yield
    finally:
        if turn is not None:
            await turn.take()
        session.expunge_all()

"""aiosqlite with one hop to the connection's thread per statement.

SQLAlchemy's aiosqlite adapter drives a cursor through four awaits per statement: open a
cursor, execute, fetch the rows, close. Each is a round trip to aiosqlite's thread and back
through the event loop, and under load a round trip costs far more than the statement (a
task create was 13 of them). This connection keeps aiosqlite as it is (its thread, queue,
transactions and shutdown) and gives SQLAlchemy a cursor that executes, fetches every row
and closes the sqlite3 cursor in one round trip. Rows are always fetched in full, which is
what SQLAlchemy's adapter does for every non-streaming result anyway.

It uses aiosqlite internals (`Connection._conn`, `_execute`, `_thread` and the constructor's
arguments), so pyproject.toml pins aiosqlite below the next minor version: check these (and
tests/backend/test_sqlite_connection.py) before raising the bound.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

import aiosqlite

_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: aiosqlite.Connection, sql: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the statement, its rows, and the cursor closed again."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class Cursor:
    """The part of aiosqlite's cursor that SQLAlchemy uses, one round trip per execute."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, sql: str, parameters: Any, many: bool) -> Cursor:
        description, self.rowcount, self.lastrowid, rows = await self._connection._execute(
            _run, self._connection, sql, parameters, many
        )
        self.description = description
        self._rows = deque(rows)
        return self

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        return await self._run(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Any) -> Cursor:
        return await self._run(sql, parameters, True)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(size or self.arraysize, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()


class _CursorContext:
    """What `connection.cursor()` returns: awaitable and an async context manager."""

    def __init__(self, connection: Connection) -> None:
        self._cursor = Cursor(connection)

    def __await__(self):
        return self.__aenter__().__await__()

    async def __aenter__(self) -> Cursor:
        return self._cursor

    async def __aexit__(self, *exc_info: object) -> None:
        await self._cursor.close()


class Connection(aiosqlite.Connection):
    def cursor(self) -> _CursorContext:  # type: ignore[override]  # the same use (await / async with), another class
        # No round trip: the sqlite3 cursor is made on the thread when a statement runs.
        return _CursorContext(self)


def connect(database: str | Path, **kwargs: Any) -> Connection:
    """Like `aiosqlite.connect`; `kwargs` go to `sqlite3.connect`."""
    location = str(database)
    connection = Connection(lambda: sqlite3.connect(location, **kwargs), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never blocks exit
    return connection

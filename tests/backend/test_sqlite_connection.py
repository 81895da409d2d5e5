"""The SQLite connection SQLAlchemy gets: DB-API behaviour intact, one round trip per statement."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from backend import sqlite_connection
from backend.config import Settings
from backend.db import create_engine


@pytest.fixture
async def engine(tmp_path):
    engine = create_engine(Settings(data_dir=tmp_path), sqlite_writer=True)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
    yield engine
    await engine.dispose()


async def test_statements_results_and_errors(engine):
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO items (name) VALUES ('a') RETURNING id, name"))
        assert inserted.all() == [(1, "a")]
        await connection.execute(text("INSERT INTO items (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
        plain = await connection.execute(text("INSERT INTO items (name) VALUES ('d')"))
        assert plain.lastrowid == 4
        updated = await connection.execute(text("UPDATE items SET name = name || '!' WHERE id > 2"))
        assert updated.rowcount == 2
        rows = await connection.execute(text("SELECT id, name FROM items ORDER BY id"))
        assert rows.keys() == ["id", "name"]
        assert rows.all() == [(1, "a"), (2, "b"), (3, "c!"), (4, "d!")]
        streamed = await connection.stream(text("SELECT name FROM items ORDER BY id"))
        assert [row.name async for row in streamed] == ["a", "b", "c!", "d!"]

    with pytest.raises(exc.IntegrityError, match="UNIQUE"):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('e')"))
            await connection.execute(text("INSERT INTO items (name) VALUES ('a')"))
    async with engine.connect() as connection:  # the failed transaction left nothing behind
        assert (await connection.scalar(text("SELECT count(*) FROM items"))) == 4


async def test_one_round_trip_to_the_driver_thread_per_statement(engine, monkeypatch):
    async with engine.connect() as connection:
        await connection.scalar(text("SELECT 1"))  # connection set up
        calls = []
        original = sqlite_connection.Connection._execute

        async def counting(self, fn, *args, **kwargs):
            calls.append(fn)
            return await original(self, fn, *args, **kwargs)

        monkeypatch.setattr(sqlite_connection.Connection, "_execute", counting)
        assert (await connection.execute(text("SELECT id FROM items"))).all() == []
        assert (await connection.scalar(text("SELECT 2"))) == 2
        # aiosqlite as SQLAlchemy drives it would take four each: cursor, execute, fetch, close.
        assert len(calls) == 2

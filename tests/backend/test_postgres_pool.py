"""PostgreSQL's pool: a connection is pinged before use only after it lay idle, and one that
the server closed meanwhile is replaced, not handed out."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from backend import db
from backend.db import Database
from tests.conftest import POSTGRES_URL, make_settings


@pytest.fixture
def postgres_settings(tmp_path):
    settings, drop = make_settings("postgresql", tmp_path)  # sync: it runs its own event loop
    yield settings
    drop()


@pytest.fixture
async def database(postgres_settings):
    database = Database(postgres_settings)
    yield database
    await database.dispose()


@pytest.fixture
def pings(database, monkeypatch):
    count = [0]
    ping = database.engine.dialect.do_ping

    def counted(dbapi_connection):
        count[0] += 1
        return ping(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted)
    return count


async def _backend_pid(database: Database) -> int:
    async with database.session() as session:
        return await session.scalar(text("SELECT pg_backend_pid()"))


async def test_a_connection_in_steady_use_is_not_pinged(database, pings):
    first = await _backend_pid(database)
    for _ in range(5):
        assert await _backend_pid(database) == first  # the same pooled connection
    async with database.reading() as connection:
        assert await connection.scalar(text("SELECT 1")) == 1
    assert pings[0] == 0


async def test_an_idle_connection_the_server_closed_is_replaced(database, pings, monkeypatch):
    gone = await _backend_pid(database)
    other = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", gone)
    finally:
        await other.close()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has lain idle long enough
    assert await _backend_pid(database) != gone
    assert pings[0] == 1

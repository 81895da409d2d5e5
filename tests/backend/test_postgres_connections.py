"""PostgreSQL's connections: a pooled one is pinged before use only after it lay idle (one the
server closed meanwhile is replaced, not handed out), and NOTIFY channels are the board's own."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from backend import db
from backend.db import Database, notify
from backend.runs.service import RUN_SIGNALS_CHANNEL
from tests.conftest import POSTGRES_URL, make_settings


@pytest.fixture
def postgres_settings(tmp_path):
    settings, drop = make_settings("postgresql", tmp_path)  # sync: it runs its own event loop
    yield settings
    drop()


@pytest.fixture
def other_settings(tmp_path):
    settings, drop = make_settings("postgresql", tmp_path / "other")
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


async def test_boards_in_two_schemas_of_one_database_do_not_hear_each_others_signals(postgres_settings, other_settings):
    """Channels belong to the database: without scoping, board B's worker would stop its own
    run 8 when board A's run 8 was cancelled."""
    boards = [Database(postgres_settings), Database(other_settings)]
    heard: list[list[str]] = [[], []]
    listeners = []
    try:
        for database, inbox in zip(boards, heard):
            listener = await asyncpg.connect(
                POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"),
                server_settings={"search_path": database.settings.database_schema},
            )
            listeners.append(listener)
            name = await database.channel_name(RUN_SIGNALS_CHANNEL)
            await listener.add_listener(name, lambda *args, inbox=inbox: inbox.append(args[-1]))
        async with boards[0].session() as session:
            await notify(session, RUN_SIGNALS_CHANNEL, "cancel_requested:8")
        async with boards[1].session() as session:
            await notify(session, RUN_SIGNALS_CHANNEL, "queued:8")
        for _ in range(100):
            if heard[0] and heard[1]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # time for a stray one to arrive as well
        assert heard == [["cancel_requested:8"], ["queued:8"]]
    finally:
        for listener in listeners:
            await listener.close()
        for database in boards:
            await database.dispose()


async def test_a_run_event_batch_survives_a_connection_the_server_closed(postgres_settings, database):
    """Connections in steady use are not pinged: the event writer writes a batch whose
    connection broke once more on a new one, rather than fail the run."""
    from backend.main import create_app
    from backend.runs.event_writer import RunEventWriter
    from tests.backend.factories import create_project, create_task
    from tests.conftest import running

    async with running(create_app(postgres_settings.model_copy(update={"run_agents": False}))) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            project = await create_project(http)
            task = await create_task(http, project["id"])
            run = (await http.post(f"/api/tasks/{task['id']}/runs", json={})).json()
    writer = RunEventWriter(database, run["id"], 1, on_written=lambda _run_id, _records: None)
    await writer.emit("text", {"text": "before"})
    await writer.flush()
    gone = await _backend_pid(database)  # the one pooled connection, which the writer used
    other = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", gone)
    finally:
        await other.close()
    await writer.emit("text", {"text": "after"})
    await writer.flush()
    async with database.session() as session:
        rows = (await session.execute(text("SELECT seq, payload->>'text' FROM run_events ORDER BY seq"))).all()
    assert [tuple(row) for row in rows] == [(1, "before"), (2, "after")]

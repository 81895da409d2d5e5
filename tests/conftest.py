"""Shared fixtures: the backend on a real SQLite file and on a real PostgreSQL server.

`KANBAN_TEST_POSTGRES=required` (set by CI) turns an unreachable PostgreSQL into a failure;
otherwise the PostgreSQL half of the suite is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from backend.config import Settings
from backend.main import create_app
from backend.migrations_runner import upgrade

pytest_plugins = ["tests.fixtures.fake_anthropic", "tests.fixtures.embedding_model"]

POSTGRES_URL = os.environ.get("KANBAN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
POSTGRES_REQUIRED = os.environ.get("KANBAN_TEST_POSTGRES", "").lower() == "required"
DATABASE_KINDS = ["sqlite", "postgresql"]


def postgres_unavailable_reason() -> str | None:
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(exc).__name__}: {exc})"
    return None


def _run_sql(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"), timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def make_settings(kind: str, tmp: Path, **overrides) -> tuple[Settings, callable]:
    """Settings for a fresh, migrated database of `kind`, and a function that drops it."""
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        settings = Settings(data_dir=data_dir, **overrides)
        upgrade(settings)
        return settings, lambda: None
    reason = postgres_unavailable_reason()
    if reason:
        if POSTGRES_REQUIRED:
            pytest.fail(f"{reason}; KANBAN_TEST_POSTGRES=required")
        pytest.skip(reason)
    schema = f"kanban_test_{uuid.uuid4().hex[:12]}"
    _run_sql(f'CREATE SCHEMA "{schema}"')
    settings = Settings(data_dir=data_dir, database_url=POSTGRES_URL, database_schema=schema, **overrides)
    upgrade(settings)
    return settings, lambda: _run_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session", params=DATABASE_KINDS)
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings, drop = make_settings(request.param, tmp_path_factory.mktemp(request.param), sse_heartbeat_seconds=1)
    yield settings
    drop()


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan in a task of its own: fixtures may set up and tear down in
    different tasks, and the lifespan's task groups must be left in the task that entered them."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with application.router.lifespan_context(application):
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    try:
        yield application
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    # The app knows the port `live_server` serves it on: agents' tools and /mcp call the API
    # through it. One app per database: only one process may run its agents.
    async with running(create_app(settings.model_copy(update={"port": free_port()}))) as application:
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app served by uvicorn on a real socket, in the test's event loop."""

    def __init__(self, app: FastAPI, port: int | None = None, *, lifespan: str = "on") -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self._task


@pytest.fixture(scope="session")
async def live_server(app: FastAPI) -> AsyncIterator[LiveServer]:
    """`app` on a real socket (its lifespan is already running)."""
    async with LiveServer(app, app.state.settings.port, lifespan="off") as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder

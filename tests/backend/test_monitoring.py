"""Operations: readiness, the Prometheus metrics and `kanban status`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend import data_dir
from backend.config import Settings
from backend.db import Database
from backend.main import create_app
from backend.metrics import Metrics
from backend.migrations_runner import downgrade, head_revision
from backend.models import RunStatus
from backend.monitoring import readiness
from backend.runs import leases
from backend.runs import monitoring as run_monitoring
from backend.runs import service as run_service
from backend.singleton_lock import SingletonLock
from tests.backend.factories import create_project, create_task
from tests.backend.test_dependencies import ScriptedExecutor, eventually
from tests.conftest import DATABASE_KINDS, LiveServer, make_settings, running

TOKEN = "metrics-token-value"


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, by name and labels (the parser is prometheus-client's)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def metrics_of(http: httpx.AsyncClient) -> dict:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


# --------------------------------------------------------------------------- readiness


async def test_ready_on_a_migrated_database(client, settings):
    response = await client.get("/api/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "database": settings.database_kind,
        "revision": head_revision(),
        "head": head_revision(),
    }
    # Liveness keeps its shape.
    health = (await client.get("/api/health")).json()
    assert set(health) == {"status", "version", "database", "revision"} and health["status"] == "ok"


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_ready_is_503_on_a_database_one_migration_behind(kind, tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, run_agents=False)
    try:
        async with running(create_app(settings)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                assert (await http.get("/api/health/ready")).status_code == 200
                await asyncio.to_thread(downgrade, settings, "-1")  # e.g. someone ran an older version's downgrade
                response = await http.get("/api/health/ready")
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["status"] == "not_ready"
                [problem] = body["problems"]
                assert f"this version needs {head_revision()}" in problem and "kanban db upgrade" in problem
                before = f"{int(head_revision()) - 1:04d}"  # the revision before head
                assert f"at revision {before}" in problem, problem
                assert (await http.get("/api/health")).status_code == 200  # still alive
    finally:
        await asyncio.to_thread(drop)


class SilentServer:
    """A TCP port on loopback that accepts connections and never answers (a hung database)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.accepted:
            connection.close()


async def test_ready_is_503_when_the_database_does_not_answer(tmp_path):
    silent = SilentServer()
    settings = Settings(data_dir=tmp_path, database_url=f"postgresql://kanban@127.0.0.1:{silent.port}/kanban")
    database = Database(settings)
    try:
        started = asyncio.get_running_loop().time()
        found = await readiness(database, timeout=0.5)
        assert asyncio.get_running_loop().time() - started < 5
        assert not found.ready
        assert found.problems == ["the database did not answer within 0.5 s"]
        assert str(silent.port) not in " ".join(found.problems)  # where the database is stays in the log
    finally:
        await database.dispose()
        silent.close()


# --------------------------------------------------------------------------- the token


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory) -> AsyncIterator[httpx.AsyncClient]:
    settings, drop = await asyncio.to_thread(
        make_settings, "sqlite", tmp_path_factory.mktemp("guarded"), api_token=TOKEN, run_agents=False
    )
    async with running(create_app(settings)) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http
    drop()


async def test_health_and_ready_need_no_token_and_metrics_does(guarded):
    assert (await guarded.get("/api/health")).status_code == 200
    assert (await guarded.get("/api/health/ready")).status_code == 200
    assert (await guarded.get("/api/projects")).status_code == 401  # the rest of /api still needs it
    for headers, params in (({}, {}), ({"Authorization": "Bearer wrong"}, {}), ({}, {"token": TOKEN})):
        response = await guarded.get("/metrics", headers=headers, params=params)
        assert response.status_code == 401, (headers, params)
        assert response.headers["www-authenticate"] == "Bearer"
    response = await guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert value(scrape(response.text), "kanban_queue_depth") == 0


async def test_health_checks_keep_the_host_and_origin_checks(guarded):
    for path in ("/api/health", "/api/health/ready"):
        assert (await guarded.get(path, headers={"Host": "evil.example"})).status_code == 400, path
        assert (await guarded.get(path, headers={"Origin": "https://evil.example"})).status_code == 403, path
    response = await guarded.get("/metrics", headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400


def test_metrics_is_not_in_the_openapi_document():
    paths = create_app(Settings()).openapi()["paths"]
    assert "/metrics" not in paths and "/api/health/ready" in paths
    assert "503" in paths["/api/health/ready"]["get"]["responses"]


# --------------------------------------------------------------------------- /metrics


@pytest.fixture(params=DATABASE_KINDS)
async def served(request, tmp_path, monkeypatch) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedExecutor]]:
    """A fresh database, the app on a real socket (for the streams), agents scripted, one at a time."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    settings, drop = await asyncio.to_thread(
        make_settings, request.param, tmp_path, max_concurrent_runs=1, sse_heartbeat_seconds=1
    )
    executor = ScriptedExecutor()
    try:
        async with LiveServer(create_app(settings, executor)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                yield http, executor
    finally:
        await asyncio.to_thread(drop)


async def test_metrics_show_runs_the_queue_its_wait_and_the_streams(served):
    http, executor = served
    samples = await metrics_of(http)
    for status in RunStatus:
        assert value(samples, "kanban_runs", status=status.value) == 0
    assert value(samples, "kanban_queue_depth") == 0
    assert value(samples, "kanban_oldest_queued_run_age_seconds") == 0
    assert value(samples, "kanban_runs_started_total") == 0
    assert value(samples, "kanban_run_queue_wait_seconds_count") == 0
    assert value(samples, "kanban_lease_takeovers_total") == 0
    assert value(samples, "kanban_sse_subscribers", stream="board") == 0
    assert value(samples, "kanban_sse_subscribers", stream="run") == 0

    project = await create_project(http)
    first = await create_task(http, project["id"], title="First")
    second = await create_task(http, project["id"], title="Second")
    executor.hold[first["short_id"]] = asyncio.Event()
    first_run = (await http.post(f"/api/tasks/{first['id']}/runs", json={})).json()
    assert (await http.post(f"/api/tasks/{second['id']}/runs", json={})).status_code == 202

    async def one_running_one_queued() -> dict | None:
        samples = await metrics_of(http)
        states = (value(samples, "kanban_runs", status="running"), value(samples, "kanban_runs", status="queued"))
        return samples if states == (1, 1) else None

    samples = await eventually(one_running_one_queued)
    assert value(samples, "kanban_queue_depth") == 1
    assert value(samples, "kanban_oldest_queued_run_age_seconds") >= 0
    assert value(samples, "kanban_runs_started_total") == 1
    assert value(samples, "kanban_run_queue_wait_seconds_count") == 1

    # A follower of the held run's log, then of the board: each stream counts while it is open.
    async with http.stream("GET", f"/api/runs/{first_run['id']}/stream") as stream:
        assert stream.status_code == 200
        await eventually(lambda: _subscribers(http, "run", 1))
        async with http.stream("GET", "/api/events") as board_stream:
            assert board_stream.status_code == 200
            await eventually(lambda: _subscribers(http, "board", 1))
        await eventually(lambda: _subscribers(http, "board", 0))
    await eventually(lambda: _subscribers(http, "run", 0))

    await asyncio.sleep(0.5)  # the second run waits at least this long in the queue
    executor.hold[first["short_id"]].set()

    async def both_succeeded() -> dict | None:
        samples = await metrics_of(http)
        return samples if value(samples, "kanban_runs", status="succeeded") == 2 else None

    samples = await eventually(both_succeeded)
    assert value(samples, "kanban_runs", status="queued") == 0
    assert value(samples, "kanban_queue_depth") == 0
    assert value(samples, "kanban_oldest_queued_run_age_seconds") == 0
    assert value(samples, "kanban_runs_started_total") == 2
    assert value(samples, "kanban_runs_finished_total", status="succeeded") == 2
    assert value(samples, "kanban_runs_finished_total", status="failed") == 0
    assert value(samples, "kanban_run_queue_wait_seconds_count") == 2
    assert value(samples, "kanban_run_queue_wait_seconds_sum") >= 0.5  # the second run's wait
    assert value(samples, "kanban_run_queue_wait_seconds_bucket", le="0.1") <= 1
    assert value(samples, "kanban_run_event_write_seconds_count") >= 2  # each run wrote its events
    assert value(samples, "kanban_run_event_write_seconds_sum") > 0


async def _subscribers(http: httpx.AsyncClient, stream: str, expected: int) -> bool:
    return value(await metrics_of(http), "kanban_sse_subscribers", stream=stream) == expected


async def test_a_cancelled_queued_run_counts_as_finished_and_a_refused_one_not_at_all(tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, run_agents=False)
    try:
        async with running(create_app(settings)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                task = await create_task(http, project["id"])
                run = (await http.post(f"/api/tasks/{task['id']}/runs", json={})).json()
                assert (await http.post(f"/api/runs/{run['id']}/cancel")).status_code == 200
                assert (await http.post(f"/api/runs/{run['id']}/cancel")).status_code == 409  # nothing committed
                samples = await metrics_of(http)
                assert value(samples, "kanban_runs_finished_total", status="cancelled") == 1
                assert value(samples, "kanban_runs_started_total") == 0
    finally:
        await asyncio.to_thread(drop)


async def test_scrapes_share_one_database_read_per_interval(tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path)
    database = Database(settings)
    reads = 0

    async def read():
        nonlocal reads
        reads += 1
        return await run_monitoring.database_gauges(database)

    try:
        metrics = Metrics(database_gauges_seconds=0.3)
        bodies = await asyncio.gather(*(metrics.exposition(read) for _ in range(20)))  # a scrape storm
        assert reads == 1
        assert all(b"kanban_queue_depth 0.0" in body for body in bodies)
        await metrics.exposition(read)
        assert reads == 1
        await asyncio.sleep(0.4)
        await metrics.exposition(read)
        assert reads == 2
    finally:
        await database.dispose()
        await asyncio.to_thread(drop)


# --------------------------------------------------------------------------- kanban status


def run_status(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env["KANBAN_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["KANBAN_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["KANBAN_DATABASE_SCHEMA"] = settings.database_schema
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "status", *args], env=env, capture_output=True, text=True, timeout=60
    )


def hold_data_dir_lock(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from backend import data_dir; from pathlib import Path; "
            "data_dir.lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_kanban_status_shows_the_queue_running_runs_and_who_runs_agents(kind, tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, run_agents=False)
    try:
        async with running(create_app(settings)) as app:  # a server is up meanwhile; agents run nowhere
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                first = await create_task(http, project["id"], title="First")
                second = await create_task(http, project["id"], title="Second")
                started = (await http.post(f"/api/tasks/{first['id']}/runs", json={})).json()
                queued = (await http.post(f"/api/tasks/{second['id']}/runs", json={})).json()
            database: Database = app.state.database
            me = leases.WorkerIdentity("build-1:4242", "build-1", 4242)
            async with database.session(write=True) as session:  # as a worker would
                await leases.register(session, me, 3, [project["id"]])
            async with database.session(write=True) as session:
                assert await run_service.claim(session, started["id"], me, 20.0) is not None

            result = await asyncio.to_thread(run_status, settings)
            assert result.returncode == 0, result.stderr
            out = result.stdout
            assert f"Database:  {kind} " in out and f"revision {head_revision()} (at head)" in out, out
            if kind == "postgresql":
                assert f"(schema {settings.database_schema})" in out, out
            assert "queued 1, running 1, waiting_approval 0, succeeded 0" in out, out
            assert f"Queue:     1 queued; oldest: run {queued['id']} ({second['short_id']}), waiting " in out, out
            assert "Running:   1\n" in out and f"  run {started['id']} ({first['short_id']}): started " in out, out
            assert "starts 1" in out
            if kind == "sqlite":
                assert "no server holds the data dir lock" in out, out
            else:
                assert "no process holds the singleton lock: no knowledge ingestion" in out, out
            assert "Workers:   1 alive\n" in out, out
            assert (
                "  build-1:4242 on build-1 (pid 4242): heartbeat " in out
                and f"runs {started['id']}, lease until " in out
            ), out

            result = await asyncio.to_thread(run_status, settings, "--json")
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert report["database"] == {
                "kind": kind,
                "url": report["database"]["url"],
                "schema": settings.database_schema,
                "revision": head_revision(),
                "head": head_revision(),
                "at_head": True,
            }
            assert "secret" not in report["database"]["url"]
            assert report["runs"]["queued"] == 1 and report["runs"]["running"] == 1
            assert report["queue_depth"] == 1
            [worker] = report["workers"]
            assert (worker["id"], worker["host"], worker["pid"], worker["alive"]) == (
                "build-1:4242",
                "build-1",
                4242,
                True,
            )
            assert worker["runs"] == [started["id"]] and worker["lease_expires_at"] and worker["takeovers"] == 0
            oldest = report["oldest_queued"]
            assert (oldest["id"], oldest["task"]) == (queued["id"], second["short_id"]) and oldest["age_seconds"] >= 0
            [running_run] = report["running"]
            assert running_run["id"] == started["id"] and running_run["task"] == first["short_id"]
            assert running_run["status"] == "running" and running_run["starts"] == 1 and running_run["started_at"]

            # Who runs agents: the holder of the data dir lock (SQLite), of the advisory lock (PostgreSQL).
            if kind == "sqlite":
                holder = await asyncio.to_thread(hold_data_dir_lock, settings.data_dir)
                try:
                    report = json.loads((await asyncio.to_thread(run_status, settings, "--json")).stdout)
                    assert report["agents"]["held"] is True and report["agents"]["pid"] == holder.pid
                    text = (await asyncio.to_thread(run_status, settings)).stdout
                    assert f"a server (pid {holder.pid}) holds the data dir lock" in text, text
                finally:
                    holder.kill()
                    holder.wait()
                assert data_dir.in_use(settings.data_dir) is None
            else:
                lock = SingletonLock(database)
                assert await lock.take()
                try:
                    report = json.loads((await asyncio.to_thread(run_status, settings, "--json")).stdout)
                    assert report["duties"]["held"] is True
                    assert report["duties"]["application_name"] == f"kanban-orchestrator (pid {os.getpid()})"
                    text = (await asyncio.to_thread(run_status, settings)).stdout
                    assert f"notifications by kanban-orchestrator (pid {os.getpid()})" in text, text
                finally:
                    await lock.release()
                assert lock.schema == settings.database_schema
    finally:
        await asyncio.to_thread(drop)


def test_kanban_status_without_a_database_exits_1(tmp_path):
    settings = Settings(data_dir=tmp_path / "empty")
    result = run_status(settings)
    assert result.returncode == 1
    assert "there is no database at" in result.stderr and "kanban db upgrade" in result.stderr
    assert not (tmp_path / "empty" / "kanban.db").exists()  # it made none

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = Settings(data_dir=tmp_path, database_url=f"postgresql://kanban:hunter2@127.0.0.1:{port}/kanban")
    result = run_status(settings)
    assert result.returncode == 1
    assert f"cannot connect to the database at postgresql+asyncpg://kanban:***@127.0.0.1:{port}/kanban" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

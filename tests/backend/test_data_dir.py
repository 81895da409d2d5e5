"""One server per data dir (SQLite), one agent-running process per database (PostgreSQL), and
a data dir that other local users cannot read. Real `kanban serve` processes, the real Claude
CLI against the fake Messages API."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.runs.processes import AgentFiles
from tests.backend.factories import create_project, create_task
from tests.backend.test_run_faults import _wait_healthy
from tests.backend.test_runs import wait_for_status
from tests.conftest import free_port, make_settings
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn


def serve(data_dir: Path, port: int, env: dict, log: Path, settings: Settings | None = None) -> subprocess.Popen:
    """`kanban serve` on `data_dir` (and the database of `settings`, default SQLite in the data dir)."""
    env = {k: v for k, v in env.items() if not k.startswith("KANBAN_")}
    env["KANBAN_DATA_DIR"] = str(data_dir)
    if settings is not None and settings.database_url:
        env["KANBAN_DATABASE_URL"] = settings.database_url
        env["KANBAN_DATABASE_SCHEMA"] = settings.database_schema or ""
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        start_new_session=True,
    )


wait_healthy = _wait_healthy


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_second_server_leaves_the_first_servers_agents_alone(tmp_path: Path, kind: str):
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path)
    with FakeAnthropic() as fake:
        env = {**os.environ, **fake.env(max_retries=0)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        first = serve(settings.data_dir, port, env, tmp_path / "first.log", settings)
        try:
            await asyncio.to_thread(wait_healthy, url, first, tmp_path / "first.log")
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                project = await create_project(http)
                task = await create_task(http, project["id"], title="Outlive a second server")
                hang = Turn.hang(120, then=Turn.text("Finished despite the second server"))
                fake.add_script(f"[{task['short_id']}]", [hang])
                run = (
                    await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": f"[{task['short_id']}]"})
                ).json()
                assert await asyncio.to_thread(hang.wait_started, 60)
                (pid_file,) = AgentFiles(settings.data_dir / "agents").pid_files_of(run["id"])  # one generation
                pgid = int(Path(pid_file).read_text())

                if kind == "sqlite":
                    # Same port or another: the second server stops before start-up recovery.
                    for second_port in (port, free_port()):
                        log = tmp_path / f"second-{second_port}.log"
                        second = serve(settings.data_dir, second_port, env, log, settings)
                        assert await asyncio.to_thread(second.wait, 60) != 0
                        assert f"another Kanban server (pid {first.pid}) uses {settings.data_dir}" in log.read_text()
                else:
                    # Several processes may share a PostgreSQL database and run agents: the
                    # second one's worker leaves a run whose lease is alive to its owner.
                    log = tmp_path / "second.log"
                    second_port = free_port()
                    second = serve(settings.data_dir, second_port, env, log, settings)
                    try:
                        await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{second_port}", second, log)
                        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second_port}", timeout=30) as other:
                            owned = (await http.get(f"/api/runs/{run['id']}")).json()
                            await asyncio.sleep(3)  # the second worker's start-up and a few scheduling rounds
                            seen = (await other.get(f"/api/runs/{run['id']}")).json()
                            assert seen["status"] == "running"
                            assert (seen["owner"], seen["starts"]) == (owned["owner"], 1), seen
                    finally:
                        stop(second)

                os.killpg(pgid, 0)  # the first server's agent still runs (raises if it was killed)
                assert (await http.get(f"/api/runs/{run['id']}")).json()["status"] == "running"
                hang.release()
                finished = await wait_for_status(http, task["id"], {"succeeded", "failed", "interrupted"}, timeout=60)
                assert finished["status"] == "succeeded", finished["error"]
        finally:
            stop(first)
            await asyncio.to_thread(drop)


def test_the_data_dir_is_private_and_an_open_one_is_tightened(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "worktrees").mkdir()
    (data / "worktrees").chmod(0o755)
    key = data / "secret.key"
    key.write_text("not read here\n")
    key.chmod(0o644)
    fresh = tmp_path / "fresh"
    for folder in (data, fresh):
        port = free_port()
        log = tmp_path / f"{folder.name}.log"
        process = serve(folder, port, dict(os.environ), log)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, log)
            httpx.post(
                f"http://127.0.0.1:{port}/api/projects", json={"name": "x", "workspace_path": str(tmp_path)}, timeout=10
            )
        finally:
            stop(process)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.iterdir()]}
        assert modes[folder.name] == 0o700
        for name in ("worktrees", "agents", "bin"):
            assert modes[name] == 0o700, name
        for name in ("kanban.db", "kanban.db-wal", "kanban.db-shm", "kanban.lock"):
            if name in modes:  # -wal/-shm go away at a clean shutdown
                assert modes[name] == 0o600, name
        assert "kanban.db" in modes
        if folder is data:
            assert modes["secret.key"] == 0o600
            text = log.read_text()
            assert f"{data} 755 -> 700" in text and f"{key} 644 -> 600" in text and "mode tightened" in text


def test_wal_and_shm_files_are_private_while_the_server_runs(tmp_path: Path):
    port = free_port()
    log = tmp_path / "server.log"
    process = serve(tmp_path / "data", port, dict(os.environ), log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        httpx.post(
            f"http://127.0.0.1:{port}/api/projects", json={"name": "y", "workspace_path": str(tmp_path)}, timeout=10
        )
        for name in ("kanban.db", "kanban.db-wal", "kanban.db-shm"):
            assert stat.S_IMODE((tmp_path / "data" / name).stat().st_mode) == 0o600, name
    finally:
        stop(process)

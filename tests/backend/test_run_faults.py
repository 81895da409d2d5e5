"""Runs under faults: a broken CLI, a crashed server. Nothing hangs, nothing written is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.main import create_app
from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import all_events, wait_for_status
from tests.conftest import free_port, make_settings, running
from tests.fixtures.fake_anthropic import FAKE_CLI, FakeAnthropic, Turn


@pytest.fixture(scope="module")
async def stand_in_client(tmp_path_factory):
    settings, drop = await asyncio.to_thread(
        make_settings, "sqlite", tmp_path_factory.mktemp("faults"), claude_cli=FAKE_CLI, cancel_grace_seconds=1
    )
    async with running(create_app(settings)) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http
    drop()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("crash_mid_turn", "exited with code -9"),
        ("garbage", "not valid JSON"),
        ("exit_nonzero", "cannot start: config broken"),
        ("error_result", "Check ANTHROPIC_API_KEY"),
    ],
)
async def test_a_broken_agent_fails_the_run_clearly(stand_in_client, monkeypatch, mode, expected):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    monkeypatch.setenv("FAKE_CLI_MODE", mode)
    monkeypatch.setenv("FAKE_CLI_STDERR", "cannot start: config broken")
    project = await create_project(stand_in_client)
    task = await create_task(stand_in_client, project["id"])
    await stand_in_client.post(f"/api/tasks/{task['id']}/runs")
    run = await wait_for_status(stand_in_client, task["id"], {"succeeded", "failed", "cancelled"}, timeout=30)
    assert run["status"] == "failed"
    assert expected in run["error"], run["error"]
    assert (await stand_in_client.get(f"/api/tasks/{task['id']}")).json()["status"] == "todo"
    events = await all_events(stand_in_client, run["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-2]["type"] == "error"


async def test_cancel_kills_an_agent_that_ignores_interrupts(stand_in_client, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    monkeypatch.setenv("FAKE_CLI_MODE", "deaf")
    project = await create_project(stand_in_client)
    task = await create_task(stand_in_client, project["id"])
    run = (await stand_in_client.post(f"/api/tasks/{task['id']}/runs")).json()
    await wait_for_status(stand_in_client, task["id"], {"running"}, timeout=20)
    await asyncio.sleep(1)
    (agent_pid,) = subprocess.run(["pgrep", "-f", "fake_cli.py"], capture_output=True, text=True).stdout.split()
    # Agents run at a lower CPU priority than the server (KANBAN_AGENT_NICE, default 10).
    assert os.getpriority(os.PRIO_PROCESS, int(agent_pid)) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    autogroup = Path(f"/proc/{agent_pid}/autogroup")
    if autogroup.exists():  # Linux with autogroup: the agent's session group is lowered as well
        assert autogroup.read_text().split()[-1] == "10"
    started = time.monotonic()
    response = await stand_in_client.post(f"/api/runs/{run['id']}/cancel")
    assert response.status_code == 200
    run = await wait_for_status(stand_in_client, task["id"], {"cancelled", "failed"}, timeout=10)
    assert run["status"] == "cancelled"
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.3)
    survivors = subprocess.run(["pgrep", "-f", "fake_cli.py"], capture_output=True, text=True).stdout.split()
    assert survivors == [], "the agent process survived the cancel"


def _serve(data_dir: Path, port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen, log: Path | None = None) -> None:
    """Until the server answers; `log`: where its stderr goes (else a pipe)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, (log.read_text() if log else process.stderr.read().decode())[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)


async def test_kill_9_mid_run_then_restart_resumes_and_keeps_every_event(tmp_path):
    with FakeAnthropic() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        env.update(fake.env(max_retries=0))
        data_dir = tmp_path / "data"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = _serve(data_dir, port, env)
        try:
            await asyncio.to_thread(_wait_healthy, url, server)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                project = await create_project(http)
                task = await create_task(http, project["id"], title="Survive a crash")
                marker = f"[{task['short_id']}]"
                hang = Turn.hang(300)
                fake.add_script(
                    marker,
                    [
                        Turn.tool_use("Write", {"file_path": "before.txt", "content": "written before the crash\n"}),
                        hang,
                    ],
                )
                run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
                await asyncio.to_thread(hang.wait_started, 60)
                await asyncio.sleep(0.5)  # let the batch with the tool result reach the database
                before = await all_events(http, run["id"])
                session_id = (await http.get(f"/api/runs/{run['id']}")).json()["session_id"]
            assert session_id and any(e["type"] == "tool_result" for e in before)

            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
            fake.add_script(session_id, [Turn.text("Finished after the restart")])
            hang.release()

            server = _serve(data_dir, port, env)
            await asyncio.to_thread(_wait_healthy, url, server)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                resumed = await wait_for_status(http, task["id"], {"succeeded", "failed", "interrupted"}, timeout=90)
                assert resumed["status"] == "succeeded", resumed["error"]
                assert resumed["id"] == run["id"] and resumed["session_id"] == session_id
                after = await all_events(http, run["id"])
            assert after[: len(before)] == before  # nothing persisted before the kill was lost
            assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
            restart_requests = [r for r in fake.main_requests() if "board was restarted" in r.all_text()]
            assert restart_requests and "Survive a crash" in restart_requests[0].all_text()
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(15)

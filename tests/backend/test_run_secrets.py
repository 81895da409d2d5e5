"""Plugin secrets during a run: in the MCP server's environment, never on a command line.

The real Claude CLI against the fake Messages API, with the echo MCP server as a plugin whose
environment holds a secret; while the agent works, every process's command line is read."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

from backend.db import Database
from backend.runs.orchestrator import Orchestrator
from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import all_events, wait_for_status
from tests.conftest import make_settings
from tests.fixtures.echo_mcp_server import ECHO_MCP_SERVER
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch):
    for name, value in fake_anthropic.env(max_retries=0, tool_search=False).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


def command_lines() -> dict[int, bytes]:
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                pass  # gone meanwhile
    return lines


def group_members(pgid: int) -> list[int]:
    members = []
    for pid in command_lines():
        try:
            if os.getpgid(pid) == pgid:
                members.append(pid)
        except ProcessLookupError:
            pass
    return members


async def run_with_secret_plugin(client, app, agent_env: FakeAnthropic, hang: Turn) -> tuple[dict, dict, str, str]:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    name = f"echo_{uuid.uuid4().hex[:6]}"
    response = await client.post(
        "/api/plugins",
        json={"name": name, "command": sys.executable, "args": [ECHO_MCP_SERVER], "env": {"ECHO_SECRET": secret}},
    )
    assert response.status_code == 201, response.text
    plugin = response.json()
    project = await create_project(client)
    response = await client.patch(f"/api/projects/{project['id']}", json={"allowed_tools": [f"mcp__{name}"]})
    assert response.status_code == 200, response.text
    assert (
        await client.put(f"/api/plugins/{plugin['id']}/projects/{project['id']}", json={"enabled": True})
    ).status_code == 200
    task = await create_task(client, project["id"], title="Use a plugin with a secret")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(marker, [Turn.mcp(name, "env_digest", {"name": "ECHO_SECRET"}), hang])
    run = (await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    return run, task, secret, name


async def test_plugin_secrets_stay_off_every_command_line(client, app, agent_env: FakeAnthropic):
    hang = Turn.hang(120, then=Turn.text("Used the plugin"))
    run, task, secret, _ = await run_with_secret_plugin(client, app, agent_env, hang)
    assert await asyncio.to_thread(hang.wait_started, 90)
    agents = app.state.settings.data_dir / "agents"
    config_dir = agents / f"run-{run['id']}-1.mcp"

    # The agent is working, its MCP server is up (it answered env_digest): nobody's argv holds the secret.
    pgid = int((agents / f"run-{run['id']}-1.pgid").read_text())
    members = group_members(pgid)
    lines = command_lines()
    assert len(members) >= 2, "the CLI and the plugin's server run in the agent's group"
    assert [pid for pid, line in lines.items() if secret.encode() in line] == []
    cli = lines[pgid].split(b"\0")
    assert b"--mcp-config" in cli and str(config_dir / "mcp.json").encode() in cli
    # The config file: only this user may read it, and it holds what the server needs.
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((config_dir / "mcp.json").stat().st_mode) == 0o600
    assert secret in (config_dir / "mcp.json").read_text()

    hang.release()
    finished = await wait_for_status(client, task["id"], {"succeeded", "failed"}, timeout=60)
    assert finished["status"] == "succeeded", finished["error"]
    results = [e["payload"]["content"] for e in await all_events(client, run["id"]) if e["type"] == "tool_result"]
    assert any("sha256:" + hashlib.sha256(secret.encode()).hexdigest() in r for r in results), results
    assert not config_dir.exists(), "the config with the secrets outlived the run"


async def test_the_config_goes_when_the_run_is_cancelled(client, app, agent_env: FakeAnthropic):
    hang = Turn.hang(120)
    run, task, _, _ = await run_with_secret_plugin(client, app, agent_env, hang)
    assert await asyncio.to_thread(hang.wait_started, 90)
    config_dir = app.state.settings.data_dir / "agents" / f"run-{run['id']}-1.mcp"
    assert config_dir.exists()
    assert (await client.post(f"/api/runs/{run['id']}/cancel")).status_code == 200
    finished = await wait_for_status(client, task["id"], {"cancelled", "failed", "succeeded"}, timeout=20)
    assert finished["status"] == "cancelled"
    assert not config_dir.exists()


async def test_the_config_goes_when_the_run_fails(client, app, agent_env: FakeAnthropic):
    run, task, _, _ = await run_with_secret_plugin(
        client, app, agent_env, Turn.error(529, "overloaded_error", "Overloaded")
    )
    finished = await wait_for_status(client, task["id"], {"cancelled", "failed", "succeeded"}, timeout=90)
    assert finished["status"] == "failed"
    assert not (app.state.settings.data_dir / "agents" / f"run-{run['id']}-1.mcp").exists()


async def test_a_restart_removes_configs_a_crash_left(tmp_path):
    settings, _ = await asyncio.to_thread(make_settings, "sqlite", tmp_path)
    left = settings.data_dir / "agents" / "run-7.mcp"
    left.mkdir(parents=True)
    (left / "mcp.json").write_text('{"mcpServers": {"x": {"env": {"TOKEN": "secret"}}}}')
    database = Database(settings)
    orchestrator = Orchestrator(database, settings)
    try:
        await orchestrator.start()
        assert not left.exists()
    finally:
        await orchestrator.stop()
        await database.dispose()

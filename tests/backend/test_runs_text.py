"""Whatever text an agent produces is stored, on SQLite and PostgreSQL (which refuses NUL in
text and \\u0000 in JSON): the run keeps its events, its result and its work."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.exc import DataError

from backend.main import create_app
from backend.runs.agent import AgentOutcome
from tests.backend import test_runs
from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import all_events, git, wait_for_status
from tests.conftest import make_settings, running
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

REPLACEMENT = "\ufffd"
agent_env = test_runs.agent_env  # the fixture: agents pointed at the fake Messages API


async def test_nul_characters_in_agent_output_are_stored_and_the_run_succeeds(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Binary output")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [
            Turn.tool_use("Write", {"file_path": "kept.txt", "content": "the work\n"}, text="Writing\x00 now"),
            Turn.tool_use("Bash", {"command": "printf 'one\\000two'"}),
            Turn.text("Done\x00 with a NUL", thinking="Think\x00ing"),
        ],
    )
    await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})
    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    assert run["result"] == f"Done{REPLACEMENT} with a NUL"
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["result"] == f"Done{REPLACEMENT} with a NUL"
    events = await all_events(client, run["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    texts = [e["payload"].get("text") for e in events if e["type"] == "text"]
    assert f"Writing{REPLACEMENT} now" in texts
    result = next(e for e in events if e["type"] == "result")
    assert result["payload"]["result"] == f"Done{REPLACEMENT} with a NUL"
    assert not any("\x00" in str(e["payload"]) for e in events)
    assert git(project["workspace_path"], "show", f"{run['branch']}:kept.txt") == "the work"  # the work is kept


class FailsWithADatabaseError:
    """An executor whose run ends in a driver error that quotes its SQL and parameters."""

    async def run(self, request, emit, ask_permission, control) -> AgentOutcome:
        await emit("text", {"text": "working"})
        raise DataError(
            "INSERT INTO run_events (payload) VALUES ($1::JSON)",
            {"payload": "x"},
            ValueError("unsupported Unicode escape sequence"),
        )


@pytest.fixture
async def failing_client(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path)
    async with running(create_app(settings, FailsWithADatabaseError())) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http
    drop()


async def test_a_database_error_is_not_shown_raw_as_the_run_error(failing_client, caplog):
    project = await create_project(failing_client)
    task = await create_task(failing_client, project["id"])
    await failing_client.post(f"/api/tasks/{task['id']}/runs")
    run = await wait_for_status(failing_client, task["id"], {"succeeded", "failed"}, timeout=30)
    assert run["status"] == "failed"
    assert "INSERT" not in run["error"] and "$1" not in run["error"]
    assert "could not be saved" in run["error"] and "server log" in run["error"]
    assert "INSERT INTO run_events" in caplog.text  # the details are for the operator

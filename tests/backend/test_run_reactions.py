"""The orchestrator reacts to what the API commits at once, not at its next look at the database.

The database polls are made a minute long here: each step must be over in seconds, so it can
only have come from the commit hook. The executor is a stand-in for the SDK that asks for one
tool and then works until it is interrupted.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.main import create_app
from backend.runs import approvals, orchestrator
from backend.runs.agent import AgentOutcome, PermissionDecision
from tests.backend.factories import create_project, create_task
from tests.conftest import DATABASE_KINDS, make_settings, running


class AskingExecutor:
    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.decided = asyncio.Event()
        self.decision: PermissionDecision | None = None

    async def run(self, request, emit, ask_permission, control) -> AgentOutcome:
        interrupted = asyncio.Event()

        async def interrupt() -> None:
            interrupted.set()

        control.attach(interrupt, request.pid_file)
        self.asked.set()
        self.decision = await ask_permission("Bash", {"command": "make"}, "tool-1")
        self.decided.set()
        await interrupted.wait()
        return AgentOutcome(is_error=True, interrupted=True)


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_queue_approval_and_cancel_reach_the_agent_at_once(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    monkeypatch.setattr(orchestrator, "POLL_SECONDS", 60)
    monkeypatch.setattr(approvals, "POLL_SECONDS", 60)
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path)
    executor = AskingExecutor()
    try:
        async with running(create_app(settings, executor)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                task = await create_task(http, project["id"])
                run = (await http.post(f"/api/tasks/{task['id']}/runs")).json()
                async with asyncio.timeout(15):  # queued: the scheduler wakes on the commit
                    await executor.asked.wait()
                    while not (pending := (await http.get(f"/api/runs/{run['id']}")).json()["pending_approvals"]):
                        await asyncio.sleep(0.05)
                response = await http.post(f"/api/approvals/{pending[0]['id']}", json={"decision": "allow"})
                assert response.status_code == 200, response.text
                async with asyncio.timeout(15):  # answered: the waiting agent hears of it on the commit
                    await executor.decided.wait()
                assert executor.decision == PermissionDecision(allow=True)
                assert (await http.get(f"/api/runs/{run['id']}")).json()["status"] == "running"

                async with asyncio.timeout(15):
                    response = await http.post(f"/api/runs/{run['id']}/cancel")
                assert response.status_code == 200, response.text
                # The answer comes once the agent has stopped: the run is closed already.
                assert response.json()["status"] == "cancelled"
                assert (await http.get(f"/api/tasks/{task['id']}")).json()["status"] == "todo"
    finally:
        await asyncio.to_thread(drop)

"""KANBAN_MAX_CONCURRENT_RUNS: at most that many runs at once, the rest wait and start in order."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from sqlalchemy import func, select

from backend.main import create_app
from backend.models import AgentRun, RunStatus
from backend.runs.agent import AgentOutcome
from tests.backend.factories import create_project, create_task
from tests.conftest import make_settings, running


class HeldExecutor:
    """Every run waits until the test releases it; records the order runs start in."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.running = 0
        self.most_running = 0
        self.release: dict[int, asyncio.Event] = {}
        self.changed = asyncio.Event()

    async def run(self, request, emit, ask_permission, control) -> AgentOutcome:
        run_id = int(re.search(r"run-(\d+)-\d+\.pgid$", request.pid_file).group(1))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.started.append(run_id)
        self.changed.set()
        try:
            await emit("text", {"text": f"run {run_id} working"})
            await self.release.setdefault(run_id, asyncio.Event()).wait()
        finally:
            self.running -= 1
        return AgentOutcome(result=f"run {run_id} done", turns=1)

    async def wait_started(self, count: int, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while len(self.started) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_five_runs_with_a_limit_of_two(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, max_concurrent_runs=2)
    executor = HeldExecutor()
    try:
        async with running(create_app(settings, executor)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:

                async def in_progress() -> int:
                    async with app.state.database.session() as session:
                        return await session.scalar(
                            select(func.count()).where(
                                AgentRun.status.in_([RunStatus.running.value, RunStatus.waiting_approval.value])
                            )
                        )

                project = await create_project(http)
                queued = []
                for n in range(5):
                    task = await create_task(http, project["id"], title=f"Job {n}")
                    response = await http.post(f"/api/tasks/{task['id']}/runs")
                    assert response.status_code == 202, response.text
                    queued.append(response.json()["id"])

                await executor.wait_started(2)
                await asyncio.sleep(1.5)  # a scheduler pass later: still only two
                # The first two are claimed in queue order and start side by side: either may reach
                # the agent first.
                assert sorted(executor.started) == queued[:2]
                assert await in_progress() == 2
                for done in range(5):
                    assert executor.running <= 2 and await in_progress() <= 2
                    executor.release.setdefault(queued[done], asyncio.Event()).set()
                    await executor.wait_started(min(5, done + 3))
                    # One run starts per released one, and it is the next in the queue.
                    assert sorted(executor.started) == queued[: min(5, done + 3)], "runs started out of queue order"
                    if done + 3 <= 5:
                        assert executor.started[-1] == queued[done + 2], "runs started out of queue order"
                async with asyncio.timeout(20):
                    while await in_progress():
                        await asyncio.sleep(0.05)
                statuses = [(await http.get(f"/api/runs/{run_id}")).json()["status"] for run_id in queued]
        assert statuses == ["succeeded"] * 5
        assert sorted(executor.started) == queued and executor.started[2:] == queued[2:]
        assert executor.most_running == 2
    finally:
        await asyncio.to_thread(drop)

"""Task dependencies on SQLite and PostgreSQL: links, cycles, AND semantics, reasons, the 409s,
and starting by itself once unblocked (exactly once, across a restart, within the limit)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from backend.db import Database
from backend.main import create_app
from backend.models import AgentRun, BoardEvent, TaskDependency
from backend.runs import service as run_service
from backend.runs.agent import AgentOutcome
from backend.runs.orchestrator import Orchestrator
from tests.backend.factories import create_project, create_task
from tests.conftest import DATABASE_KINDS, make_settings, running


class ScriptedExecutor:
    """Runs end as the test says: `fail` holds short ids whose runs fail; `hold` short ids
    whose runs wait until released. Records every prompt and how many ran at once."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.fail: set[str] = set()
        self.hold: dict[str, asyncio.Event] = {}
        self.running = 0
        self.most_running = 0

    async def run(self, request, emit, ask_permission, control) -> AgentOutcome:
        short_id = re.search(r"task (\S+):", request.prompt).group(1)
        self.prompts.append(request.prompt)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if short_id in self.hold:
                await self.hold[short_id].wait()
        finally:
            self.running -= 1
        if short_id in self.fail:
            return AgentOutcome(is_error=True, error="it broke")
        return AgentOutcome(result=f"{short_id} is finished", turns=1)


@pytest.fixture(params=DATABASE_KINDS)
async def board(request, tmp_path, monkeypatch) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedExecutor]]:
    """A fresh database and app whose agents are scripted (only the executor is replaced)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    settings, drop = await asyncio.to_thread(make_settings, request.param, tmp_path, max_concurrent_runs=1)
    executor = ScriptedExecutor()
    try:
        async with running(create_app(settings, executor)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                http.app = app  # type: ignore[attr-defined]
                yield http, executor
    finally:
        await asyncio.to_thread(drop)


async def get(client: httpx.AsyncClient, task: dict) -> dict:
    response = await client.get(f"/api/tasks/{task['id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def patch(client: httpx.AsyncClient, task: dict, **changes) -> httpx.Response:
    current = await get(client, task)
    return await client.patch(f"/api/tasks/{task['id']}", json={"version": current["version"], **changes})


async def move(client: httpx.AsyncClient, task: dict, status: str) -> httpx.Response:
    return await client.post(f"/api/tasks/{task['id']}/move", json={"status": status})


async def runs_of(client: httpx.AsyncClient, task: dict) -> list[dict]:
    return (await client.get(f"/api/tasks/{task['id']}/runs")).json()


async def eventually(check, timeout: float = 20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {value!r}")
        await asyncio.sleep(0.05)


def card(board: dict, task: dict) -> dict:
    return next(c for column in board["columns"] for c in column["tasks"] if c["id"] == task["id"])


async def test_a_link_that_closes_a_cycle_is_refused_with_its_path(board):
    client, _ = board
    project = await create_project(client)
    a = await create_task(client, project["id"], title="A")
    b = await create_task(client, project["id"], title="B", blocked_by=[a["id"]])
    c = await create_task(client, project["id"], title="C", blocked_by=[b["id"]])
    assert [x["short_id"] for x in c["blocked_by"]] == [b["short_id"]] and c["blocked"]

    response = await patch(client, a, blocked_by=[c["id"]])
    assert response.status_code == 422, response.text
    path = [a["short_id"], c["short_id"], b["short_id"], a["short_id"]]
    assert " → ".join(path) in response.json()["detail"]
    assert response.json()["cycle"] == path
    after = await get(client, a)
    assert after["blocked_by"] == [] and after["version"] == a["version"]  # nothing written

    response = await patch(client, b, blocked_by=[a["id"], c["id"]])  # the shortest way round
    assert response.status_code == 422
    assert response.json()["cycle"] == [b["short_id"], c["short_id"], b["short_id"]]
    assert [x["task_id"] for x in (await get(client, b))["blocked_by"]] == [a["id"]]

    # Not a cycle: two paths to the same task (a diamond).
    d = await create_task(client, project["id"], title="D", blocked_by=[b["id"], c["id"], a["id"]])
    assert d["blocked"] and len(d["blocked_by"]) == 3


async def test_bad_links_are_refused_and_nothing_is_written(board):
    client, _ = board
    project = await create_project(client)
    other = await create_project(client)
    foreign = await create_task(client, other["id"])
    task = await create_task(client, project["id"])
    cases = {
        "blocked by itself": [task["id"]],
        "belongs to another project": [foreign["id"]],
        "does not exist": [2_000_000_000],
        "less than or equal to 2147483647": [2**31],
        "greater than or equal to 1": [0],
    }
    for expected, ids in cases.items():
        response = await patch(client, task, blocked_by=ids)
        assert response.status_code == 422, response.text
        assert expected in response.json()["detail"], response.text
    response = await patch(client, task, blocked_by=None)
    assert response.status_code == 422 and "blocked_by cannot be null" in response.text
    assert (await get(client, task))["version"] == task["version"]

    board_before = (await client.get(f"/api/projects/{project['id']}/board")).json()
    for ids in ([foreign["id"]], [2_000_000_000], [2**31], ["KAN-1"]):
        response = await client.post("/api/tasks", json={"project_id": project["id"], "title": "x", "blocked_by": ids})
        assert response.status_code == 422, response.text
    board_after = (await client.get(f"/api/projects/{project['id']}/board")).json()
    assert sum(c["count"] for c in board_after["columns"]) == sum(c["count"] for c in board_before["columns"])
    async with client.app.state.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(TaskDependency)) == 0
    # The refused creates took no numbers.
    assert (await create_task(client, project["id"]))["number"] == task["number"] + 1


async def test_and_semantics_reasons_and_refused_runs(board):
    client, executor = board
    project = await create_project(client)
    a = await create_task(client, project["id"], title="A")
    b = await create_task(client, project["id"], title="B")
    c = await create_task(client, project["id"], title="C", blocked_by=[a["id"], b["id"]])

    assert (await move(client, a, "done")).status_code == 200
    now = await get(client, c)
    assert now["blocked"] is True  # one of two done: still blocked
    assert [(x["short_id"], x["blocking"], x["reason"]) for x in now["blocked_by"]] == [
        (a["short_id"], False, None),
        (b["short_id"], True, f"{b['short_id']} is in To Do"),
    ]
    response = await client.post(f"/api/tasks/{c['id']}/runs", json={})
    assert response.status_code == 409
    assert f"{b['short_id']} is in To Do" in response.json()["detail"]
    assert [x["short_id"] for x in response.json()["blocked_by"]] == [b["short_id"]]
    assert (await move(client, c, "in_progress")).status_code == 409
    assert (await patch(client, c, status="in_progress")).status_code == 409
    assert await runs_of(client, c) == []

    # B's run fails: C stays blocked and says why.
    executor.fail.add(b["short_id"])
    assert (await client.post(f"/api/tasks/{b['id']}/runs", json={})).status_code == 202
    await eventually(lambda: _status_is(client, b, "todo", run="failed"))
    blocker = (await get(client, c))["blocked_by"][1]
    assert blocker["reason"] == f"{b['short_id']}'s run failed" and blocker["run_status"] == "failed"
    assert card((await client.get(f"/api/projects/{project['id']}/board")).json(), c)["blocked_by"][1] == blocker

    assert (await move(client, b, "needs_review")).status_code == 200
    assert (await get(client, c))["blocked_by"][1]["reason"] == f"{b['short_id']} is in Review"
    assert (await move(client, b, "done")).status_code == 200
    now = await get(client, c)
    assert now["blocked"] is False and all(not x["blocking"] for x in now["blocked_by"])
    on_board = card((await client.get(f"/api/projects/{project['id']}/board")).json(), c)
    assert on_board["blocked"] is False and on_board["start_when_unblocked"] is False
    assert (await client.post(f"/api/tasks/{c['id']}/runs", json={})).status_code == 202
    await eventually(lambda: _status_is(client, c, "needs_review"))
    prompt = next(p for p in executor.prompts if f"task {c['short_id']}:" in p)
    assert f"{a['short_id']}: A" in prompt and f"{b['short_id']}: B" in prompt


async def _status_is(client, task, status, run: str | None = None) -> bool:
    now = await get(client, task)
    runs = await runs_of(client, task)
    return now["status"] == status and (run is None or (bool(runs) and runs[0]["status"] == run))


async def test_a_cancelled_predecessor_keeps_its_dependents_blocked_and_says_so(board):
    client, executor = board
    project = await create_project(client)
    a = await create_task(client, project["id"], title="A")
    c = await create_task(client, project["id"], title="C", blocked_by=[a["id"]], start_when_unblocked=True)
    executor.hold[a["short_id"]] = asyncio.Event()  # never released: the run is cancelled
    response = await client.post(f"/api/tasks/{a['id']}/runs", json={})
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    await eventually(lambda: _status_is(client, a, "in_progress", run="running"))
    assert (await client.post(f"/api/runs/{run_id}/cancel")).status_code == 200
    await eventually(lambda: _status_is(client, a, "todo", run="cancelled"))
    [blocker] = (await get(client, c))["blocked_by"]
    assert blocker["blocking"] is True and blocker["reason"] == f"{a['short_id']}'s run was cancelled"
    assert await runs_of(client, c) == []  # the start intent waits; it is not dropped
    assert (await get(client, c))["start_when_unblocked"] is True


async def test_a_deleted_predecessor_keeps_its_dependents_blocked(board):
    client, _ = board
    project = await create_project(client)
    a = await create_task(client, project["id"], title="A")
    c = await create_task(client, project["id"], title="C", blocked_by=[a["id"]], start_when_unblocked=True)
    cursor = (await client.get(f"/api/projects/{project['id']}/board")).json()["last_event_id"]
    assert (await client.delete(f"/api/tasks/{a['id']}")).status_code == 204
    now = await get(client, c)
    assert now["blocked"] is True
    assert now["blocked_by"] == [
        {
            "task_id": None,
            "short_id": a["short_id"],
            "title": None,
            "status": None,
            "run_status": None,
            "blocking": True,
            "reason": f"{a['short_id']} was deleted",
        }
    ]
    async with client.app.state.database.session() as session:
        events = (await session.scalars(select(BoardEvent).where(BoardEvent.id > cursor).order_by(BoardEvent.id))).all()
    assert [e.type for e in events] == ["task.deleted", "task.updated"]  # the row first, then what it changed
    assert events[1].payload["id"] == c["id"] and events[1].payload["version"] == c["version"]
    assert events[1].payload["blocked_by"][0]["reason"] == f"{a['short_id']} was deleted"
    await asyncio.sleep(1.2)  # a scheduler pass: a deleted predecessor never lets it start
    assert await runs_of(client, c) == []
    # Clearing the links unblocks it, and then it starts by itself.
    response = await patch(client, c, blocked_by=[])
    assert response.status_code == 200 and response.json()["blocked"] is False
    await eventually(lambda: runs_of(client, c))
    assert (await get(client, c))["start_when_unblocked"] is False


async def test_starts_by_itself_exactly_once_when_the_last_predecessor_is_done(board):
    client, executor = board
    project = await create_project(client)
    a = await create_task(client, project["id"], title="A")
    b = await create_task(client, project["id"], title="B")
    c = await create_task(client, project["id"], title="C", blocked_by=[a["id"], b["id"]], start_when_unblocked=True)
    assert c["start_when_unblocked"] is True
    assert (await move(client, a, "done")).status_code == 200
    await asyncio.sleep(1.2)  # a scheduler pass: one predecessor is not enough
    assert await runs_of(client, c) == []
    # B through its review: its run succeeds, then it is approved (merged) and so done.
    assert (await client.post(f"/api/tasks/{b['id']}/runs", json={})).status_code == 202
    await eventually(lambda: _status_is(client, b, "needs_review"))
    assert await runs_of(client, c) == []  # in Review is not done
    response = await client.post(f"/api/tasks/{b['id']}/approve")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    await eventually(lambda: _status_is(client, c, "needs_review"))
    await asyncio.sleep(1.2)
    runs = await runs_of(client, c)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    assert (await get(client, c))["start_when_unblocked"] is False
    prompt = next(p for p in executor.prompts if f"task {c['short_id']}:" in p)
    assert f"{b['short_id']} is finished" in prompt  # B's result came along


async def test_two_predecessors_done_at_once_start_one_run(board):
    client, executor = board
    project = await create_project(client)
    for _ in range(3):
        a = await create_task(client, project["id"], title="A")
        b = await create_task(client, project["id"], title="B")
        c = await create_task(
            client, project["id"], title="C", blocked_by=[a["id"], b["id"]], start_when_unblocked=True
        )
        executor.hold[c["short_id"]] = asyncio.Event()
        first, second = await asyncio.gather(move(client, a, "done"), move(client, b, "done"))
        assert first.status_code == second.status_code == 200
        await eventually(lambda c=c: runs_of(client, c))
        await asyncio.sleep(1.2)
        assert len(await runs_of(client, c)) == 1
        executor.hold[c["short_id"]].set()


async def test_concurrent_attempts_consume_the_intent_once(board):
    client, executor = board
    project = await create_project(client)
    c = await create_task(client, project["id"], title="C")
    executor.hold[c["short_id"]] = asyncio.Event()
    database: Database = client.app.state.database
    # Set the intent behind the orchestrator's back, then race for it from two transactions.
    async with database.session(write=True) as session:
        from backend.models import Task

        task = await session.get(Task, c["id"])
        task.start_when_unblocked = True

    async def attempt() -> int | None:
        async with database.session(write=True) as session:
            run = await run_service.start_unblocked(session, c["id"])
            return run.id if run else None

    results = await asyncio.gather(attempt(), attempt(), attempt())
    assert len(await runs_of(client, c)) == 1
    assert len([r for r in results if r is not None]) <= 1  # the orchestrator may have been first
    executor.hold[c["short_id"]].set()


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_unblocked_while_no_agents_ran_starts_on_the_next_start(tmp_path, monkeypatch, kind):
    """The predecessor is done while no process runs agents: the dependent starts when an
    orchestrator starts again, within the concurrency limit."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, max_concurrent_runs=1)
    executor = ScriptedExecutor()
    try:
        async with running(create_app(settings.model_copy(update={"run_agents": False}))) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                a = await create_task(http, project["id"], title="A")
                waiting = [
                    await create_task(
                        http, project["id"], title=f"W{n}", blocked_by=[a["id"]], start_when_unblocked=True
                    )
                    for n in range(3)
                ]
                for task in waiting:
                    executor.hold[task["short_id"]] = asyncio.Event()
                assert (await move(http, a, "done")).status_code == 200
                await asyncio.sleep(0.5)
                for task in waiting:
                    now = await get(http, task)
                    assert now["start_when_unblocked"] is True and now["blocked"] is False
                    assert await runs_of(http, task) == []

        database = Database(settings)
        orchestrator = Orchestrator(database, settings, executor)
        try:
            await orchestrator.start()

            async def counts() -> dict[str, int]:
                async with database.session() as session:
                    rows = (
                        await session.execute(select(AgentRun.status, func.count()).group_by(AgentRun.status))
                    ).all()
                return dict(rows)

            await eventually(lambda: _running(counts, 1))
            assert (await counts()) == {"running": 1, "queued": 2}  # all queued, one at a time
            for task in waiting:
                executor.hold[task["short_id"]].set()
            await eventually(lambda: _succeeded(counts, 3))
            assert executor.most_running == 1
            async with database.session() as session:
                assert await session.scalar(select(func.count()).select_from(AgentRun)) == 3
        finally:
            await orchestrator.stop()
            await database.dispose()
    finally:
        await asyncio.to_thread(drop)


async def _running(counts, n: int) -> bool:
    return (await counts()).get("running", 0) == n


async def _succeeded(counts, n: int) -> bool:
    return (await counts()).get("succeeded", 0) == n


async def test_an_unblocked_intent_starts_at_once_and_a_moot_one_is_dropped(board):
    client, _ = board
    project = await create_project(client)
    now = await create_task(client, project["id"], title="Nothing blocks me", start_when_unblocked=True)
    runs = await eventually(lambda: runs_of(client, now))
    assert len(runs) == 1
    assert (await get(client, now))["start_when_unblocked"] is False

    a = await create_task(client, project["id"], title="A")
    reviewed = await create_task(
        client, project["id"], title="In review", status="needs_review", blocked_by=[a["id"]], start_when_unblocked=True
    )
    assert (await move(client, a, "done")).status_code == 200
    await eventually(lambda: _intent_gone(client, reviewed))
    assert await runs_of(client, reviewed) == []  # no longer in To Do: not started
    assert (await get(client, reviewed))["status"] == "needs_review"


async def _intent_gone(client, task) -> bool:
    return (await get(client, task))["start_when_unblocked"] is False

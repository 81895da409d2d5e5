"""The run state changes of `runs/service.py` the orchestrator, the API and recovery share.

No agents here: the app runs none (`run_agents=False`), so queued runs wait for the test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from backend.errors import Conflict
from backend.main import create_app
from backend.models import AgentRun, Approval, BoardEvent, RunStatus
from backend.runs import service as run_service
from backend.runs.service import RunChange, RunChangeKind
from tests.backend.factories import create_project, create_task
from tests.conftest import DATABASE_KINDS, make_settings, running


@pytest.fixture(scope="module", params=DATABASE_KINDS)
async def board(request, tmp_path_factory):
    settings, drop = await asyncio.to_thread(
        make_settings, request.param, tmp_path_factory.mktemp("service"), run_agents=False
    )
    async with running(create_app(settings)) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield app.state.database, http
    await asyncio.to_thread(drop)


@dataclass
class Seen:
    """What `committed_changes` handed the commit hook."""

    changes: list[RunChange]


@pytest.fixture
def seen(board):
    database, _ = board
    record = Seen([])
    remove = database.on_commit(lambda session: record.changes.extend(run_service.committed_changes(session)))
    yield record
    remove()


async def queued_run(board) -> AgentRun:
    database, http = board
    project = await create_project(http)
    task = await create_task(http, project["id"])
    async with database.session(write=True) as session:
        return await run_service.start(session, task["id"])


async def event_types(database, project_id: int) -> list[str]:
    async with database.session() as session:
        return list(
            await session.scalars(
                select(BoardEvent.type).where(BoardEvent.project_id == project_id).order_by(BoardEvent.id)
            )
        )


async def test_a_queued_run_is_claimed_once(board):
    database, _ = board
    run = await queued_run(board)
    async with database.session(write=True) as session:
        claimed = await run_service.claim(session, run.id)
    assert claimed is not None and claimed.status == RunStatus.running.value and claimed.starts == 1
    assert claimed.started_at is not None
    async with database.session(write=True) as session:
        assert await run_service.claim(session, run.id) is None  # running: not queued any more
    assert (await event_types(database, run.project_id))[-1] == "run.started"


async def test_claim_refuses_a_run_that_is_not_queued(board):
    database, _ = board
    run = await queued_run(board)
    async with database.session(write=True) as session:
        await run_service.request_cancel(session, run.id)  # queued: cancelled at once
    async with database.session(write=True) as session:
        assert await run_service.claim(session, run.id) is None
    async with database.session() as session:
        assert (await run_service.get(session, run.id)).status == RunStatus.cancelled.value
        assert run.id not in await run_service.queued_ids(session, 1000)


async def test_the_oldest_queued_runs_come_first(board):
    database, _ = board
    first, second = await queued_run(board), await queued_run(board)
    async with database.session() as session:
        queued = await run_service.queued_ids(session, 1000)
    assert queued.index(first.id) < queued.index(second.id)
    async with database.session() as session:
        assert len(await run_service.queued_ids(session, 1)) == 1


async def running_run(board, *, session_id: str | None = None) -> AgentRun:
    database, _ = board
    run = await queued_run(board)
    async with database.session(write=True) as session:
        claimed = await run_service.claim(session, run.id)
        claimed.session_id = session_id
    return claimed


async def test_an_approval_request_makes_the_run_wait_and_an_answer_lets_it_run(board, seen):
    database, http = board
    run = await running_run(board)
    async with database.session(write=True) as session:
        first = await run_service.request_approval(session, run.id, "Bash", {"command": "ls\x00"})
        second = await run_service.request_approval(session, run.id, "Write", {"file_path": "a"})
    assert first is not None and first.input == {"command": "ls\ufffd"}
    async with database.session() as session:
        assert (await run_service.get(session, run.id)).status == RunStatus.waiting_approval.value
        assert await run_service.decided_approval(session, first.id) is None

    async with database.session(write=True) as session:
        await run_service.decide_approval(session, first.id, "allow", "")
    assert RunChange(RunChangeKind.approval_decided, first.id) in seen.changes
    async with database.session(write=True) as session:
        assert (await run_service.decided_approval(session, first.id)).status == "allowed"
        assert not await run_service.back_to_running(session, run.id)  # the second one still waits
    async with database.session(write=True) as session:
        await run_service.decide_approval(session, second.id, "always_allow", "")
    async with database.session(write=True) as session:
        assert await run_service.back_to_running(session, run.id)
        assert not await run_service.back_to_running(session, run.id)  # running already
        assert (await run_service.get(session, run.id)).status == RunStatus.running.value

    # "always allow": the next request for that tool is allowed without asking.
    async with database.session(write=True) as session:
        assert await run_service.request_approval(session, run.id, "Write", {"file_path": "b"}) is None
    async with database.session() as session:
        assert (await run_service.get(session, run.id)).status == RunStatus.running.value
    types = await event_types(database, run.project_id)
    assert types.count("approval.requested") == 2 and types.count("approval.resolved") == 2


async def test_requeue_continues_the_session_and_expires_pending_approvals(board, seen):
    database, _ = board
    run = await running_run(board, session_id="session-1")
    async with database.session(write=True) as session:
        approval = await run_service.request_approval(session, run.id, "Bash", {"command": "ls"})
    async with database.session(write=True) as session:
        (left,) = [r for r in await run_service.left_in_progress(session) if r.id == run.id]
        await run_service.requeue(session, left)
    async with database.session() as session:
        again = await run_service.get(session, run.id)
        expired = await session.get(Approval, approval.id)
    assert again.status == RunStatus.queued.value and again.resume_session_id == "session-1"
    assert expired.status == "expired" and expired.decided_at is not None
    assert RunChange(RunChangeKind.queued, run.id) in seen.changes


async def test_an_interrupted_run_resumes_only_once(board, seen):
    database, _ = board
    run = await running_run(board, session_id="session-2")
    async with database.session(write=True) as session:
        await run_service.finish(
            session, await run_service.get(session, run.id), RunStatus.interrupted, error="stopped"
        )
    async with database.session(write=True) as session:
        resumed = await run_service.resume_interrupted(session, run.id)
    assert resumed.status == RunStatus.queued.value and resumed.error is None and resumed.finished_at is None
    assert resumed.resume_session_id == "session-2"
    assert seen.changes.count(RunChange(RunChangeKind.queued, run.id)) == 2  # started, then resumed
    with pytest.raises(Conflict):
        async with database.session(write=True) as session:
            await run_service.resume_interrupted(session, run.id)


async def test_a_cancel_request_is_noted_for_the_agent_running_process(board, seen):
    database, _ = board
    run = await running_run(board)
    async with database.session(write=True) as session:
        flagged = await run_service.request_cancel(session, run.id)
    assert flagged.cancel_requested and flagged.status == RunStatus.running.value
    assert seen.changes[-1] == RunChange(RunChangeKind.cancel_requested, run.id)
    async with database.session() as session:
        assert list(await run_service.cancel_requested(session, [run.id])) == [run.id]


async def test_a_rolled_back_change_is_not_handed_to_the_hook(board, seen):
    database, _ = board
    run = await running_run(board)
    seen.changes.clear()
    with pytest.raises(RuntimeError):
        async with database.session(write=True) as session:
            await run_service.request_cancel(session, run.id)
            raise RuntimeError("the transaction fails")
    async with database.session(write=True) as session:  # a later commit does not carry it along
        await run_service.get(session, run.id)
    assert seen.changes == []


@dataclass
class Totals:
    session_id: str | None = "session-3"
    result: str | None = "Final message"
    cost_usd: float | None = None
    input_tokens: int | None = 10
    output_tokens: int | None = 20
    turns: int | None = 2
    duration_ms: int | None = 300


async def finish_with(database, run_id: int, status: RunStatus, totals: Totals, **keywords) -> AgentRun:
    options = {"error": None, "head_commit": None, "result_before": None, **keywords}
    async with database.session(write=True) as session:
        return await run_service.finish_execution(session, run_id, status, totals, **options)


async def test_finishing_an_execution_records_what_the_agent_reported(board):
    database, http = board
    run = await running_run(board)
    done = await finish_with(database, run.id, RunStatus.succeeded, Totals(cost_usd=0.5), head_commit="abc")
    assert (done.status, done.session_id, done.head_commit, done.result) == (
        "succeeded",
        "session-3",
        "abc",
        "Final message",
    )
    assert (done.input_tokens, done.output_tokens, done.turns, done.duration_ms) == (10, 20, 2, 300)
    assert done.session_cost_usd == 0.5 and done.cost_usd == 0.5
    task = (await http.get(f"/api/tasks/{run.task_id}")).json()
    assert task["status"] == "needs_review" and task["result"] == "Final message"

    # The same session again: the CLI reports its total, the run's own cost is the difference.
    async with database.session(write=True) as session:
        again = await run_service.request_changes(session, run.task_id, "More")
        await run_service.claim(session, again.id)
    done = await finish_with(
        database, again.id, RunStatus.succeeded, Totals(cost_usd=0.8), result_before="Final message"
    )
    assert done.session_cost_usd == 0.8 and done.cost_usd == pytest.approx(0.3)


async def test_a_result_the_agent_reported_itself_wins_over_its_final_message(board):
    database, http = board
    run = await running_run(board)
    version = (await http.get(f"/api/tasks/{run.task_id}")).json()["version"]
    response = await http.patch(
        f"/api/tasks/{run.task_id}", json={"version": version, "result": "Reported through the board's tools"}
    )
    assert response.status_code == 200, response.text
    done = await finish_with(database, run.id, RunStatus.succeeded, Totals())
    assert done.result == "Reported through the board's tools"


async def test_a_failed_execution_keeps_no_result_and_sends_the_task_back(board):
    database, http = board
    run = await running_run(board)
    done = await finish_with(database, run.id, RunStatus.failed, Totals(), error="The agent failed.")
    assert (done.status, done.error, done.result) == ("failed", "The agent failed.", None)
    assert (await http.get(f"/api/tasks/{run.task_id}")).json()["status"] == "todo"

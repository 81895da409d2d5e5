from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from sse_starlette import EventSourceResponse

from ..db import Database
from ..deps import DatabaseDep, ReadSession, SettingsDep
from ..errors import Conflict, InvalidInput
from ..kit.schemas import MAX_ID, ErrorResponse
from ..models import Project, TaskStatus
from ..models.agent_run import FINISHED_RUN_STATUSES
from ..tasks import service as task_service
from ..tasks.schemas import TaskRead
from . import service as run_service
from . import workspace
from .orchestrator import Orchestrator
from .schemas import (
    ApprovalDecision,
    ApprovalRead,
    ChangesRequest,
    DiffRead,
    RunCreate,
    RunEventPage,
    RunRead,
    RunSummary,
)

router = APIRouter(tags=["runs"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
ApprovalId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND = {404: {"model": ErrorResponse}}
CONFLICT = {409: {"model": ErrorResponse}}
STREAM_BATCH = 500
# How often a quiet live stream looks at the database (run state, other processes' events).
POLL_SECONDS = 1.0
FINISHED = {s.value for s in FINISHED_RUN_STATUSES}


def orchestrator_of(request: Request) -> Orchestrator | None:
    return getattr(request.app.state, "orchestrator", None)


def _wake(request: Request) -> None:
    orchestrator = orchestrator_of(request)
    if orchestrator is not None:
        orchestrator.wake()


async def _run_read(session, run) -> dict[str, Any]:
    data = RunRead.model_validate(run).model_dump()
    data["pending_approvals"] = await run_service.pending_approvals(session, run.id)
    return data


@router.post(
    "/tasks/{task_id}/runs",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run an agent on the task",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "A run is already active"}},
)
async def start_run(task_id: TaskId, database: DatabaseDep, request: Request, body: RunCreate | None = None):
    async with database.session(write=True) as session:
        run = await run_service.start(session, task_id, (body or RunCreate()).instructions)
        data = await _run_read(session, run)
    _wake(request)
    return data


@router.get("/tasks/{task_id}/runs", response_model=list[RunSummary], summary="The task's runs, newest first", responses=NOT_FOUND)
async def list_runs(task_id: TaskId, session: ReadSession):
    return await run_service.list_for_task(session, task_id)


@router.post(
    "/tasks/{task_id}/request-changes",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask the agent for changes; it continues the same session",
    responses={**NOT_FOUND, **CONFLICT},
)
async def request_changes(task_id: TaskId, body: ChangesRequest, database: DatabaseDep, request: Request):
    async with database.session(write=True) as session:
        run = await run_service.request_changes(session, task_id, body.feedback)
        data = await _run_read(session, run)
    _wake(request)
    return data


@router.post(
    "/tasks/{task_id}/approve",
    response_model=TaskRead,
    summary="Approve the work: merge the task's branch into the base branch",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "Not in review, or the merge conflicts (`files`)"}},
)
async def approve(task_id: TaskId, database: DatabaseDep):
    async with database.session() as session:
        task = await task_service.get(session, task_id)
        project = await session.get(Project, task.project_id)
        run = await run_service.latest_for_task(session, task_id)
    if task.status != TaskStatus.needs_review.value:
        raise Conflict(f"Task {task.short_id} is not in review (it is {task.status})")
    if run is None or not run.branch or not run.worktree_path:
        raise Conflict(f"Task {task.short_id} has no agent work to merge")
    assert project is not None
    # Git first: a conflict leaves everything as it was. If the database write below failed,
    # approving again finds the branch merged already.
    await asyncio.to_thread(
        workspace.merge_into_base, project.workspace_path, run.branch, project.base_branch, f"Merge {run.branch}: {task.title}"
    )
    async with database.session(write=True) as session:
        task = await task_service.get(session, task_id, for_update=True)
        task = await task_service.transition(session, task, TaskStatus.done)
    with contextlib.suppress(Conflict):  # a worktree with work that is not merged stays
        await asyncio.to_thread(workspace.remove_worktree, project.workspace_path, run.worktree_path, run.branch)
    return task


@router.get("/tasks/{task_id}/diff", response_model=DiffRead, summary="What the agent changed: base…head of the task branch", responses=NOT_FOUND)
async def get_diff(task_id: TaskId, session: ReadSession):
    task = await task_service.get(session, task_id)
    project = await session.get(Project, task.project_id)
    run = await run_service.latest_for_task(session, task_id)
    if run is None or not run.base_commit:
        return {"base": None, "head": None, "branch": run.branch if run else None, "files": [], "stats": {"files": 0, "additions": 0, "deletions": 0}}
    head = run.head_commit or run.base_commit
    diff = await asyncio.to_thread(workspace.diff, project.workspace_path, run.base_commit, head)
    return {**diff, "branch": run.branch}


@router.get("/runs/{run_id}", response_model=RunRead, summary="A run", responses=NOT_FOUND)
async def get_run(run_id: RunId, session: ReadSession):
    return await _run_read(session, await run_service.get(session, run_id))


@router.post("/runs/{run_id}/cancel", response_model=RunRead, summary="Cancel a run", responses={**NOT_FOUND, **CONFLICT})
async def cancel_run(run_id: RunId, database: DatabaseDep, request: Request):
    async with database.session(write=True) as session:
        await run_service.request_cancel(session, run_id)
    orchestrator = orchestrator_of(request)
    if orchestrator is not None:
        await orchestrator.cancel(run_id)
    async with database.session() as session:
        return await _run_read(session, await run_service.get(session, run_id))


@router.post("/runs/{run_id}/resume", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED, summary="Resume an interrupted run", responses={**NOT_FOUND, **CONFLICT})
async def resume_run(run_id: RunId, database: DatabaseDep, request: Request):
    async with database.session(write=True) as session:
        run = await run_service.resume_interrupted(session, run_id)
        data = await _run_read(session, run)
    _wake(request)
    return data


@router.get("/runs/{run_id}/events", response_model=RunEventPage, summary="The run's events after a sequence number", responses=NOT_FOUND)
async def list_run_events(
    run_id: RunId,
    session: ReadSession,
    after_seq: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    await run_service.get(session, run_id)
    items = await run_service.events_after(session, run_id, after_seq, limit)
    return {"items": items, "next_after_seq": items[-1].seq if items else None}


@router.post(
    "/approvals/{approval_id}",
    response_model=ApprovalRead,
    summary="Answer an agent's tool request",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "Already answered"}},
)
async def decide_approval(approval_id: ApprovalId, body: ApprovalDecision, database: DatabaseDep, request: Request):
    async with database.session(write=True) as session:
        approval = await run_service.decide_approval(session, approval_id, body.decision, body.message)
    orchestrator = orchestrator_of(request)
    if orchestrator is not None:
        orchestrator.approval_answered(approval_id)
    return approval


def _sse(event: Any) -> dict[str, Any]:
    data = {"seq": event.seq, "type": event.type, "payload": event.payload, "created_at": event.created_at.isoformat()}
    return {"id": str(event.seq), "event": event.type, "data": json.dumps(data)}


async def run_event_stream(
    database: Database, orchestrator: Orchestrator | None, run_id: int, cursor: int
) -> AsyncIterator[dict[str, Any]]:
    """A run's events after `cursor`, then live ones until the run ends.

    Replays from the database, then takes what the orchestrator's event writer hands over
    (see `live.py`); reads the database again whenever that does not follow on. Without an
    orchestrator in this process (another process runs the agents) it polls the database.
    """
    listener = orchestrator.listeners.listen(run_id) if orchestrator else None
    try:
        caught_up = False
        while True:
            if caught_up and listener is not None:
                handed_over = listener.take_after(cursor)
                if handed_over is None:
                    caught_up = False
                    continue
                for event in handed_over:
                    yield _sse(event)
                    cursor = event.seq
                if not handed_over:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(listener.wake.wait(), POLL_SECONDS)
                    caught_up = listener.wake.is_set()  # a quiet spell: look at the database
                continue
            async with database.session() as session:
                events = await run_service.events_after(session, run_id, cursor, STREAM_BATCH)
                run = await run_service.get(session, run_id) if not events else None
            for event in events:
                yield _sse(event)
                cursor = event.seq
            if events:
                continue
            if run is not None and run.status in FINISHED:
                yield {"event": "end", "data": json.dumps({"status": run.status})}
                return
            if listener is not None:
                caught_up = True
            else:
                await asyncio.sleep(POLL_SECONDS)
    finally:
        if listener is not None:
            orchestrator.listeners.unlisten(run_id, listener)


@router.get(
    "/runs/{run_id}/stream",
    summary="The run's events live (Server-Sent Events)",
    description="`id:` is the event's `seq`. Reconnect with `Last-Event-ID` (or `?last_event_id=`) to get what you "
    "missed. Ends with an `end` event once the run has finished and everything was sent.",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
)
async def stream_run(
    run_id: RunId,
    database: DatabaseDep,
    settings: SettingsDep,
    request: Request,
    last_event_id: Annotated[str | None, Query()] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
    token: Annotated[str | None, Query(description="The API token, for clients that cannot set headers.")] = None,
) -> EventSourceResponse:
    raw = last_event_id_header or last_event_id or "0"
    if not raw.isdigit() or int(raw) > 2**31:
        raise InvalidInput(f"last_event_id: expected a run event sequence number, got {raw[:40]!r}")
    async with database.session() as session:
        await run_service.get(session, run_id)
    return EventSourceResponse(
        run_event_stream(database, orchestrator_of(request), run_id, int(raw)),
        ping=int(settings.sse_heartbeat_seconds) or 1,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from sse_starlette import EventSourceResponse

from ..db import Database
from ..deps import DatabaseDep, MetricsDep, ReadSession, SettingsDep, WriteSession
from ..errors import InvalidInput
from ..kit.schemas import MAX_ID, ErrorResponse, Responses, parse_decimal_id
from ..tasks.schemas import TaskRead
from ..workflows.schemas import WorkflowRead
from . import service as run_service
from .live import RunEnded, RunListeners
from .orchestrator import Orchestrator, agents_status_of
from .schemas import (
    AgentsStatus,
    ApprovalDecision,
    ApprovalRead,
    ChangesRequest,
    DiffRead,
    RunCreate,
    RunEventPage,
    RunEventRead,
    RunRead,
    RunSummary,
)

router = APIRouter(tags=["runs"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
ApprovalId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND: Responses = {404: {"model": ErrorResponse}}
CONFLICT: Responses = {409: {"model": ErrorResponse}}


def orchestrator_of(request: Request) -> Orchestrator | None:
    """The app's orchestrator; None when this process runs no agents. It reacts to what the
    routes commit by itself (`Database.on_commit`): routes need not wake it."""
    return getattr(request.app.state, "orchestrator", None)


@router.post(
    "/tasks/{task_id}/runs",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run an agent on the task",
    responses={
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "A run is already active, or the task is blocked (`blocked_by`)"},
    },
)
async def start_run(task_id: TaskId, session: WriteSession, body: RunCreate | None = None):
    return await run_service.detail(
        session, await run_service.start(session, task_id, (body or RunCreate()).instructions)
    )


@router.get(
    "/tasks/{task_id}/runs",
    response_model=list[RunSummary],
    summary="The task's runs, newest first",
    responses=NOT_FOUND,
)
async def list_runs(task_id: TaskId, session: ReadSession):
    return await run_service.list_for_task(session, task_id)


@router.post(
    "/tasks/{task_id}/request-changes",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask the agent for changes; it continues the same session",
    responses={**NOT_FOUND, **CONFLICT},
)
async def request_changes(task_id: TaskId, body: ChangesRequest, session: WriteSession):
    return await run_service.detail(session, await run_service.request_changes(session, task_id, body.feedback))


@router.post(
    "/tasks/{task_id}/approve",
    response_model=TaskRead,
    summary="Approve the work: merge the task's branch into the base branch",
    responses={
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "Not in review, or the merge conflicts (`files`)"},
    },
)
async def approve(task_id: TaskId, session: WriteSession):
    return await run_service.approve(session, task_id)


@router.get(
    "/tasks/{task_id}/diff",
    response_model=DiffRead,
    summary="What the agent changed: base…head of the task branch",
    responses=NOT_FOUND,
)
async def get_diff(task_id: TaskId, session: ReadSession):
    return await run_service.task_diff(session, task_id)


@router.get("/runs/{run_id}", response_model=RunRead, summary="A run", responses=NOT_FOUND)
async def get_run(run_id: RunId, session: ReadSession):
    return await run_service.detail(session, await run_service.get(session, run_id))


@router.post(
    "/runs/{run_id}/cancel", response_model=RunRead, summary="Cancel a run", responses={**NOT_FOUND, **CONFLICT}
)
async def cancel_run(run_id: RunId, session: WriteSession, request: Request):
    orchestrator = orchestrator_of(request)
    return await run_service.cancel(session, run_id, orchestrator.until_stopped if orchestrator else None)


@router.get("/agents/status", response_model=AgentsStatus, summary="Whether agents can run here")
async def agents_status(request: Request, settings: SettingsDep):
    return agents_status_of(orchestrator_of(request), settings)


@router.post(
    "/workflows/{workflow_id}/cancel",
    response_model=WorkflowRead,
    summary="Cancel a workflow",
    description="No step starts any more, running steps are cancelled (the answer comes once their agents "
    "stopped), and the workflow's card goes back to To Do. Finished steps stay as they are.",
    tags=["workflows"],
    responses={**NOT_FOUND, **CONFLICT},
)
async def cancel_workflow(workflow_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: WriteSession, request: Request):
    orchestrator = orchestrator_of(request)
    return await run_service.cancel_workflow(session, workflow_id, orchestrator.until_stopped if orchestrator else None)


@router.post(
    "/runs/{run_id}/resume",
    response_model=RunRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Resume an interrupted run",
    responses={**NOT_FOUND, **CONFLICT},
)
async def resume_run(run_id: RunId, session: WriteSession):
    return await run_service.detail(session, await run_service.resume_interrupted(session, run_id))


@router.get(
    "/runs/{run_id}/events",
    response_model=RunEventPage,
    summary="The run's events after a sequence number",
    responses=NOT_FOUND,
)
async def list_run_events(
    run_id: RunId,
    session: ReadSession,
    after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    await run_service.get(session, run_id)
    items = await run_service.events_after(session, run_id, after_seq, limit)
    return {"items": [item._asdict() for item in items], "next_after_seq": items[-1].seq if items else None}


@router.post(
    "/approvals/{approval_id}",
    response_model=ApprovalRead,
    summary="Answer an agent's tool request",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "Already answered"}},
)
async def decide_approval(approval_id: ApprovalId, body: ApprovalDecision, session: WriteSession):
    return await run_service.decide_approval(session, approval_id, body.decision, body.message)


def _sse(event: Any) -> dict[str, Any]:
    data = {"seq": event.seq, "type": event.type, "payload": event.payload, "created_at": event.created_at.isoformat()}
    return {"id": str(event.seq), "event": event.type, "data": json.dumps(data)}


async def run_event_stream(
    database: Database, listeners: RunListeners | None, run_id: int, cursor: int
) -> AsyncGenerator[dict[str, Any], None]:
    async for item in run_service.follow(database, listeners, run_id, cursor):
        if isinstance(item, RunEnded):
            yield {"event": "end", "data": json.dumps({"status": item.status})}
        else:
            yield _sse(item)


@router.get(
    "/runs/{run_id}/stream",
    summary="The run's events live (Server-Sent Events)",
    description="A `text/event-stream`. Each event has `id:` (its `seq`), `event:` (its type) and `data:` (JSON "
    "`{seq, type, payload, created_at}`, a `RunEventRead`). Reconnect with `Last-Event-ID` (or "
    "`?last_event_id=`) to get what you missed. Ends with an `end` event (`data:` `{status}`, no `id:`) once "
    "the run has finished and everything was sent. A comment line is sent every 15 s as a heartbeat.",
    response_class=EventSourceResponse,
    responses={
        200: {
            "model": RunEventRead,  # each message's `data:` (but the last, `end`)
            "content": {"text/event-stream": {}},
            "description": "The run's event stream; each message's `data:` is a `RunEventRead`.",
        },
        **NOT_FOUND,
    },
)
async def stream_run(
    run_id: RunId,
    session: ReadSession,
    database: DatabaseDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    request: Request,
    last_event_id: Annotated[str | None, Query()] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
    token: Annotated[str | None, Query(description="The API token, for clients that cannot set headers.")] = None,
) -> EventSourceResponse:
    raw = last_event_id_header or last_event_id or "0"
    cursor = parse_decimal_id(raw)
    if cursor is None:
        raise InvalidInput(f"last_event_id: expected a run event sequence number, got {raw[:40]!r}")
    await run_service.get(session, run_id)
    return EventSourceResponse(
        metrics.count_subscriber(
            "run", run_event_stream(database, getattr(request.app.state, "run_listeners", None), run_id, cursor)
        ),
        ping=int(settings.sse_heartbeat_seconds) or 1,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""The board's live stream: Server-Sent Events with replay from the event log."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse

from ..db import Database
from ..deps import DatabaseDep, MetricsDep, SettingsDep
from ..errors import InvalidInput, NotFound
from ..events import service
from ..events.hub import CATCH_UP, EventHub, LiveEvent, to_live
from ..events.types import EVENT_DESCRIPTIONS
from ..kit.schemas import MAX_EVENT_ID, MAX_ID, parse_decimal_id
from ..models import Project
from .event_payloads import BoardEvent

router = APIRouter(tags=["events"])
REPLAY_BATCH = 500


async def get_hub(request: Request) -> EventHub:
    return request.app.state.hub


HubDep = Annotated[EventHub, Depends(get_hub)]


def _sse(event: LiveEvent) -> dict[str, Any]:
    return {"id": str(event.id), "event": event.type, "data": json.dumps(event.envelope(), separators=(",", ":"))}


async def board_event_stream(
    hub: EventHub, database: Database, project_id: int | None, cursor: int | None
) -> AsyncGenerator[dict[str, Any], None]:
    """Events after `cursor` (all of them, in order, once), then live ones.

    Subscribe first, then read the log: anything committed meanwhile arrives through the
    subscription too, and ids at or below the cursor are skipped.
    """
    subscription = hub.subscribe(project_id)
    try:
        if cursor is None:
            async with database.session() as session:
                cursor = await service.last_id(session)
        while True:
            while True:  # catch up from the log
                async with database.session() as session:
                    rows = await service.list_after(session, cursor, project_id=project_id, limit=REPLAY_BATCH)
                    backlog = [to_live(row) for row in rows]
                for event in backlog:
                    yield _sse(event)
                    cursor = event.id
                if len(backlog) < REPLAY_BATCH:
                    break
            while True:  # live
                live = await subscription.queue.get()
                if live is CATCH_UP:
                    subscription.overflowed = False
                    break
                if live.id > cursor:
                    yield _sse(live)
                    cursor = live.id
    finally:
        hub.unsubscribe(subscription)


def _parse_event_id(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    event_id = parse_decimal_id(value, MAX_EVENT_ID)
    if event_id is None:
        raise InvalidInput(f"{name}: expected the numeric id of a board event, got {value[:40]!r}")
    return event_id


EVENTS_DOC = "\n".join(f"- `{name.value}`: {text}" for name, text in EVENT_DESCRIPTIONS.items())


@router.get(
    "/events",
    summary="Live board events (Server-Sent Events)",
    description=(
        "A `text/event-stream`. Each event has `id:` (its board-event id), `event:` (its type) and "
        "`data:` (JSON `{id, type, project_id, created_at, payload}`). Reconnect with the "
        "`Last-Event-ID` header (or `?last_event_id=`) to receive every event you missed, once, "
        "then live ones. A comment line is sent every 15 s as a heartbeat.\n\nEvent types:\n" + EVENTS_DOC
    ),
    response_class=EventSourceResponse,
    responses={
        200: {
            "model": BoardEvent,  # each message's `data:`
            "content": {"text/event-stream": {}},
            "description": "The event stream; each message's `data:` is a `BoardEvent`.",
        }
    },
)
async def stream_events(
    hub: HubDep,
    database: DatabaseDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this project's events.")] = None,
    last_event_id: Annotated[str | None, Query(description="For clients that cannot set the header.")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
    token: Annotated[str | None, Query(description="The API token, for clients that cannot set headers.")] = None,
) -> EventSourceResponse:
    cursor = _parse_event_id(last_event_id_header, "Last-Event-ID")
    if cursor is None:
        cursor = _parse_event_id(last_event_id, "last_event_id")
    if project_id is not None:
        async with database.session() as session:
            if await session.get(Project, project_id) is None:
                raise NotFound(f"Project {project_id} not found")
    return EventSourceResponse(
        metrics.count_subscriber("board", board_event_stream(hub, database, project_id, cursor)),
        ping=int(settings.sse_heartbeat_seconds) or 1,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

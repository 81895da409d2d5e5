"""Writing and reading the board event log. No FastAPI here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import notify
from ..models import BoardEvent
from ..models.base import utcnow
from .types import BoardEventType

# pg_advisory_xact_lock key that orders event writes (ASCII "kanb").
EVENT_LOG_LOCK = 0x6B616E62
NOTIFY_CHANNEL = "kanban_events"


class EventPayloadError(TypeError):
    """A payload that does not match its event type's model: a bug in the code recording it."""


PayloadCheck = Callable[[BoardEventType, Mapping[str, Any]], None]
# The payload models are the domains' schemas, which this package cannot import (every domain
# records events): the app installs the check (`backend.board.event_payloads.install`).
_payload_check: list[PayloadCheck] = []


def check_payloads_with(check: PayloadCheck) -> None:
    """Have `record` run `check(type, payload)` on every payload (raising `EventPayloadError`)."""
    _payload_check[:] = [check]


class RecordedEvent(NamedTuple):
    """An event row as written; published once its transaction commits."""

    id: int
    type: str
    project_id: int | None
    payload: dict[str, Any]
    created_at: datetime


_EVENTS = cast(Table, BoardEvent.__table__)  # typed as FromClause; a mapped class's table is a Table
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


async def record(
    session: AsyncSession, type: BoardEventType, project_id: int | None, payload: dict[str, Any]
) -> RecordedEvent:
    """Append an event in the caller's transaction; it becomes visible when that commits.

    On PostgreSQL the insert first takes a transaction-scoped lock, so event ids become
    visible in id order: a reader that has seen id N never later finds a smaller one. On
    SQLite write transactions are serialised already. The payload must be what the type's
    model in `board.event_payloads.EVENT_PAYLOADS` describes (`EventPayloadError` otherwise,
    once the app installed the check).
    """
    for check in _payload_check:
        check(type, payload)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        await session.execute(select(func.pg_advisory_xact_lock(EVENT_LOG_LOCK)))
    # Core, not the ORM unit of work: one statement, no flush bookkeeping.
    created_at = utcnow()
    connection = await session.connection()
    values = {"type": type.value, "project_id": project_id, "payload": payload, "created_at": created_at}
    event_id = (await connection.execute(_INSERT_EVENT, values)).scalar_one()
    event = RecordedEvent(event_id, type.value, project_id, payload, created_at)
    if postgresql:
        # Delivered at commit: wakes the live streams of other API processes.
        await notify(session, NOTIFY_CHANNEL, str(event_id))
    session.info.setdefault("board_events", []).append(event)
    return event


async def list_after(
    session: AsyncSession, after_id: int, *, project_id: int | None = None, limit: int = 500
) -> list[BoardEvent]:
    query = select(BoardEvent).where(BoardEvent.id > after_id).order_by(BoardEvent.id).limit(limit)
    if project_id is not None:
        query = query.where(BoardEvent.project_id == project_id)
    return list((await session.scalars(query)).all())


async def last_id(session: AsyncSession) -> int:
    return (await session.scalar(select(func.max(BoardEvent.id)))) or 0

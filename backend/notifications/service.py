"""Notification channels and deliveries: every state change of them is a function here.

Channels hold an apprise URL, encrypted with the plugins' `SecretBox` (it carries the
service's tokens); what this module returns shows only its `url_hint`, and nothing here
records it in board events or logs. Deliveries are made by `collect` from the board event log
(after the cursor, which moves in the same transaction, so each event is turned into
deliveries once) and moved on by the worker (delivery.py): pending → sending → delivered, or
back to pending for another attempt, or failed after the last. A channel's test sends at once,
outside the transaction, and is kept in the delivery log as kind `test`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import outside_transaction
from ..errors import Conflict
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..models import (
    BoardEvent,
    DeliveryStatus,
    NotificationChannel,
    NotificationCursor,
    NotificationDelivery,
    NotificationKind,
    Project,
)
from ..models.base import utcnow
from ..plugins.secrets import SecretBox, SecretUnreadable
from . import urls
from .messages import notice_for
from .schemas import ChannelCreate, ChannelRead, ChannelUpdate, DeliveryRead
from .sending import Sender

# The board events that can make a notification (messages.py says which do).
WATCHED_EVENTS = (
    BoardEventType.approval_requested.value,
    BoardEventType.run_finished.value,
    BoardEventType.task_moved.value,
)
COLLECT_BATCH = 500
DUE_BATCH = 50
TEST_TITLE = "Kanban Orchestrator: test notification"
CURSOR_ID = 1


# --------------------------------------------------------------------------- channels


async def get_channel(session: AsyncSession, channel_id: int, *, for_update: bool = False) -> NotificationChannel:
    return await get_or_404(session, NotificationChannel, channel_id, "Notification channel", for_update=for_update)


def to_read(channel: NotificationChannel) -> ChannelRead:
    return ChannelRead.model_validate(channel)


async def list_channels(session: AsyncSession) -> list[ChannelRead]:
    channels = await session.scalars(select(NotificationChannel).order_by(NotificationChannel.name))
    return [to_read(channel) for channel in channels]


async def _check_name(session: AsyncSession, name: str, channel_id: int | None = None) -> None:
    query = select(NotificationChannel.id).where(func.lower(NotificationChannel.name) == name.lower())
    if channel_id is not None:
        query = query.where(NotificationChannel.id != channel_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"A notification channel named {name!r} exists already; choose another name")


async def _check_project(session: AsyncSession, project_id: int | None) -> None:
    if project_id is not None:
        await get_or_404(session, Project, project_id, "Project")


async def create_channel(session: AsyncSession, box: SecretBox, data: ChannelCreate) -> ChannelRead:
    checked = urls.check(data.url)
    await _check_name(session, data.name)
    await _check_project(session, data.project_id)
    channel = NotificationChannel(
        name=data.name,
        url_encrypted=box.encrypt(checked.url),
        url_hint=checked.hint,
        events=list(data.events),
        project_id=data.project_id,
        enabled=data.enabled,
    )
    session.add(channel)
    await session.flush()
    return to_read(channel)


async def update_channel(session: AsyncSession, box: SecretBox, channel_id: int, data: ChannelUpdate) -> ChannelRead:
    channel = await get_channel(session, channel_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if data.url is not None:
        checked = urls.check(data.url)
        channel.url_encrypted = box.encrypt(checked.url)
        channel.url_hint = checked.hint
    if data.name is not None and data.name != channel.name:
        await _check_name(session, data.name, channel.id)
        channel.name = data.name
    if "project_id" in changes:
        await _check_project(session, data.project_id)
        channel.project_id = data.project_id
    if data.events is not None:
        channel.events = list(data.events)
    if data.enabled is not None:
        channel.enabled = data.enabled
    if changes:
        channel.updated_at = utcnow()
        await session.flush()
    return to_read(channel)


async def delete_channel(session: AsyncSession, channel_id: int) -> None:
    channel = await get_channel(session, channel_id, for_update=True)
    await session.delete(channel)  # its deliveries go with it (ON DELETE CASCADE)
    await session.flush()


async def test_channel(session: AsyncSession, box: SecretBox, channel_id: int, send: Sender) -> DeliveryRead:
    """Send a test notification now (outside the transaction: no lock is held while the
    service answers) and keep the outcome in the delivery log."""
    channel = await get_channel(session, channel_id)
    name = channel.name
    body = f"The channel {name!r} works: the board's notifications reach you here."
    try:
        url = box.decrypt(channel.url_encrypted, f"The URL of notification channel {name!r}")
    except SecretUnreadable as exc:
        error: str | None = exc.message
    else:
        async with outside_transaction(session):
            error = await asyncio.to_thread(send, url, TEST_TITLE, body, NotificationKind.test)
    await get_channel(session, channel_id)  # deleted meanwhile: 404
    now = utcnow()
    delivery = NotificationDelivery(
        channel_id=channel_id,
        event_id=None,
        kind=NotificationKind.test.value,
        title=TEST_TITLE,
        body=body,
        status=(DeliveryStatus.failed if error else DeliveryStatus.delivered).value,
        attempts=1,
        last_error=error,
        created_at=now,
        delivered_at=None if error else now,
    )
    session.add(delivery)
    await session.flush()
    return _delivery_read(delivery, name)


# --------------------------------------------------------------------------- the delivery log


def _delivery_read(delivery: NotificationDelivery, channel_name: str) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        channel_id=delivery.channel_id,
        channel_name=channel_name,
        event_id=delivery.event_id,
        kind=delivery.kind,  # type: ignore[arg-type]  # a str column, CHECK-constrained to these values
        title=delivery.title,
        body=delivery.body,
        status=delivery.status,  # type: ignore[arg-type]  # a str column, CHECK-constrained to these values
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


async def list_deliveries(
    session: AsyncSession, *, channel_id: int | None = None, status: str | None = None, limit: int = 50
) -> list[DeliveryRead]:
    """The delivery log, newest first."""
    query = (
        select(NotificationDelivery, NotificationChannel.name)
        .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
        .order_by(NotificationDelivery.id.desc())
        .limit(limit)
    )
    if channel_id is not None:
        await get_channel(session, channel_id)
        query = query.where(NotificationDelivery.channel_id == channel_id)
    if status is not None:
        query = query.where(NotificationDelivery.status == status)
    return [_delivery_read(delivery, name) for delivery, name in (await session.execute(query)).all()]


# --------------------------------------------------------------------------- the worker's steps


async def collect(session: AsyncSession, board_url: str, batch: int = COLLECT_BATCH) -> int:
    """Turn the board events after the cursor into deliveries and move the cursor past them,
    in the caller's transaction. Returns how many events it looked at (`batch`: call again)."""
    cursor = await session.scalar(
        select(NotificationCursor).where(NotificationCursor.id == CURSOR_ID).with_for_update()
    )
    newest = await event_log.last_id(session)  # read first: every event up to it is committed
    if cursor is None:
        session.add(NotificationCursor(id=CURSOR_ID, last_event_id=newest))
        await session.flush()
        return 0
    if newest <= cursor.last_event_id:
        return 0
    channels = list(
        (
            await session.scalars(
                select(NotificationChannel).where(NotificationChannel.enabled).order_by(NotificationChannel.id)
            )
        ).all()
    )
    if not channels:  # nobody to tell: the events so far are past
        cursor.last_event_id = newest
        await session.flush()
        return 0
    events = (
        await session.scalars(
            select(BoardEvent)
            .where(
                BoardEvent.id > cursor.last_event_id,
                BoardEvent.id <= newest,
                BoardEvent.type.in_(WATCHED_EVENTS),
            )
            .order_by(BoardEvent.id)
            .limit(batch)
        )
    ).all()
    for event in events:
        wanted = [
            channel
            for channel in channels
            if channel.project_id in (None, event.project_id) and channel.created_at <= event.created_at
        ]
        if not wanted:
            continue
        notice = await notice_for(session, event, board_url)
        if notice is None:
            continue
        for channel in wanted:
            if notice.kind.value in channel.events:
                session.add(
                    NotificationDelivery(
                        channel_id=channel.id,
                        event_id=event.id,
                        kind=notice.kind.value,
                        title=notice.title,
                        body=notice.body,
                        status=DeliveryStatus.pending.value,
                        attempts=0,
                        created_at=utcnow(),
                    )
                )
    cursor.last_event_id = events[-1].id if len(events) == batch else newest
    await session.flush()
    return len(events)


async def resume_interrupted(session: AsyncSession) -> int:
    """At the worker's start: a delivery left `sending` (the process stopped mid-send) is
    pending again, due now. Returns how many."""
    result = await session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.status == DeliveryStatus.sending.value)
        .values(status=DeliveryStatus.pending.value, next_attempt_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def due(session: AsyncSession, now: datetime, limit: int = DUE_BATCH) -> list[int]:
    """Pending deliveries whose attempt is due, oldest first."""
    rows = await session.scalars(
        select(NotificationDelivery.id)
        .where(
            NotificationDelivery.status == DeliveryStatus.pending.value,
            (NotificationDelivery.next_attempt_at.is_(None)) | (NotificationDelivery.next_attempt_at <= now),
        )
        .order_by(NotificationDelivery.id)
        .limit(limit)
    )
    return list(rows.all())


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the next pending delivery is due (None: none is waiting)."""
    return await session.scalar(
        select(func.min(func.coalesce(NotificationDelivery.next_attempt_at, NotificationDelivery.created_at))).where(
            NotificationDelivery.status == DeliveryStatus.pending.value
        )
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for an attempt, with what sending it needs."""

    id: int
    channel_name: str
    url: str
    title: str
    body: str
    kind: NotificationKind
    attempt: int


async def claim(session: AsyncSession, box: SecretBox, delivery_id: int) -> Claimed | None:
    """Take a pending delivery for its next attempt (`sending`, one more attempt). None when
    it is no longer pending, or cannot be sent (its channel was switched off, or its URL
    cannot be decrypted: then it fails at once)."""
    delivery = await session.scalar(
        select(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.status == DeliveryStatus.pending.value)
        .with_for_update()
    )
    if delivery is None:
        return None
    channel = await session.get(NotificationChannel, delivery.channel_id)
    reason = None
    url = ""
    if channel is None or not channel.enabled:
        reason = "the channel was switched off before this was sent"
    else:
        try:
            url = box.decrypt(channel.url_encrypted, f"The URL of notification channel {channel.name!r}")
        except SecretUnreadable as exc:
            reason = exc.message
    if reason is not None or channel is None:
        delivery.status = DeliveryStatus.failed.value
        delivery.last_error = reason
        delivery.next_attempt_at = None
        await session.flush()
        return None
    delivery.status = DeliveryStatus.sending.value
    delivery.attempts += 1
    delivery.next_attempt_at = None
    await session.flush()
    return Claimed(
        id=delivery.id,
        channel_name=channel.name,
        url=url,
        title=delivery.title,
        body=delivery.body,
        kind=NotificationKind(delivery.kind),
        attempt=delivery.attempts,
    )


async def settle(session: AsyncSession, delivery_id: int, error: str | None, waits: list[float]) -> str | None:
    """Record an attempt's outcome: delivered; or, with an error, pending again after the wait
    for this attempt (`waits[attempt - 1]`), or failed after the last. Returns the new status."""
    delivery = await session.scalar(
        select(NotificationDelivery).where(NotificationDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None or delivery.status != DeliveryStatus.sending.value:
        return None  # its channel was deleted meanwhile
    now = utcnow()
    if error is None:
        delivery.status = DeliveryStatus.delivered.value
        delivery.delivered_at = now
    elif delivery.attempts <= len(waits):
        delivery.status = DeliveryStatus.pending.value
        delivery.next_attempt_at = now + timedelta(seconds=waits[delivery.attempts - 1])
        delivery.last_error = error
    else:
        delivery.status = DeliveryStatus.failed.value
        delivery.last_error = error
    await session.flush()
    return delivery.status

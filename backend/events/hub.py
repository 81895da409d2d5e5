"""The live side of the event log: one tailer per process fans new rows out to subscribers.

Nothing is published from memory. Writers commit rows to `board_events`; a commit in this
process wakes the tailer at once, and a slow poll (plus NOTIFY on PostgreSQL) picks up rows
written by other processes. The tailer reads rows in id order and hands each subscriber
the ones it asked for. A subscriber that falls too far behind is told so and catches up
from the database, so a slow client costs memory for a bounded queue and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..db import Database
from . import service
from .service import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_LIMIT = 1_000
FETCH_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    id: int
    type: str
    project_id: int | None
    payload: dict[str, Any]
    created_at: str

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "project_id": self.project_id,
            "created_at": self.created_at,
            "payload": self.payload,
        }


# Put on a subscriber's queue when it fell behind: read the database from your cursor.
CATCH_UP = None


@dataclass(eq=False)
class Subscription:
    project_id: int | None
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_LIMIT))
    overflowed: bool = False

    def wants(self, event: LiveEvent) -> bool:
        return self.project_id is None or event.project_id == self.project_id

    def offer(self, event: LiveEvent) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Drop what is queued and tell the reader to catch up from the database.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CATCH_UP)


def to_live(row: Any) -> LiveEvent:
    return LiveEvent(
        id=row.id,
        type=row.type,
        project_id=row.project_id,
        payload=row.payload,
        created_at=row.created_at.isoformat(),
    )


class EventHub:
    def __init__(self, database: Database, poll_seconds: float = 1.0) -> None:
        self.database = database
        self.poll_seconds = poll_seconds
        self.last_seen_id = 0
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listen_connection: Any = None
        database.on_commit(self._on_commit)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        async with self.database.session() as session:
            self.last_seen_id = await service.last_id(session)
        if self.database.kind == "postgresql":
            await self._listen_for_other_processes()
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._listen_connection is not None:
            with contextlib.suppress(Exception):
                await self._listen_connection.close()
            self._listen_connection = None

    async def _listen_for_other_processes(self) -> None:
        try:
            raw = await self.database.engine.raw_connection()
            driver_connection = raw.driver_connection
            await driver_connection.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
            self._listen_connection = raw
        except Exception:  # the poll still finds the events, only later
            log.warning("LISTEN %s failed; relying on polling", NOTIFY_CHANNEL, exc_info=True)

    # -- subscriptions --------------------------------------------------------------

    def subscribe(self, project_id: int | None) -> Subscription:
        subscription = Subscription(project_id)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    # -- tailing --------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _on_commit(self, session: Session) -> None:
        if session.info.pop("board_events_written", False):
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self._fan_out_new_events()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the event log failed; retrying")
                await asyncio.sleep(self.poll_seconds)

    async def _fan_out_new_events(self) -> None:
        while True:
            async with self.database.session() as session:
                rows = await service.list_after(session, self.last_seen_id, limit=FETCH_BATCH)
                events = [to_live(row) for row in rows]
            if not events:
                return
            self._publish(events)
            self.last_seen_id = events[-1].id
            if len(events) < FETCH_BATCH:
                return

    def _publish(self, events: Sequence[LiveEvent]) -> None:
        for subscription in list(self._subscriptions):
            for event in events:
                if subscription.wants(event):
                    subscription.offer(event)

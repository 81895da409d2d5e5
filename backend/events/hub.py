"""The live side of the event log: one tailer per process fans new rows out to subscribers.

Nothing is published before it is committed. Writers commit rows to `board_events`, and
subscribers get them in id order:

- SQLite (one server process, writers serialised by the database's write lock): a commit
  hands its events to the hub directly, in commit order, which is id order. When the ids
  do not follow on from the last one published (another process wrote some), the hub
  reads the log instead.
- PostgreSQL (several API processes): a commit in this process wakes the tailer, NOTIFY
  wakes the tailers of the other processes, and each reads the new rows from the log.
- A slow poll reads the log in any case, as a safety net. A subscriber that falls too far behind is told so and catches up
from the database, so a slow client costs memory for a bounded queue and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from ..db import Database
from ..kit.signals import wait_for_signal
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


def _payload_to(callback: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
    """An asyncpg listener (connection, pid, channel, payload) that hands on the payload."""

    def listener(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    return listener


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
        self._reading = False
        self._direct = database.kind == "sqlite"
        self._channels: dict[str, Callable[[str], None]] = {}
        database.on_commit(self._on_commit)

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """PostgreSQL: also LISTEN on `channel`, on the hub's connection, and hand each
        payload to `callback` (on the event loop). Call before `start`."""
        self._channels[channel] = callback

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
                await greenlet_spawn(self._listen_connection.close)  # a pooled connection's close is synchronous
            self._listen_connection = None

    async def _listen_for_other_processes(self) -> None:
        try:
            raw = await self.database.engine.raw_connection()
            driver_connection = raw.driver_connection
            if driver_connection is None:
                raise RuntimeError("the pool gave a connection without its driver connection")
            await driver_connection.add_listener(
                await self.database.channel_name(NOTIFY_CHANNEL), lambda *_: self.wake()
            )
            for channel, callback in self._channels.items():
                await driver_connection.add_listener(await self.database.channel_name(channel), _payload_to(callback))
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
        """Runs on the event loop's thread right after a commit, in commit order."""
        events = session.info.pop("board_events", None)
        if not events:
            return
        ids = [event.id for event in events]
        follows_on = ids == list(range(self.last_seen_id + 1, self.last_seen_id + 1 + len(ids)))
        if self._direct and follows_on and not self._reading:
            self._publish([to_live(event) for event in events])
            self.last_seen_id = ids[-1]
        else:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await wait_for_signal(self._wake, self.poll_seconds)
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
            self._reading = True  # meanwhile commits wake us instead of publishing directly
            try:
                async with self.database.session() as session:
                    rows = await service.list_after(session, self.last_seen_id, limit=FETCH_BATCH)
                    events = [to_live(row) for row in rows if row.id > self.last_seen_id]
            finally:
                self._reading = False
            if events:
                self._publish(events)
                self.last_seen_id = events[-1].id
            if len(rows) < FETCH_BATCH:
                return

    def _publish(self, events: Sequence[LiveEvent]) -> None:
        for subscription in list(self._subscriptions):
            for event in events:
                if subscription.wants(event):
                    subscription.offer(event)

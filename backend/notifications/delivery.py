"""The notification worker: turns board events into deliveries and sends them, with retries.

It runs in the process that runs agents (one per database: on PostgreSQL the one holding the
agents lock), so several API processes never send the same notification twice. All its state
is in the database:

1. `service.collect` reads the board events after the cursor, writes a delivery per channel
   that wants each one, and moves the cursor, in one transaction;
2. each due delivery is claimed (`sending`, one more attempt; committed), sent with apprise in
   a thread, outside any transaction, and settled: delivered, pending again after a wait
   (`KANBAN_NOTIFICATION_RETRY_SECONDS`, 2 s then 10 s), or failed after the last attempt.

It is woken by new board events (a subscription to this process's event hub, which also
sees other processes' events) and by the next retry's time, and looks every few seconds in
any case. On start, a delivery a stopped process left `sending` is pending again: it is sent
(again) rather than lost, so a crash mid-send can mean a notification arrives twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..config import Settings
from ..db import Database
from ..events.hub import CATCH_UP, EventHub, Subscription
from ..kit.signals import wait_for_signal
from ..models.base import utcnow
from ..plugins.secrets import SecretBox
from . import service
from .sending import Sender, send

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0


class NotificationWorker:
    def __init__(
        self, database: Database, settings: Settings, hub: EventHub, box: SecretBox, sender: Sender = send
    ) -> None:
        self.database = database
        self.settings = settings
        self.hub = hub
        self.box = box
        self.sender = sender
        self._wake = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        async with self.database.session(write=True) as session:
            resumed = await service.resume_interrupted(session)
        if resumed:
            log.info("%s notification(s) interrupted mid-send will be sent again", resumed)
        self._subscription = self.hub.subscribe(None)
        self._wake.set()  # send what a previous server left pending
        self._tasks = [
            asyncio.create_task(self._listen(self._subscription), name="notifications-listen"),
            asyncio.create_task(self._loop(), name="notifications"),
        ]

    async def stop(self) -> None:
        if self._subscription is not None:
            self.hub.unsubscribe(self._subscription)
            self._subscription = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self, subscription: Subscription) -> None:
        """Wake the loop for every committed board event that may make a notification."""
        while True:
            event = await subscription.queue.get()
            if event is CATCH_UP:
                subscription.overflowed = False  # the loop reads the log from its cursor anyway
                self.wake()
            elif event.type in service.WATCHED_EVENTS:
                self.wake()

    async def _loop(self) -> None:
        while True:
            await wait_for_signal(self._wake, await self._wait_seconds())
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending notifications failed; trying again shortly")
                await asyncio.sleep(1)

    async def _wait_seconds(self) -> float:
        try:
            async with self.database.session() as session:
                due_at = await service.next_due_at(session)
        except Exception:  # the loop's own step logs database trouble
            return POLL_SECONDS
        if due_at is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(0.0, (due_at - utcnow()).total_seconds()))

    async def run_once(self) -> None:
        """Collect every new board event, then send every due delivery."""
        board_url = self.settings.resolved_api_url
        while True:
            async with self.database.session(write=True) as session:
                seen = await service.collect(session, board_url)
            if seen < service.COLLECT_BATCH:
                break
        while True:
            async with self.database.session() as session:
                due = await service.due(session, utcnow())
            for delivery_id in due:
                await self.attempt(delivery_id)
            if len(due) < service.DUE_BATCH:
                return

    async def attempt(self, delivery_id: int) -> None:
        async with self.database.session(write=True) as session:
            claimed = await service.claim(session, self.box, delivery_id)
        if claimed is None:
            return
        try:
            error = await asyncio.to_thread(self.sender, claimed.url, claimed.title, claimed.body, claimed.kind)
        except Exception as exc:  # a bug in sending, not the service's answer
            log.exception("sending notification %s failed", claimed.id)
            error = f"sending failed: {type(exc).__name__}"
        async with self.database.session(write=True) as session:
            status = await service.settle(session, claimed.id, error, self.settings.notification_retry_seconds)
        if error is not None:
            # `error` is redacted already; the URL itself is never logged.
            log.warning(
                "notification %s to channel %r: attempt %s failed (%s): %s",
                claimed.id,
                claimed.channel_name,
                claimed.attempt,
                status,
                error,
            )

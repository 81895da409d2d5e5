"""Live run logs: events handed from the writer to the streams that follow a run.

The event writer commits a batch, then hands the same events to every listener of that run,
so a stream with live followers does not query the database for each batch (ten runs
streaming at once made that the bottleneck). The database stays the source of truth: a
stream replays from it first, and reads it again whenever a hand-over does not follow on
from what it has sent (it started late, fell behind and overflowed, or the run changed
state), so a follower never misses or repeats an event. Batches another process wrote (a
worker's run followed through an API process) arrive as a NOTIFY that makes the run's
followers read the database (`service.other_process_wrote`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime
from typing import Any, NamedTuple

# Events a listener may hold before it is told to read the database instead.
LISTENER_LIMIT = 5_000


class RunEventRecord(NamedTuple):
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


class RunEnded(NamedTuple):
    """The last item of a followed run: it finished and every event was sent."""

    status: str


class RunListener:
    """One follower's inbox: committed events in seq order, and a wake-up."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self._pending: deque[RunEventRecord] = deque()
        self._must_read = False

    def offer(self, events: list[RunEventRecord]) -> None:
        if not self._must_read:
            self._pending.extend(events)
            if len(self._pending) > LISTENER_LIMIT:
                self.read_database()
                return
        self.wake.set()

    def read_database(self) -> None:
        """The next take says: read the database (a state change, or too much to hold)."""
        self._must_read = True
        self._pending.clear()
        self.wake.set()

    def take_after(self, cursor: int) -> list[RunEventRecord] | None:
        """Handed-over events that follow `cursor` (maybe none), or None: read the database."""
        self.wake.clear()
        if self._must_read:
            self._must_read = False
            return None
        while self._pending and self._pending[0].seq <= cursor:
            self._pending.popleft()
        if self._pending and self._pending[0].seq != cursor + 1:
            self._pending.clear()
            return None
        events = list(self._pending)
        self._pending.clear()
        return events


class RunListeners:
    """The listeners of every run in this process."""

    def __init__(self) -> None:
        self._by_run: dict[int, set[RunListener]] = {}

    def listen(self, run_id: int) -> RunListener:
        listener = RunListener()
        self._by_run.setdefault(run_id, set()).add(listener)
        return listener

    def unlisten(self, run_id: int, listener: RunListener) -> None:
        listeners = self._by_run.get(run_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._by_run[run_id]

    def written(self, run_id: int, events: list[RunEventRecord]) -> None:
        for listener in self._by_run.get(run_id, ()):
            listener.offer(events)

    def changed(self, run_id: int) -> None:
        """The run itself changed (e.g. finished): followers look at the database."""
        for listener in self._by_run.get(run_id, ()):
            listener.read_database()

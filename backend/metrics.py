"""Prometheus metrics: one registry per app, the metrics objects, the `/metrics` text.

Infrastructure: this module imports nothing of the board. The domains report into it (the
orchestrator times the run event writer's batches; the runs' starts and finishes are counted
as they commit, `runs/monitoring.py`; the streams count their subscribers), and the figures
read from the database at scrape time are handed to `exposition` as `DatabaseGauges`.

Each app makes its own `Metrics` (a `CollectorRegistry` of its own, not prometheus_client's
global one), so several apps in one process (the tests) do not share or clash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from cachetools import TTLCache
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

# A scrape storm (several Prometheus servers, a dashboard refreshing) reads the database at
# most once per this many seconds.
DATABASE_GAUGES_SECONDS = 2.0

STREAMS = ("board", "run")  # the live streams: /api/events and /api/runs/{id}/stream

QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
EVENT_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

T = TypeVar("T")


@dataclass(frozen=True)
class DatabaseGauges:
    """What the database says at scrape time."""

    runs_by_status: Mapping[str, int]  # every status, 0 included (a state that empties shows 0)
    queue_depth: int
    oldest_queued_age_seconds: float  # 0 when nothing waits
    lease_takeovers: int = 0  # every worker's, as the workers table counts them


class _DatabaseCounter:
    """A counter whose total the database keeps (every process reports the same figure)."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation, self.value = name, documentation, 0.0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


class Metrics:
    """One app's metrics, in a registry of its own."""

    def __init__(self, database_gauges_seconds: float = DATABASE_GAUGES_SECONDS) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.runs = Gauge(
            "kanban_runs", "Runs in the database by state, at scrape time.", ["status"], registry=registry
        )
        self.queue_depth = Gauge("kanban_queue_depth", "Runs waiting to start (queued).", registry=registry)
        self.oldest_queued_age = Gauge(
            "kanban_oldest_queued_run_age_seconds",
            "How long the run that has waited longest in the queue has waited (0 when none waits).",
            registry=registry,
        )
        self.queue_wait = Histogram(
            "kanban_run_queue_wait_seconds",
            "Time from queued to started, observed when this process claims a run.",
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.event_write = Histogram(
            "kanban_run_event_write_seconds",
            "One batch insert of run events, its commit included.",
            buckets=EVENT_WRITE_BUCKETS,
            registry=registry,
        )
        self.sse_subscribers = Gauge(
            "kanban_sse_subscribers",
            "Open live streams (Server-Sent Events) of this process: board events and run logs.",
            ["stream"],
            registry=registry,
        )
        self.runs_started = Counter(
            "kanban_runs_started", "Runs this process started (claimed from the queue).", registry=registry
        )
        self.runs_finished = Counter(
            "kanban_runs_finished", "Runs this process finished, by their final state.", ["status"], registry=registry
        )
        self.lease_takeovers = _DatabaseCounter(
            "kanban_lease_takeovers",
            "Runs taken over from a worker that lost its lease, by all workers of the database (read from it "
            "at scrape time: every process reports the same total).",
        )
        registry.register(self.lease_takeovers)
        for stream in STREAMS:
            self.sse_subscribers.labels(stream)  # shown as 0 before the first subscriber
        self._database_gauges: TTLCache[str, DatabaseGauges] = TTLCache(maxsize=1, ttl=database_gauges_seconds)
        self._reading = asyncio.Lock()

    async def exposition(self, read_database: Callable[[], Awaitable[DatabaseGauges]]) -> bytes:
        """The metrics in Prometheus' text format, the database's figures read by
        `read_database` at most once per `database_gauges_seconds` (concurrent scrapes share one read)."""
        gauges = self._database_gauges.get("gauges")
        if gauges is None:
            async with self._reading:
                gauges = self._database_gauges.get("gauges")
                if gauges is None:
                    gauges = await read_database()
                    self._database_gauges["gauges"] = gauges
        for status, count in gauges.runs_by_status.items():
            self.runs.labels(status).set(count)
        self.queue_depth.set(gauges.queue_depth)
        self.oldest_queued_age.set(gauges.oldest_queued_age_seconds)
        self.lease_takeovers.value = gauges.lease_takeovers
        return generate_latest(self.registry)

    async def count_subscriber(self, stream: str, events: AsyncGenerator[T, None]) -> AsyncIterator[T]:
        """`events`, with the stream's subscriber gauge up while they are followed (until the
        client is gone and the stream closed)."""
        gauge = self.sse_subscribers.labels(stream)
        gauge.inc()
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
        finally:
            gauge.dec()


__all__ = ["CONTENT_TYPE", "DatabaseGauges", "Metrics"]

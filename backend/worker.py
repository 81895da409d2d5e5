"""An agent-running process's work: the orchestrator (a worker: it claims, leases and executes
runs), and the duties done once per database (knowledge ingestion, notification delivery).

Used by `kanban serve` with agents on (embedded, beside the API) and by `kanban worker`
(alone). On PostgreSQL the duties go to whichever agent-running process holds the singleton
lock (`singleton_lock.py`); the others try again every `DUTIES_RETRY_SECONDS`, so the duties
move on within seconds when their process stops. On SQLite there is one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from .config import Settings
from .db import Database
from .events.hub import EventHub
from .knowledge.ingestion import IngestionWorker
from .metrics import Metrics
from .migrations_runner import current_revision, head_revision
from .notifications.delivery import NotificationWorker
from .plugins.secrets import SecretBox
from .runs import monitoring as run_monitoring
from .runs.agent import Executor
from .runs.live import RunListeners
from .runs.orchestrator import Orchestrator
from .singleton_lock import SingletonLock

log = logging.getLogger(__name__)

DUTIES_RETRY_SECONDS = 5.0


class SchemaNotCurrent(RuntimeError):
    pass


async def check_schema(database: Database) -> None:
    async with database.engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    head = head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"The database schema is at revision {current or 'none'}, this version needs {head}. "
            "Run `kanban db upgrade` (kanban serve does it on start)."
        )


class AgentWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        hub: EventHub,
        box: SecretBox,
        executor: Executor | None = None,
        metrics: Metrics | None = None,
        listeners: RunListeners | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.hub = hub
        self.box = box
        self.orchestrator = Orchestrator(database, settings, executor, metrics, listeners)
        self.ingestion: IngestionWorker | None = None
        self.notifications: NotificationWorker | None = None
        self._lock = SingletonLock(database) if database.kind == "postgresql" else None
        self._waiting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.orchestrator.start()
        if not await self._take_duties():
            log.info("another process does knowledge ingestion and notifications; this one takes over if it stops")
            self._waiting = asyncio.create_task(self._wait_for_duties(), name="wait-for-duties")

    async def _take_duties(self) -> bool:
        if self._lock is not None and not await self._lock.take():
            return False
        self.ingestion = IngestionWorker(self.database, self.settings)
        await self.ingestion.start()
        self.notifications = NotificationWorker(self.database, self.settings, self.hub, self.box)
        await self.notifications.start()
        return True

    async def _wait_for_duties(self) -> None:
        while True:
            await asyncio.sleep(DUTIES_RETRY_SECONDS)
            try:
                if await self._take_duties():
                    log.info("this process now does knowledge ingestion and notifications")
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("taking the once-per-database duties failed; retrying", exc_info=True)

    async def stop(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiting
        if self.notifications is not None:
            await self.notifications.stop()
        if self.ingestion is not None:
            await self.ingestion.stop()
        await self.orchestrator.stop()
        if self._lock is not None:
            await self._lock.release()


async def work(settings: Settings) -> None:
    """`kanban worker`: run agents against the database until SIGTERM or SIGINT, nothing of
    the HTTP API. Stopping ends its runs' leases: another worker of the host takes them over at
    its next heartbeat, or this one restarted with the same id at its start. A killed worker's
    runs are taken over once their leases expire (or at once by its restart with the same id)."""
    database = Database(settings)
    try:
        await check_schema(database)
        metrics = Metrics()
        database.on_commit(run_monitoring.counting(metrics))
        hub = EventHub(database, poll_seconds=settings.event_poll_seconds)  # notifications follow the board
        await hub.start()
        worker = AgentWorker(database, settings, hub, SecretBox.for_data_dir(settings.data_dir), metrics=metrics)
        try:
            await worker.start()
            me = worker.orchestrator.me
            log.info("worker %s on %s runs agents (API for their tools: %s)", me.id, me.host, settings.resolved_api_url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            log.info("worker %s stopping", me.id)
        finally:
            await worker.stop()
            await hub.stop()
    finally:
        await database.dispose()

"""The batched writer of a run's events: every agent message is a row before anyone sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError

from ..db import Database
from . import service as run_service
from .leases import Lease, LeaseLost
from .live import RunEventRecord

# How long the writer lets a busy run's events gather before the next batch.
EVENT_BATCH_LINGER_SECONDS = 0.01


class RunEventWriter:
    """Group commit for run events: what arrives while a batch is written goes in the next.

    The first event after a quiet spell is written at once. While events keep coming, the
    writer lingers a few milliseconds between batches so they gather: an agent streaming
    thousands of messages a second costs a few hundred transactions, not thousands. Each
    committed batch goes to `on_written` (the run's live followers).

    Each batch is written only while the worker's `lease` holds the run. Once a batch is
    refused (the run was taken over), the writer is fenced: it drops that batch and every
    later event, `on_fenced` is told, and `flush` raises LeaseLost.
    """

    def __init__(
        self,
        database: Database,
        run_id: int,
        next_seq: int,
        on_written: Callable[[int, list[RunEventRecord]], None],
        on_timed: Callable[[float], None] | None = None,
        lease: Lease | None = None,
        on_fenced: Callable[[int], None] | None = None,
    ) -> None:
        self.database = database
        self.run_id = run_id
        self.next_seq = next_seq
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._session_id: str | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._on_written = on_written
        self._on_timed = on_timed  # seconds one batch took to write and commit (the metrics)
        self.lease = lease
        self._on_fenced = on_fenced
        self.fenced = False

    async def emit(self, type: str, payload: dict[str, Any]) -> None:
        if self.fenced:
            return
        self._pending.append((type, payload))
        if type == "init" and payload.get("session_id"):
            self._session_id = payload["session_id"]
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            session_id, self._session_id = self._session_id, None
            started = time.perf_counter()
            try:
                written = await self._write(batch, session_id)
            except LeaseLost:
                self.fenced = True
                self._pending = []
                if self._on_fenced is not None:
                    self._on_fenced(self.run_id)
                raise
            if self._on_timed is not None:
                self._on_timed(time.perf_counter() - started)
            self.next_seq = written[-1].seq + 1
            self._on_written(self.run_id, written)  # committed: now followers may see them
            if self._pending:
                await asyncio.sleep(EVENT_BATCH_LINGER_SECONDS)

    async def _write(self, batch: list[tuple[str, dict[str, Any]]], session_id: str | None) -> list[RunEventRecord]:
        for attempt in (1, 2):
            try:
                async with self.database.connection(write=True) as connection:
                    # The session id goes with its batch: a crash after this can resume the session.
                    return await run_service.append_events(
                        connection, self.run_id, self.next_seq, batch, session_id, self.lease
                    )
            except DBAPIError as error:
                # The connection broke since its last use (the database restarted: connections
                # in steady use are not pinged, see db.PING_AFTER_IDLE_SECONDS). The batch was
                # rolled back with it: once more, on a new connection.
                if attempt == 2 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def flush(self) -> None:
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._flusher is not None and self._flusher.done():
            error = self._flusher.exception()
            if error is not None:
                raise error
        if self.fenced:
            raise LeaseLost(self.run_id)
        if self._pending:
            self._flusher = asyncio.create_task(self._flush_loop())
            await asyncio.shield(self._flusher)

"""The bridge from the agent's tool requests (`can_use_tool`) to approvals on the board.

A tool request the CLI does not allow by itself becomes a pending approval (a row and a
board event) and the agent waits for the answer: at once when the answer commits in this
process or another (`decided`, called by the orchestrator's commit hook or for a NOTIFY),
within a second otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..db import Database
from ..kit.signals import wait_for_signal
from ..models import ApprovalStatus
from . import service as run_service
from .agent import AskPermission, PermissionDecision
from .event_writer import RunEventWriter
from .leases import Lease

POLL_SECONDS = 1.0


class ApprovalBridge:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._signals: dict[int, asyncio.Event] = {}

    def decided(self, approval_id: int) -> None:
        """An answer to `approval_id` has committed: the agent waiting for it looks now."""
        signal = self._signals.get(approval_id)
        if signal is not None:
            signal.set()

    def asker(
        self, run_id: int, writer: RunEventWriter, cancelled: Callable[[], bool], lease: Lease | None = None
    ) -> AskPermission:
        """The run's `ask_permission` for the executor (its writes carry the worker's `lease`)."""

        async def ask(tool_name: str, tool_input: dict[str, Any], tool_use_id: str | None) -> PermissionDecision:
            async with self.database.session(write=True) as session:
                approval = await run_service.request_approval(session, run_id, tool_name, tool_input, lease)
                if approval is None:
                    return PermissionDecision(allow=True)  # the project always allows this tool
                requested = run_service.approval_payload(approval)
            await writer.emit("approval", requested)
            decision = await self._decision(approval.id, cancelled)
            if decision is None:
                return PermissionDecision(allow=False, message="The run was cancelled.")
            async with self.database.session(write=True) as session:
                await run_service.back_to_running(session, run_id, lease)
            await writer.emit("approval", decision)
            allowed = decision["status"] == ApprovalStatus.allowed.value
            return PermissionDecision(allow=allowed, message=decision.get("message") or "")

        return ask

    async def _decision(self, approval_id: int, cancelled: Callable[[], bool]) -> dict[str, Any] | None:
        """The approval once decided (as its payload), or None when the run is cancelled meanwhile."""
        signal = asyncio.Event()
        self._signals[approval_id] = signal
        try:
            while True:
                await wait_for_signal(signal, POLL_SECONDS)
                signal.clear()
                if cancelled():
                    return None
                async with self.database.session() as session:
                    decided = await run_service.decided_approval(session, approval_id)
                    if decided is not None:
                        return run_service.approval_payload(decided)
        finally:
            self._signals.pop(approval_id, None)

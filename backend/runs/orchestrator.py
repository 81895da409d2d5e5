"""The orchestrator: schedules agent runs, drives the executor, persists everything.

- Runs wait in the database (status `queued`) and start in id order, at most
  `max_concurrent_runs` at once. A run is claimed with a conditional UPDATE, so two
  processes can never start the same run.
- Every agent message becomes a RunEvent written (in small batches) before anyone is told.
- A restart finds runs left `running`: with a Claude session they are resumed, without one
  they are marked `interrupted` (and the user can resume them).
- Cancel: interrupt the agent, wait a grace period, then kill its process group.
- Recovery assumes no other live process runs agents on the database. On PostgreSQL the
  orchestrator holds an advisory lock for its lifetime; without it, it runs no agents (on
  SQLite `kanban serve` locks the data dir before it gets here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import Settings
from ..data_dir import make_private_dir
from ..db import Database
from ..events import service as event_log
from ..events.types import BoardEventType
from ..models import AgentRun, Approval, ApprovalStatus, Project, RunStatus, Task
from ..models.base import utcnow
from . import service as run_service
from . import workspace
from .agent import (
    MISSING_CREDENTIALS,
    AgentOutcome,
    AgentRequest,
    ClaudeExecutor,
    Executor,
    PermissionDecision,
    RunControl,
    bundled_cli_path,
    find_credentials,
    kill_process_group,
    remove_mcp_config,
    write_launcher,
)
from .live import RunEventRecord, RunListeners
from .schemas import ApprovalRead

log = logging.getLogger(__name__)

# How long the event writer lets a busy run's events gather before the next batch.
EVENT_BATCH_LINGER_SECONDS = 0.01
POLL_SECONDS = 1.0
# First key of the PostgreSQL advisory lock held by the process that runs agents.
AGENTS_LOCK_SPACE = 0x4B414E  # "KAN"
RESUME_PROMPT = (
    "The board was restarted while you were working on this task. Continue where you left off "
    "and finish the task; end with a short summary of what you did."
)


class RunEventWriter:
    """Group commit for run events: what arrives while a batch is written goes in the next.

    The first event after a quiet spell is written at once. While events keep coming, the
    writer lingers a few milliseconds between batches so they gather: an agent streaming
    thousands of messages a second costs a few hundred transactions, not thousands.
    """

    def __init__(
        self, database: Database, run_id: int, next_seq: int, on_written: Callable[[int, list[RunEventRecord]], None]
    ) -> None:
        self.database = database
        self.run_id = run_id
        self.next_seq = next_seq
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._session_id: str | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._on_written = on_written

    async def emit(self, type: str, payload: dict[str, Any]) -> None:
        self._pending.append((type, payload))
        if type == "init" and payload.get("session_id"):
            self._session_id = payload["session_id"]
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            session_id, self._session_id = self._session_id, None
            async with self.database.connection(write=True) as connection:
                written = await run_service.append_events(connection, self.run_id, self.next_seq, batch)
                if session_id:  # saved at once: a crash after this can resume the session
                    runs = AgentRun.__table__
                    await connection.execute(update(runs).where(runs.c.id == self.run_id).values(session_id=session_id))
            self.next_seq = written[-1].seq + 1
            self._on_written(self.run_id, written)  # committed: now followers may see them
            if self._pending:
                await asyncio.sleep(EVENT_BATCH_LINGER_SECONDS)

    async def flush(self) -> None:
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._flusher is not None and self._flusher.done() and self._flusher.exception():
            raise self._flusher.exception()  # type: ignore[misc]
        if self._pending:
            self._flusher = asyncio.create_task(self._flush_loop())
            await asyncio.shield(self._flusher)


@dataclass
class ActiveRun:
    run_id: int
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[None] | None = None
    cancelling: bool = False
    # The task's result when the run started: an agent that reports through the kanban
    # tools changes it, and then its own report wins over the final message.
    result_before: str | None = None


class Orchestrator:
    def __init__(self, database: Database, settings: Settings, executor: Executor | None = None) -> None:
        self.database = database
        self.settings = settings
        self.executor = executor or ClaudeExecutor()
        self.cli_path = settings.claude_cli or bundled_cli_path()
        self._active: dict[int, ActiveRun] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self.listeners = RunListeners()
        self._approval_signals: dict[int, asyncio.Event] = {}
        self._pid_dir = settings.data_dir / "agents"
        self._launcher = ""
        # False when another process runs the agents of this database (PostgreSQL).
        self.enabled = True
        self._lock_connection: AsyncConnection | None = None
        self._lock_schema: str | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self.database.kind == "postgresql" and not await self._take_agents_lock():
            log.error(
                "Another process runs agents on this database (schema %s): this one serves the board "
                "without running agents, and leaves that process's runs alone. Exactly one process "
                "may have KANBAN_RUN_AGENTS=true on a PostgreSQL database; set it to false here.",
                self._lock_schema,
            )
            self.enabled = False
            return
        for folder in (self._pid_dir, self.settings.data_dir / "bin", self.settings.worktrees_dir):
            make_private_dir(folder)
        self._launcher = write_launcher(self.settings.data_dir / "bin" / "claude-launcher")
        await self._recover()
        self._scheduler = asyncio.create_task(self._schedule_loop(), name="run-scheduler")
        self._warm_up = asyncio.create_task(self._warm_up_tools(), name="warm-up-board-tools")

    async def _take_agents_lock(self) -> bool:
        """PostgreSQL: one agent-running process per database schema. Start-up recovery treats
        every `running` run as left by a dead server, so a second one would kill and requeue
        the first's runs: it must not run agents at all. A session-level advisory lock, held on
        a connection of its own for the process's lifetime, says who runs them."""
        connection = await self.database.engine.connect()
        try:
            self._lock_schema = await connection.scalar(text("SELECT current_schema()"))
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:space, hashtext(current_database() || '.' || current_schema()))"),
                {"space": AGENTS_LOCK_SPACE},
            )
            await connection.commit()  # the lock is the session's, not the transaction's
        except BaseException:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._lock_connection = connection
        return True

    async def _warm_up_tools(self) -> None:
        from mcp_client.registry import warm_up_kanban_server

        try:
            await warm_up_kanban_server()
        except Exception:  # only a head start: the first run builds the server anyway
            log.warning("warming up the board's tools failed", exc_info=True)

    async def stop(self) -> None:
        """Shutdown: agents are stopped, their runs stay `running` and resume on the next start."""
        for background in (self._scheduler, self._warm_up):
            if background:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        for active in list(self._active.values()):
            active.control.kill()
            if active.task:
                active.task.cancel()
        for active in list(self._active.values()):
            if active.task:
                with contextlib.suppress(BaseException):
                    await active.task
        if self._lock_connection is not None:
            with contextlib.suppress(Exception):
                await self._lock_connection.close()  # ends the session: the lock goes with it
            self._lock_connection = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def active_run_ids(self) -> list[int]:
        return list(self._active)

    # -- listeners (live run streams, approvals) ------------------------------------

    def approval_answered(self, approval_id: int) -> None:
        signal = self._approval_signals.get(approval_id)
        if signal is not None:
            signal.set()

    # -- recovery and scheduling ----------------------------------------------------

    def _pid_file(self, run_id: int) -> str:
        return str(self._pid_dir / f"run-{run_id}.pgid")

    def _mcp_config_dir(self, run_id: int) -> str:
        return str(self._pid_dir / f"run-{run_id}.mcp")

    async def _recover(self) -> None:
        # MCP configs (plugin secrets) of runs a crash ended: no agent of this process uses them.
        for folder in self._pid_dir.glob("run-*.mcp"):
            remove_mcp_config(str(folder))
            log.info("removed the MCP config left by %s", folder.name.removesuffix(".mcp"))
        async with self.database.session(write=True) as session:
            left = (
                await session.scalars(
                    select(AgentRun)
                    .where(AgentRun.status.in_([RunStatus.running.value, RunStatus.waiting_approval.value]))
                    .order_by(AgentRun.id)
                )
            ).all()
            for run in left:
                if kill_process_group(self._pid_file(run.id), cli_path=self.cli_path, forget=True):
                    log.warning("run %s: killed the agent processes left by the previous server", run.id)
                if self.settings.resume_interrupted and run.session_id:
                    for approval in await run_service.pending_approvals(session, run.id):
                        approval.status = ApprovalStatus.expired.value
                        approval.decided_at = utcnow()
                    run.status = RunStatus.queued.value
                    run.resume_session_id = run.session_id
                    run.updated_at = utcnow()
                    await session.flush()
                    await run_service.record_run_event(session, BoardEventType.run_queued, run)
                    log.info("run %s: will resume session %s after the restart", run.id, run.session_id)
                else:
                    await run_service.finish(
                        session,
                        run,
                        RunStatus.interrupted,
                        error="The server stopped while this run was in progress. Resume it to continue.",
                    )

    async def _schedule_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                await self._start_queued()
                await self._check_cancel_requests()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling runs failed; retrying")

    async def _start_queued(self) -> None:
        free = self.settings.max_concurrent_runs - len(self._active)
        if free <= 0:
            return
        async with self.database.session() as session:
            queued = (
                await session.scalars(
                    select(AgentRun.id).where(AgentRun.status == RunStatus.queued.value).order_by(AgentRun.id).limit(free)
                )
            ).all()
        for run_id in queued:
            async with self.database.session(write=True) as session:
                claimed = await session.execute(
                    update(AgentRun)
                    .where(AgentRun.id == run_id, AgentRun.status == RunStatus.queued.value)
                    .values(
                        status=RunStatus.running.value,
                        starts=AgentRun.starts + 1,
                        started_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
                if claimed.rowcount != 1:
                    continue
                run = await run_service.get(session, run_id)
                await run_service.record_run_event(session, BoardEventType.run_started, run)
            active = ActiveRun(run_id)
            self._active[run_id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run-{run_id}")

    async def _check_cancel_requests(self) -> None:
        if not self._active:
            return
        async with self.database.session() as session:
            flagged = (
                await session.scalars(
                    select(AgentRun.id).where(AgentRun.id.in_(list(self._active)), AgentRun.cancel_requested.is_(True))
                )
            ).all()
        for run_id in flagged:
            asyncio.create_task(self.cancel(run_id))

    # -- cancel -----------------------------------------------------------------------

    async def cancel(self, run_id: int) -> None:
        """Stop a run this process is executing (the request is already in the database)."""
        active = self._active.get(run_id)
        if active is None:
            self.wake()
            return
        if active.cancelling:
            return
        active.cancelling = True
        grace = self.settings.cancel_grace_seconds
        await active.control.interrupt()
        if await _finishes_within(active.task, grace):
            return
        log.warning("run %s did not stop within %.1f s; killing its processes", run_id, grace)
        active.control.kill()
        if await _finishes_within(active.task, grace):
            return
        if active.task:
            active.task.cancel()
            await _finishes_within(active.task, grace)

    # -- one run ------------------------------------------------------------------------

    async def _execute(self, active: ActiveRun) -> None:
        run_id = active.run_id
        writer: RunEventWriter | None = None
        try:
            async with self.database.session() as session:
                run = await run_service.get(session, run_id)
                task = await session.get(Task, run.task_id)
                project = await session.get(Project, run.project_id)
                next_seq = await run_service.last_seq(session, run_id) + 1
            assert task is not None and project is not None
            writer = RunEventWriter(self.database, run_id, next_seq, self.listeners.written)
            active.result_before = task.result
            resuming_after_restart = run.starts > 1 and run.resume_session_id and run.resume_session_id == run.session_id
            await writer.emit("status", {"status": "running", "attempt": run.attempt, "start": run.starts})

            env = dict(os.environ)
            if self.settings.agent_home:
                env["HOME"] = str(self.settings.agent_home)
            if not find_credentials(env):
                await self._finish(active, writer, AgentOutcome(is_error=True, error=MISSING_CREDENTIALS), run.head_commit)
                return
            if not await asyncio.to_thread(workspace.is_git_repository, project.workspace_path):
                error = f"{project.workspace_path} is not a git repository; agents work on git branches."
                await self._finish(active, writer, AgentOutcome(is_error=True, error=error), run.head_commit)
                return

            tree = await asyncio.to_thread(
                workspace.ensure_worktree,
                project.workspace_path,
                run.worktree_path or str(self.settings.worktrees_dir / str(project.id) / run.branch.replace("/", "-")),
                run.branch,
                project.base_branch,
                list(project.copy_files),
            )
            async with self.database.session(write=True) as session:
                await session.execute(
                    update(AgentRun)
                    .where(AgentRun.id == run_id)
                    .values(worktree_path=str(tree.path), base_commit=run.base_commit or tree.base_commit)
                )
            base_commit = run.base_commit or tree.base_commit

            from mcp_client.registry import RunTarget, servers_for_run

            from ..plugins.secrets import SecretBox
            from ..plugins.service import plugins_for_run

            token = self.settings.api_token.get_secret_value() if self.settings.api_token else None
            target = RunTarget(self.settings.resolved_api_url, token, project.id, task.id, run_id, worktree=str(tree.path))
            async with self.database.session() as session:
                plugins = await plugins_for_run(session, project.id, SecretBox.for_data_dir(self.settings.data_dir))
            # Building the board's tool server takes ~0.1 s of CPU: off the event loop, so
            # live streams keep flowing while several runs start.
            mcp_servers = await asyncio.to_thread(servers_for_run, target, plugins)

            request = AgentRequest(
                prompt=RESUME_PROMPT if resuming_after_restart else run.prompt,
                cwd=str(tree.path),
                cli_path=self.cli_path,
                launcher_path=self._launcher,
                pid_file=self._pid_file(run_id),
                mcp_config_dir=self._mcp_config_dir(run_id),
                resume_session_id=run.resume_session_id,
                permission_mode=project.permission_mode,
                model=project.agent_model or self.settings.agent_model,
                max_turns=project.max_turns or self.settings.agent_max_turns,
                max_budget_usd=project.max_budget_usd or self.settings.agent_max_budget_usd,
                mcp_servers=mcp_servers,
                # The board's own tools need no approval; nor do the ones the user always allows.
                allowed_tools=["mcp__kanban", *project.allowed_tools],
                env={"HOME": env["HOME"]} if self.settings.agent_home else {},
                nice=self.settings.agent_nice,
            )
            emit = self._emitter(run_id, writer)
            outcome = await self.executor.run(request, emit, self._permission_asker(active, writer), active.control)
            if (
                outcome.is_error
                and request.resume_session_id
                and "No conversation found" in (outcome.error or "")
                and not active.cancelling
            ):
                # The session never reached the CLI's disk (it died before the first reply).
                await writer.emit("status", {"status": "session lost; starting the task afresh"})
                async with self.database.session() as session:
                    first = await session.scalar(
                        select(AgentRun.prompt).where(AgentRun.task_id == run.task_id).order_by(AgentRun.attempt).limit(1)
                    )
                request.resume_session_id = None
                request.prompt = first or run.prompt
                outcome = await self.executor.run(request, emit, self._permission_asker(active, writer), active.control)
            head = await asyncio.to_thread(
                workspace.commit_all, str(tree.path), f"kanban: {task.title} (run {run.attempt})"
            )
            await self._finish(active, writer, outcome, head or run.head_commit or base_commit)
        except asyncio.CancelledError:
            if active.cancelling:
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self._finish(active, writer, AgentOutcome(is_error=True, interrupted=True), None)
                    )
            elif writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(writer.flush())
            raise
        except Exception as exc:
            log.exception("run %s failed", run_id)
            outcome = AgentOutcome(is_error=True, error=_describe_error(exc))
            try:
                await self._finish(active, writer, outcome, None)
            except Exception:
                log.exception("run %s: recording its failure failed; closing it without its last events", run_id)
                with contextlib.suppress(Exception):
                    await self._finish(active, None, outcome, None)
        finally:
            remove_mcp_config(self._mcp_config_dir(run_id))  # whatever the executor did
            self._active.pop(run_id, None)
            self.listeners.changed(run_id)
            self.wake()

    async def _finish(
        self, active: ActiveRun, writer: RunEventWriter | None, outcome: AgentOutcome, head_commit: str | None
    ) -> None:
        if active.cancelling:
            status, error = RunStatus.cancelled, "Cancelled by the user."
        elif outcome.is_error:
            status, error = RunStatus.failed, outcome.error or "The agent failed."
        else:
            status, error = RunStatus.succeeded, None
        if writer is not None:
            if error:
                await writer.emit("error", {"message": error})
            await writer.emit("status", {"status": status.value})
            await writer.flush()
        async with self.database.session(write=True) as session:
            run = await run_service.get(session, active.run_id, for_update=True)
            if outcome.session_id:
                run.session_id = outcome.session_id
            if head_commit:
                run.head_commit = head_commit
            for name in ("input_tokens", "output_tokens", "turns", "duration_ms"):  # the CLI counts these per run
                value = getattr(outcome, name)
                if value is not None:
                    setattr(run, name, value)
            if outcome.cost_usd is not None:  # ... but cost for the whole session
                run.session_cost_usd = outcome.cost_usd
                before = await run_service.session_cost_before(session, run.id, run.session_id) if run.session_id else 0.0
                run.cost_usd = run_service.own_cost(outcome.cost_usd, before)
            result = outcome.result if status == RunStatus.succeeded else None
            if result is not None:
                current = await session.scalar(select(Task.result).where(Task.id == run.task_id))
                if current and current != active.result_before:
                    result = current  # the agent reported its result itself
            await run_service.finish(session, run, status, error=error, result=result)
        self.listeners.changed(active.run_id)

    def _emitter(self, run_id: int, writer: RunEventWriter):
        """The writer's emit, with the final result's cost made the run's own (the CLI reports
        the session's total; the log keeps that as `session_cost_usd`)."""

        async def emit(type: str, payload: dict[str, Any]) -> None:
            total, session_id = payload.get("cost_usd"), payload.get("session_id")
            if type == "result" and isinstance(total, int | float) and session_id:
                async with self.database.session() as session:
                    before = await run_service.session_cost_before(session, run_id, session_id)
                payload = {**payload, "cost_usd": run_service.own_cost(total, before), "session_cost_usd": total}
            await writer.emit(type, payload)

        return emit

    # -- approvals --------------------------------------------------------------------

    def _permission_asker(self, active: ActiveRun, writer: RunEventWriter):
        async def ask(tool_name: str, tool_input: dict[str, Any], tool_use_id: str | None) -> PermissionDecision:
            async with self.database.session(write=True) as session:
                run = await run_service.get(session, active.run_id, for_update=True)
                project = await session.get(Project, run.project_id)
                if project is not None and tool_name in project.allowed_tools:
                    return PermissionDecision(allow=True)
                approval = Approval(
                    run_id=run.id,
                    tool_name=run_service.without_nul(tool_name),
                    input=run_service.without_nul(tool_input),
                    status=ApprovalStatus.pending.value,
                    created_at=utcnow(),
                )
                session.add(approval)
                run.status = RunStatus.waiting_approval.value
                run.updated_at = utcnow()
                await session.flush()
                approval_payload = ApprovalRead.model_validate(approval).model_dump(mode="json")
                await event_log.record(
                    session, BoardEventType.approval_requested, run.project_id, approval_payload
                )
                await run_service.record_run_event(session, BoardEventType.run_updated, run)
            await writer.emit("approval", approval_payload)
            signal = asyncio.Event()
            self._approval_signals[approval.id] = signal
            try:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(signal.wait(), POLL_SECONDS)
                    signal.clear()
                    if active.cancelling:
                        return PermissionDecision(allow=False, message="The run was cancelled.")
                    async with self.database.session() as session:
                        answered = await session.get(Approval, approval.id)
                        if answered is not None and answered.status != ApprovalStatus.pending.value:
                            decision = ApprovalRead.model_validate(answered).model_dump(mode="json")
                            break
            finally:
                self._approval_signals.pop(approval.id, None)
            async with self.database.session(write=True) as session:
                run = await run_service.get(session, active.run_id, for_update=True)
                if run.status == RunStatus.waiting_approval.value and not await run_service.pending_approvals(session, run.id):
                    run.status = RunStatus.running.value
                    run.updated_at = utcnow()
                    await session.flush()
                    await run_service.record_run_event(session, BoardEventType.run_updated, run)
            await writer.emit("approval", decision)
            allowed = decision["status"] == ApprovalStatus.allowed.value
            return PermissionDecision(allow=allowed, message=decision.get("message") or "")

        return ask


def _describe_error(exc: Exception) -> str:
    """The run's error for the user: a database error's text (SQL, parameters) stays in the log."""
    if isinstance(exc, SQLAlchemyError):
        return (
            f"The run could not be saved: the database reported an error ({type(exc).__name__}). "
            "The details are in the server log."
        )
    return f"{type(exc).__name__}: {exc}"


async def _finishes_within(task: asyncio.Task[None] | None, seconds: float) -> bool:
    if task is None or task.done():
        return True
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


def pid_dir(settings: Settings) -> Path:
    return settings.data_dir / "agents"

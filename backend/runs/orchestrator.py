"""The orchestrator: schedules agent runs and drives the executor through each run's steps.

- Runs wait in the database (status `queued`) and start in id order, at most
  `max_concurrent_runs` at once. `service.claim` makes sure two processes never start
  the same run.
- Every state change is a `runs/service.py` function, the same ones the API uses; the
  orchestrator reacts to committed changes (a run queued, a cancel requested, an approval
  answered) through `Database.on_commit`, and looks at the database every second for
  what other processes committed.
- Every agent message becomes a RunEvent written (in small batches, `event_writer.py`)
  before anyone is told.
- Tasks meant to start by themselves once unblocked (`start_when_unblocked`) are queued by
  the scheduler as soon as nothing blocks them: after a commit that may have unblocked one, on
  every poll (changes by other processes) and at start (changes made while no process ran
  agents). The intent is stored on the task, so a restart never loses it.
- The orchestrator is a worker (`leases.py`): it has a row in `workers`, owns the runs it
  claims under a lease its heartbeat renews, and serves only the projects whose folders it
  reaches and the runs of its host. Any number of workers may share a PostgreSQL database
  (`kanban worker`, `kanban serve` with agents on); on SQLite there is one process.
- Runs whose worker lost its lease (dead, paused, cut off) are taken over: the lease
  generation moves on (the old worker's writes are refused from then on), then with a Claude
  session they are queued again to resume on their host, without one they are marked
  `interrupted` (and the user can resume them). At start a worker takes back the runs of its
  own id at once; on SQLite (one process, the data dir locked) every run left in progress.
- A worker whose run was taken over while it still ran it (it was paused) finds out at its
  next write or heartbeat: it kills its agent and forgets the run, writing nothing more.
- Cancel: interrupt the agent, wait a grace period, then kill its process group. Cancels and
  approval answers committed by other processes arrive as NOTIFY (PostgreSQL), within
  milliseconds; the database stays the truth and the poll the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from .. import git
from ..config import Settings
from ..data_dir import make_private_dir
from ..db import Database
from ..errors import KanbanError
from ..kit.signals import wait_for_signal
from ..metrics import Metrics
from ..models import AgentRun, Project, RunKind, RunStatus, Task
from ..models.base import utcnow
from ..tasks import dependencies
from ..workflows import service as workflow_service
from ..workflows.service import StepContext
from ..workflows.templates import ReviewMode
from . import leases
from . import service as run_service
from .agent import (
    AgentOutcome,
    AgentRequest,
    ClaudeExecutor,
    Executor,
    bundled_cli_path,
    find_credentials,
    login_command,
    missing_credentials,
)
from .approvals import ApprovalBridge
from .checks import CheckOutcome, run_check
from .event_writer import RunEventWriter
from .leases import Lease, LeaseLost
from .live import RunListeners
from .processes import AgentFiles, RunControl, kill_process_group, remove_mcp_config, run_of_file, write_launcher
from .schemas import AgentsStatus
from .service import RUN_SIGNALS_CHANNEL, RunChange, RunChangeKind

if TYPE_CHECKING:
    from ..knowledge.schemas import BindingRead
    from ..workflows.templates import Knowledge as StepKnowledge

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# How many of the oldest queued runs a claim looks at for one this worker can take.
CLAIM_LOOKAHEAD = 20
RESUME_PROMPT = (
    "The board was restarted while you were working on this task. Continue where you left off "
    "and finish the task; end with a short summary of what you did."
)
INTERRUPTED_BY_RESTART = "The server stopped while this run was in progress. Resume it to continue."


@dataclass
class ActiveRun:
    run_id: int
    # The lease generation this worker claimed the run with: its writes carry it.
    generation: int = 0
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[None] | None = None
    cancelling: bool = False
    # The cancel in progress (interrupt, grace period, kill), once one was asked for.
    stopping: asyncio.Task[None] | None = None
    # The task's result when the run started: an agent that reports through the kanban
    # tools changes it, and then its own report wins over the final message.
    result_before: str | None = None
    # Another worker took the run over: this one writes nothing more for it.
    fenced: bool = False


@dataclass
class Execution:
    """What the steps of one run share."""

    active: ActiveRun
    run: AgentRun
    task: Task
    project: Project
    writer: RunEventWriter
    # The workflow step the run's task is, if it is one.
    step: StepContext | None = None
    worktree: str = ""
    base_commit: str | None = None


class Orchestrator:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        executor: Executor | None = None,
        metrics: Metrics | None = None,
        listeners: RunListeners | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        self.executor = executor or ClaudeExecutor()
        self.cli_path = settings.claude_cli or bundled_cli_path()
        self.listeners = listeners or RunListeners()
        self.approvals = ApprovalBridge(database)
        self.files = AgentFiles(settings.data_dir / "agents")
        self.enabled = True
        self.me = leases.identity(settings.worker_id, settings.worker_host)
        self._projects: list[int] = []  # the projects whose folders this worker reaches
        self._renewed_at = time.monotonic()  # when the last heartbeat that renewed the leases began
        self._signals: Any = None  # PostgreSQL: the connection that LISTENs for run signals
        self._active: dict[int, ActiveRun] = {}
        self._accepting: set[int] = set()
        self._wake = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._launcher = ""
        self._stop_reacting: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        for folder in (self.files.folder, self.settings.data_dir / "bin", self.settings.worktrees_dir):
            make_private_dir(folder)
        self._launcher = write_launcher(self.settings.data_dir / "bin" / "claude-launcher")
        problem = self.credentials_problem()
        if problem:
            log.warning("Agents cannot run yet. %s", problem)
        self._projects = await self._reachable_projects()
        self._renewed_at = time.monotonic()
        async with self.database.session(write=True) as session:
            await leases.register(session, self.me, self.settings.max_concurrent_runs, self._projects)
        log.info("worker %s (host %s) serves %d project(s)", self.me.id, self.me.host, len(self._projects))
        await self._recover()
        await self._start_unblocked()  # what was unblocked while no process ran agents
        self._stop_reacting = self.database.on_commit(self._on_commit)
        if self.database.kind == "postgresql":
            await self._listen_for_signals()
        self._spawn(self._schedule_loop(), "run-scheduler")
        self._spawn(self._heartbeat_loop(), "worker-heartbeat")
        self._spawn(self._upkeep_loop(), "worker-upkeep")
        self._spawn(self._warm_up_tools(), "warm-up-board-tools")

    async def stop(self) -> None:
        """Shutdown: agents are stopped, their runs stay `running` and resume on the next start."""
        if self._stop_reacting is not None:
            self._stop_reacting()
            self._stop_reacting = None
        for background in list(self._background):
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
        if self._signals is not None:
            with contextlib.suppress(Exception):
                await greenlet_spawn(self._signals.close)  # a pooled connection's close is synchronous
            self._signals = None
        with contextlib.suppress(Exception):  # its runs' leases end: they resume elsewhere or on a restart
            async with self.database.session(write=True) as session:
                await leases.stopped(session, self.me)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A background task, kept until it is done (the event loop holds only weak references)."""
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _warm_up_tools(self) -> None:
        from mcp_client.registry import warm_up_kanban_server

        try:
            await warm_up_kanban_server()
        except Exception:  # only a head start: the first run builds the server anyway
            log.warning("warming up the board's tools failed", exc_info=True)

    # -- reacting to committed changes ------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _on_commit(self, session: Session) -> None:
        """Right after a commit of this database: react to the run changes it made."""
        if dependencies.committed_may_start(session):
            self.wake()
        for change in run_service.committed_changes(session):
            self._react(change)

    def _react(self, change: RunChange) -> None:
        """A run change committed, by this process (`_on_commit`) or another (NOTIFY)."""
        if change.kind == RunChangeKind.queued:
            self.wake()
        elif change.kind == RunChangeKind.cancel_requested:
            if change.id in self._active:
                self._stop_run(change.id)
        elif change.kind == RunChangeKind.approval_decided:
            self.approvals.decided(change.id)

    async def _listen_for_signals(self) -> None:
        """LISTEN for the run changes other processes commit (PostgreSQL)."""

        def received(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            change = run_service.parse_signal(payload)
            if change is not None:
                self._react(change)

        try:
            raw = await self.database.engine.raw_connection()
            driver_connection = raw.driver_connection
            if driver_connection is None:
                raise RuntimeError("the pool gave a connection without its driver connection")
            await driver_connection.add_listener(await self.database.channel_name(RUN_SIGNALS_CHANNEL), received)
            self._signals = raw
        except Exception:  # the poll still finds them, only later
            log.warning("LISTEN %s failed; relying on polling", RUN_SIGNALS_CHANNEL, exc_info=True)

    def _stop_run(self, run_id: int) -> None:
        """Start cancelling a run whose cancel was requested, if this process executes it."""
        active = self._active.get(run_id)
        if active is None:
            self.wake()
        elif active.stopping is None:
            active.stopping = self._spawn(self.cancel(run_id), f"cancel-run-{run_id}")

    async def until_stopped(self, run_id: int) -> None:
        """Until the cancel of a run this process executes is over (at once when there is none)."""
        active = self._active.get(run_id)
        if active is not None and active.stopping is not None:
            await asyncio.shield(active.stopping)

    # -- recovery and scheduling ----------------------------------------------------

    async def _recover(self) -> None:
        """At start: the MCP configs (plugin secrets) no live agent uses any more, and the
        runs this worker takes back: its own id's, those whose lease expired, and on SQLite
        (one process, the data dir locked) every run left in progress."""
        async with self.database.session() as session:
            held = {run.id for run in await run_service.left_in_progress(session) if not self._orphaned(run)}
        for folder in self.files.leftover_mcp_configs():
            if run_of_file(folder) not in held:
                remove_mcp_config(str(folder))
                log.info("removed the MCP config left by %s", folder.name.removesuffix(".mcp"))
        async with self.database.session(write=True) as session:
            if self.database.kind == "sqlite":
                left = list(await run_service.left_in_progress(session))
            else:
                left = [*await leases.owned_by(session, self.me.id), *await leases.expired(session, utcnow())]
            for run in {run.id: run for run in left}.values():
                await self._take_over(session, run)

    def _orphaned(self, run: AgentRun) -> bool:
        """A run in progress that no other live worker holds (SQLite: one process, so every one)."""
        if self.database.kind == "sqlite" or run.owner == self.me.id or run.lease_expires_at is None:
            return True
        return run.lease_expires_at < utcnow()

    async def _take_over(self, session: Any, run: AgentRun) -> None:
        """Take over a run (read locked) whose worker lost it: on this host, its agent's
        processes are killed first (a paused worker's agent would go on)."""
        if run.host in (None, self.me.host):
            # A check's group is led by its shell, not the CLI: its recorded id is trusted.
            leader = None if run.kind == RunKind.check.value else self.cli_path
            for pid_file in self.files.pid_files_of(run.id):
                if kill_process_group(pid_file, cli_path=leader, forget=True):
                    log.warning("run %s: killed the processes left by worker %s", run.id, run.owner)
        previous = run.owner
        state = await run_service.take_over(
            session, run, self.me, resume=self.settings.resume_interrupted, interrupted_error=INTERRUPTED_BY_RESTART
        )
        log.info("run %s: taken over from %s; %s", run.id, previous or "a stopped server", state.value)

    async def _schedule_loop(self) -> None:
        while True:
            await wait_for_signal(self._wake, POLL_SECONDS)
            self._wake.clear()
            try:
                await self._advance_workflows()
                await self._start_unblocked()
                await self._start_queued()
                await self._check_cancel_requests()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling runs failed; retrying")

    async def _advance_workflows(self) -> None:
        """Move running workflows on (their state is in the database, so this also finishes
        what a restart interrupted): approval steps that nothing blocks go to Review, `review:
        auto` steps whose run succeeded are accepted, workflows whose steps are done are done."""
        async with self.database.session() as session:
            work = await workflow_service.pending_work(session)
        for task_id in work.approvals:
            await self._in_transaction(workflow_service.open_approval, task_id, "open the approval step")
        for task_id in work.auto_review:
            await self._accept(task_id)
        for workflow_id in work.complete:
            await self._in_transaction(workflow_service.complete, workflow_id, "complete the workflow")

    async def _in_transaction(self, action: Callable[[Any, int], Coroutine[Any, Any, Any]], id: int, what: str) -> None:
        try:
            async with self.database.session(write=True) as session:
                await action(session, id)
        except KanbanError as exc:  # the others still go on; this one is tried again
            log.warning("could not %s (%s): %s", what, id, exc.message)

    async def _start_unblocked(self) -> None:
        """Queue the runs of tasks waiting to start by themselves that nothing blocks any more.
        They wait in the queue like every run, so `max_concurrent_runs` holds for them too."""
        async with self.database.session() as session:
            waiting = await run_service.waiting_to_start(session)
        for task_id in waiting:
            try:
                async with self.database.session(write=True) as session:
                    run = await run_service.start_unblocked(session, task_id)
            except KanbanError as exc:  # the others still start; this one is tried again
                log.warning("task %s: could not start it once unblocked: %s", task_id, exc.message)
                continue
            if run is not None:
                log.info("task %s: nothing blocks it any more; queued run %s", task_id, run.id)

    async def _start_queued(self) -> None:
        """Claim the oldest queued runs this worker can take, one transaction each (rows
        another worker is claiming are skipped, not waited for)."""
        while len(self._active) < self.settings.max_concurrent_runs:
            async with self.database.session(write=True) as session:
                found = await run_service.next_queued(session, self.me, CLAIM_LOOKAHEAD)
                run_id = next((run_id for run_id, project_id, path in found if self._reaches(project_id, path)), None)
                run = None
                if run_id is not None:
                    run = await run_service.claim(session, run_id, self.me, self.settings.worker_lease_seconds)
            if run is None:
                return
            active = ActiveRun(run.id, run.lease_generation)
            self._active[run.id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run-{run.id}")

    # -- heartbeat, leases, takeover --------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Renew the leases, at a fixed rate, and nothing else: a slow look around
        (`_upkeep_loop`) must not delay a renewal on a busy machine."""
        beat_at = time.monotonic()
        while True:
            beat_at = max(beat_at + self.settings.worker_heartbeat_seconds, time.monotonic())
            await asyncio.sleep(beat_at - time.monotonic())
            try:
                await self._renew()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker heartbeat failed; retrying")
            took = time.monotonic() - beat_at
            if took > self.settings.worker_lease_seconds / 2:
                log.warning(
                    "renewing the leases took %.1f s (a lease lasts %g s): this worker is overloaded or the "
                    "database answers slowly",
                    took,
                    self.settings.worker_lease_seconds,
                )
            if self._shared and time.monotonic() - self._renewed_at > self.settings.worker_lease_seconds:
                # Not renewed for a whole lease: another worker may have taken the runs over.
                for run_id in list(self._active):
                    self._fence(run_id, "its lease could not be renewed")

    async def _renew(self) -> None:
        """Report alive and renew every lease held (one statement); give up runs that moved on."""
        started = time.monotonic()
        working_on = [run_id for run_id, active in self._active.items() if not active.fenced]
        async with self.database.session(write=True) as session:
            renewed = await leases.heartbeat(
                session, self.me, self.settings.worker_lease_seconds, self._projects, working_on
            )
        self._renewed_at = started
        unsure = [run_id for run_id, active in self._active.items() if renewed.get(run_id) != active.generation]
        if unsure:  # finished meanwhile (the generation stays), or taken over (it moved on)
            async with self.database.session() as session:
                now = await leases.generations(session, unsure)
            for run_id in unsure:
                active = self._active.get(run_id)
                if active is not None and now.get(run_id, active.generation) != active.generation:
                    self._fence(run_id, "another worker took it over")

    async def _upkeep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_seconds)
            try:
                await self._look_around()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for runs to take over failed; retrying")

    async def _look_around(self) -> None:
        """Take over runs whose worker lost its lease, say why queued runs wait, look again at
        which project folders this worker reaches (reported by the next heartbeat)."""
        if self._shared:
            await self._take_over_expired()
            async with self.database.session(write=True) as session:
                await run_service.note_waiting(session, self.settings.worker_lease_seconds)
        self._projects = await self._reachable_projects()
        self.wake()  # reachable folders may have changed

    @property
    def _shared(self) -> bool:
        """Other workers may share the database (PostgreSQL). On SQLite this process is the
        only one: nothing to take over from others, no one to wait for, and a run whose
        folder is gone fails as it starts, saying so, instead of waiting."""
        return self.database.kind == "postgresql"

    async def _take_over_expired(self) -> None:
        async with self.database.session(write=True) as session:
            for run in await leases.expired(session, utcnow()):
                if run.id not in self._active:  # this worker's own: renewed by the next heartbeat
                    await self._take_over(session, run)

    def _fence(self, run_id: int, why: str) -> None:
        """This worker lost the run: kill its agent (its own generation's processes only) and
        forget the run, writing nothing more for it."""
        active = self._active.get(run_id)
        if active is None or active.fenced:
            return
        active.fenced = True
        log.warning("run %s: %s; stopping its agent here and writing nothing more for it", run_id, why)
        active.control.kill()
        if active.task is not None:
            active.task.cancel()

    def _reaches(self, project_id: int, folder: str) -> bool:
        """Whether this worker can work on the project: known from the last heartbeat, or
        found now (a project made since; its folder is looked at, a stat or two)."""
        if project_id in self._projects or not self._shared:
            return True
        if leases.reachable([(project_id, folder)]):
            self._projects = sorted({*self._projects, project_id})
            return True
        return False

    async def _reachable_projects(self) -> list[int]:
        async with self.database.session() as session:
            folders = await leases.project_folders(session)
        return await asyncio.to_thread(leases.reachable, folders)

    async def _check_cancel_requests(self) -> None:
        """Cancels requested through another process (this one's commits react at once)."""
        if not self._active:
            return
        async with self.database.session() as session:
            flagged = await run_service.cancel_requested(session, list(self._active))
        for run_id in flagged:
            self._stop_run(run_id)

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

    # -- one run: its steps ---------------------------------------------------------------

    async def _execute(self, active: ActiveRun) -> None:
        execution: Execution | None = None
        try:
            execution = await self._begin(active)
            problem = await self._cannot_start(execution)
            if problem:
                await self._settle(
                    active, execution.writer, AgentOutcome(is_error=True, error=problem), execution.run.head_commit
                )
                return
            await self._prepare_worktree(execution)
            if execution.run.kind == RunKind.check.value:
                await self._execute_check(execution)
            else:
                request = await self._build_request(execution)
                outcome = await self._run_agent(execution, request)
                head_commit = await self._commit_work(execution)
                if not await self._check_until(execution, outcome, head_commit):
                    await self._settle(active, execution.writer, outcome, head_commit)
            await self._accept_if_automatic(execution)
        except LeaseLost:
            self._fence(active.run_id, "another worker took it over (a write was refused)")
        except asyncio.CancelledError:
            if not active.fenced:
                await self._after_cancel(active, execution.writer if execution else None)
            raise
        except Exception as exc:
            if not active.fenced:
                await self._after_failure(active, execution.writer if execution else None, exc)
        finally:
            remove_mcp_config(self.files.mcp_config_dir(active.run_id, active.generation))  # whatever the executor did
            if self._active.get(active.run_id) is active:
                del self._active[active.run_id]
            self.listeners.changed(active.run_id)
            self.wake()

    async def _begin(self, active: ActiveRun) -> Execution:
        """Load the run and open its event log where it left off."""
        async with self.database.session() as session:
            run, task, project = await run_service.for_execution(session, active.run_id)
            next_seq = await run_service.last_seq(session, active.run_id) + 1
            step = await workflow_service.context_of(session, task)
        if run.starts > 1:  # started before, on this host: whatever an earlier generation left runs no more
            for pid_file in self.files.pid_files_of(run.id):
                if pid_file != self.files.pid_file(run.id, active.generation):
                    leader = None if run.kind == RunKind.check.value else self.cli_path
                    kill_process_group(pid_file, cli_path=leader, forget=True)
        timed = self.metrics.event_write.observe if self.metrics is not None else None
        writer = RunEventWriter(
            self.database,
            active.run_id,
            next_seq,
            self.listeners.written,
            timed,
            lease=self._lease(active),
            on_fenced=lambda run_id: self._fence(run_id, "another worker took it over (its events were refused)"),
        )
        active.result_before = task.result
        await writer.emit(
            "status",
            {
                "status": "running",
                "attempt": run.attempt,
                "start": run.starts,
                "worker": self.me.id,
                "host": self.me.host,
            },
        )
        return Execution(active, run, task, project, writer, step)

    def _lease(self, active: ActiveRun) -> Lease:
        return Lease(self.me.id, active.generation)

    async def _cannot_start(self, execution: Execution) -> str | None:
        """Why the agent cannot start (no credentials, no git repository), or None."""
        if execution.run.kind == RunKind.agent.value:
            problem = self.credentials_problem()
            if problem:
                return problem
        path = execution.project.workspace_path
        if not await asyncio.to_thread(git.is_git_repository, path):
            return f"{path} is not a git repository; agents work on git branches."
        return None

    def credentials_problem(self) -> str | None:
        """Why agents cannot authenticate here (with the fix), or None when they can."""
        if find_credentials({**os.environ, **self._agent_env()}):
            return None
        home = str(self.settings.agent_home) if self.settings.agent_home else None
        return missing_credentials(self.cli_path, home)

    @property
    def active_count(self) -> int:
        return len(self._active)

    @property
    def login_command(self) -> str:
        return login_command(self.cli_path, str(self.settings.agent_home) if self.settings.agent_home else None)

    def _agent_env(self) -> dict[str, str]:
        return {"HOME": str(self.settings.agent_home)} if self.settings.agent_home else {}

    async def _prepare_worktree(self, execution: Execution) -> None:
        run, project = execution.run, execution.project
        branch = run.branch
        if branch is None:  # every queued run is given one (service._queue)
            raise RuntimeError(f"Run {run.id} has no branch")
        default_path = self.settings.worktrees_dir / str(project.id) / branch.replace("/", "-")
        merge_in: list[tuple[str, str]] = []
        if run.worktree_path is None:  # the task's first worktree: it starts with the work it waits for
            async with self.database.session() as session:
                found = await run_service.predecessors(session, execution.task.id)
            merge_in = [(item.short_id, item.commit) for item in found if item.commit]
        tree = await asyncio.to_thread(
            git.ensure_worktree,
            project.workspace_path,
            run.worktree_path or str(default_path),
            branch,
            project.base_branch,
            list(project.copy_files),
            merge_in,
        )
        execution.worktree = str(tree.path)
        execution.base_commit = run.base_commit or tree.base_commit
        async with self.database.session(write=True) as session:
            await run_service.record_worktree(
                session, run.id, execution.worktree, execution.base_commit, self._lease(execution.active)
            )

    async def _build_request(self, execution: Execution) -> AgentRequest:
        from mcp_client.registry import RunTarget, servers_for_run

        from ..knowledge.service import list_bindings
        from ..plugins.secrets import SecretBox
        from ..plugins.service import plugins_for_run, plugins_named

        run, task, project = execution.run, execution.task, execution.project
        token = self.settings.api_token.get_secret_value() if self.settings.api_token else None
        target = RunTarget(
            self.settings.resolved_api_url, token, project.id, task.id, run.id, worktree=execution.worktree
        )
        step = execution.step.step if execution.step else None
        box = SecretBox.for_data_dir(self.settings.data_dir)
        async with self.database.session() as session:
            if step is not None and step.plugins is not None:
                plugins = await plugins_named(session, step.plugins, box)
            else:
                plugins = await plugins_for_run(session, project.id, box)
            bindings = await list_bindings(session, project.id)
        # Building the board's tool server takes ~0.1 s of CPU: off the event loop, so
        # live streams keep flowing while several runs start.
        mcp_servers = await asyncio.to_thread(servers_for_run, target, plugins)
        resuming_after_restart = run.starts > 1 and run.resume_session_id and run.resume_session_id == run.session_id
        return AgentRequest(
            prompt=RESUME_PROMPT if resuming_after_restart else run.prompt,
            cwd=execution.worktree,
            cli_path=self.cli_path,
            launcher_path=self._launcher,
            pid_file=self.files.pid_file(run.id, execution.active.generation),
            mcp_config_dir=self.files.mcp_config_dir(run.id, execution.active.generation),
            resume_session_id=run.resume_session_id,
            permission_mode=(step.permission_mode if step else None) or project.permission_mode,
            model=(step.model if step else None) or project.agent_model or self.settings.agent_model,
            max_turns=(step.max_turns if step else None) or project.max_turns or self.settings.agent_max_turns,
            max_budget_usd=(step.max_budget_usd if step else None)
            or project.max_budget_usd
            or self.settings.agent_max_budget_usd,
            mcp_servers=mcp_servers,
            # The board's own tools need no approval; nor do the ones the user always allows.
            allowed_tools=["mcp__kanban", "mcp__knowledge", *project.allowed_tools],
            env=self._agent_env(),
            nice=self.settings.agent_nice,
            system_prompt_append=knowledge_note(bindings, step.knowledge if step else None),
        )

    # -- workflow steps: checks, `until`, automatic review -------------------------------

    async def _run_check(
        self, execution: Execution, command: str, timeout: float, attempt: int | None, max_attempts: int | None
    ) -> CheckOutcome:
        """Run a check in the run's worktree; its start and its outcome go to the run's log."""
        writer, run = execution.writer, execution.run
        counts = {"attempt": attempt, "max_attempts": max_attempts}
        await writer.emit("check", {"command": command, "status": "running", **counts})
        outcome = await run_check(
            command,
            execution.worktree,
            timeout_seconds=timeout,
            control=execution.active.control,
            pid_file=self.files.pid_file(run.id, execution.active.generation),
            env=self._agent_env(),
        )
        status = "timed_out" if outcome.timed_out else "passed" if outcome.passed else "failed"
        await writer.emit(
            "check",
            {
                "command": command,
                "status": status,
                "exit_code": outcome.exit_code,
                "output": outcome.output,
                "truncated": outcome.truncated,
                "duration_ms": outcome.duration_ms,
                **counts,
            },
        )
        return outcome

    async def _execute_check(self, execution: Execution) -> None:
        """A check step: its command (the run's prompt) passes or fails the step."""
        step = execution.step
        timeout = float(step.step.timeout_seconds or 600) if step else 600.0
        check = await self._run_check(execution, execution.run.prompt, timeout, None, None)
        if execution.active.cancelling:
            raise asyncio.CancelledError
        error = None if check.passed else f"The check {check.describe()}."
        outcome = AgentOutcome(is_error=not check.passed, error=error, result=_check_result(check))
        await self._settle(execution.active, execution.writer, outcome, execution.run.head_commit, check.passed)

    async def _check_until(self, execution: Execution, outcome: AgentOutcome, head_commit: str | None) -> bool:
        """An agent step with `until`: after a successful attempt its check runs. Passed: the
        run ends as it would (False: settle it). Failed with attempts left: this run ends
        failed and the same session continues in a new run with the check's output (True:
        settled here). Failed on the last attempt: the run, and so the step, fails."""
        step = execution.step
        until = step.step.until if step else None
        if step is None or until is None or outcome.is_error or execution.active.cancelling:
            return False
        async with self.database.session() as session:
            attempt = await run_service.check_attempts(session, execution.run.task_id) + 1
        command = workflow_service.check_command(step, until=True)
        check = await self._run_check(execution, command, float(until.timeout_seconds), attempt, until.max_attempts)
        if execution.active.cancelling:
            raise asyncio.CancelledError
        if check.passed:
            await self._settle(execution.active, execution.writer, outcome, head_commit, True)
            return True
        last = attempt >= until.max_attempts
        error = f"The check {check.describe()} on attempt {attempt} of {until.max_attempts}" + (
            "; no attempts are left." if last else "; the agent tries again in its session."
        )
        await execution.writer.emit("error", {"message": error})
        await execution.writer.emit("status", {"status": RunStatus.failed.value})
        await execution.writer.flush()
        async with self.database.session(write=True) as session:
            run = await run_service.finish_execution(
                session,
                execution.active.run_id,
                RunStatus.failed,
                outcome,
                error=error,
                head_commit=head_commit,
                result_before=execution.active.result_before,
                check_passed=False,
                move_task=last,
                lease=self._lease(execution.active),
            )
            if not last:
                await run_service.retry_after_check(session, run, _retry_prompt(check, attempt, until.max_attempts))
        self.listeners.changed(execution.active.run_id)
        return True

    async def _accept_if_automatic(self, execution: Execution) -> None:
        """A `review: auto` step that succeeded is accepted at once (the scheduler's pass
        would find it too, within a second: this only saves the wait)."""
        if execution.step is None or execution.step.review != ReviewMode.auto:
            return
        await self._accept(execution.run.task_id)

    async def _accept(self, task_id: int) -> None:
        """Accept a `review: auto` step, once at a time per task (the run that ended and the
        scheduler's pass may both find it)."""
        if task_id in self._accepting:
            return
        self._accepting.add(task_id)
        try:
            await self._in_transaction(run_service.accept_automatically, task_id, "accept the step")
        finally:
            self._accepting.discard(task_id)

    async def _run_agent(self, execution: Execution, request: AgentRequest) -> AgentOutcome:
        active, run, writer = execution.active, execution.run, execution.writer
        emit = self._emitter(run.id, writer)
        ask = self.approvals.asker(run.id, writer, lambda: active.cancelling or active.fenced, self._lease(active))
        outcome = await self.executor.run(request, emit, ask, active.control)
        session_lost = (
            outcome.is_error and request.resume_session_id and "No conversation found" in (outcome.error or "")
        )
        if session_lost and not active.cancelling:
            # The session never reached the CLI's disk (it died before the first reply).
            await writer.emit("status", {"status": "session lost; starting the task afresh"})
            async with self.database.session() as session:
                first = await run_service.first_prompt_of_task(session, run.task_id)
            request.resume_session_id = None
            request.prompt = first or run.prompt
            outcome = await self.executor.run(request, emit, ask, active.control)
        return outcome

    async def _commit_work(self, execution: Execution) -> str | None:
        """Commit what the agent changed on the task branch; the run's head commit."""
        run = execution.run
        head = await asyncio.to_thread(
            git.commit_all, execution.worktree, f"kanban: {execution.task.title} (attempt {run.attempt})"
        )
        return head or run.head_commit or execution.base_commit

    async def _settle(
        self,
        active: ActiveRun,
        writer: RunEventWriter | None,
        outcome: AgentOutcome,
        head_commit: str | None,
        check_passed: bool | None = None,
    ) -> None:
        """Write the run's last events, then finish it with what the agent reported."""
        status, error = _verdict(active, outcome)
        if writer is not None:
            if error:
                await writer.emit("error", {"message": error})
            await writer.emit("status", {"status": status.value})
            await writer.flush()
        async with self.database.session(write=True) as session:
            await run_service.finish_execution(
                session,
                active.run_id,
                status,
                outcome,
                error=error,
                head_commit=head_commit,
                result_before=active.result_before,
                check_passed=check_passed,
                lease=self._lease(active),
            )
        self.listeners.changed(active.run_id)

    async def _after_cancel(self, active: ActiveRun, writer: RunEventWriter | None) -> None:
        """The run's task was cancelled: by a cancel (the run is closed), or by shutdown (it stays)."""
        if active.cancelling:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._settle(active, writer, AgentOutcome(is_error=True, interrupted=True), None))
        elif writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer.flush())

    async def _after_failure(self, active: ActiveRun, writer: RunEventWriter | None, exc: Exception) -> None:
        log.error("run %s failed", active.run_id, exc_info=exc)
        outcome = AgentOutcome(is_error=True, error=_describe_error(exc))
        try:
            await self._settle(active, writer, outcome, None)
        except LeaseLost:
            self._fence(active.run_id, "another worker took it over (its failure was not recorded here)")
        except Exception:
            log.exception("run %s: recording its failure failed; closing it without its last events", active.run_id)
            with contextlib.suppress(Exception):  # LeaseLost too: then the run is not ours to close
                await self._settle(active, None, outcome, None)

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


def _verdict(active: ActiveRun, outcome: AgentOutcome) -> tuple[RunStatus, str | None]:
    """How the run ends, and the error it shows."""
    if active.cancelling:
        return RunStatus.cancelled, "Cancelled by the user."
    if outcome.is_error:
        return RunStatus.failed, outcome.error or "The agent failed."
    return RunStatus.succeeded, None


def _describe_error(exc: Exception) -> str:
    """The run's error for the user: a database error's text (SQL, parameters) stays in the log."""
    if isinstance(exc, SQLAlchemyError):
        return (
            f"The run could not be saved: the database reported an error ({type(exc).__name__}). "
            "The details are in the server log."
        )
    if isinstance(exc, KanbanError):  # ours: written for the user already
        return exc.message
    return f"{type(exc).__name__}: {exc}"


async def _finishes_within(task: asyncio.Task[None] | None, seconds: float) -> bool:
    if task is None or task.done():
        return True
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


def _check_result(check: CheckOutcome) -> str:
    """A check step's result: how it ended and the end of its output."""
    tail = "\n".join(check.output.strip().splitlines()[-30:])
    text = check.describe() + f" in {check.duration_ms / 1000:.1f} s."
    return text + (f"\n\n```\n{tail}\n```" if tail else "")


def _retry_prompt(check: CheckOutcome, attempt: int, max_attempts: int) -> str:
    tail = check.output.strip()[-8_000:]
    return (
        f"The check {check.describe()} after your attempt {attempt} of {max_attempts}. Its output:\n\n"
        f"```\n{tail}\n```\n\nFix what makes it fail. The check runs again when you finish; end with a short "
        "summary of what you did."
    )


def knowledge_note(bindings: Sequence[BindingRead], step: StepKnowledge | None = None) -> str | None:
    """A line for the agent's system prompt: which knowledge collections its tools read and
    write (nothing when none is bound to the project and the step names none)."""
    if step is not None and (step.read or step.write):
        parts = []
        if step.read:
            names = ", ".join(f'"{name}"' for name in step.read)
            parts.append(
                f"Knowledge: for this step, search the collections {names} (search_knowledge with collection=<name>)"
            )
        if step.write:
            parts.append(f'save what later tasks should know with add_note(collection="{step.write}")')
        return "; ".join(parts) + ". Search before solving what may already be known."
    if not bindings:
        return None
    names = ", ".join(f'"{b.collection_name}"' for b in bindings)
    note = f"Knowledge: search_knowledge (mcp__knowledge) searches this project's collections {names}"
    writable = next((b for b in bindings if b.can_write), None)
    if writable is not None:
        note += f'; add_note saves what later tasks should know to "{writable.collection_name}"'
    return note + ". Search it before solving what may already be known."


NO_AGENTS_HERE = (
    "This server runs no agents (KANBAN_RUN_AGENTS=false); runs wait for a worker (`kanban worker`, or a "
    "server with agents on) on this database."
)


def agents_status_of(orchestrator: Orchestrator | None, settings: Settings) -> AgentsStatus:
    """Whether this process can run agents now, and what to do when it cannot."""
    if orchestrator is None or not orchestrator.enabled:
        return AgentsStatus(
            runs_agents=False,
            can_run=False,
            problem=NO_AGENTS_HERE,
            login_command=None,
            active_runs=0,
            max_concurrent_runs=settings.max_concurrent_runs,
        )
    problem = orchestrator.credentials_problem()
    return AgentsStatus(
        runs_agents=True,
        can_run=problem is None,
        problem=problem,
        login_command=orchestrator.login_command,
        active_runs=orchestrator.active_count,
        max_concurrent_runs=settings.max_concurrent_runs,
    )

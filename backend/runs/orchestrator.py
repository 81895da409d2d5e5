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
- A restart finds runs left `running`: with a Claude session they are queued again to
  resume, without one they are marked `interrupted` (and the user can resume them).
- Cancel: interrupt the agent, wait a grace period, then kill its process group.
- Recovery assumes no other live process runs agents on the database. On PostgreSQL the
  orchestrator holds an advisory lock for its lifetime (`agents_lock.py`); without it, it
  runs no agents (on SQLite `kanban serve` locks the data dir before it gets here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import git
from ..config import Settings
from ..data_dir import make_private_dir
from ..db import Database
from ..errors import KanbanError
from ..kit.signals import wait_for_signal
from ..metrics import Metrics
from ..models import AgentRun, Project, RunKind, RunStatus, Task
from ..tasks import dependencies
from ..workflows import service as workflow_service
from ..workflows.service import StepContext
from ..workflows.templates import ReviewMode
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
from .agents_lock import AgentsLock
from .approvals import ApprovalBridge
from .checks import CheckOutcome, run_check
from .event_writer import RunEventWriter
from .live import RunListeners
from .processes import AgentFiles, RunControl, kill_process_group, remove_mcp_config, write_launcher
from .schemas import AgentsStatus
from .service import RunChangeKind

if TYPE_CHECKING:
    from ..knowledge.schemas import BindingRead
    from ..workflows.templates import Knowledge as StepKnowledge

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
RESUME_PROMPT = (
    "The board was restarted while you were working on this task. Continue where you left off "
    "and finish the task; end with a short summary of what you did."
)
INTERRUPTED_BY_RESTART = "The server stopped while this run was in progress. Resume it to continue."


@dataclass
class ActiveRun:
    run_id: int
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[None] | None = None
    cancelling: bool = False
    # The cancel in progress (interrupt, grace period, kill), once one was asked for.
    stopping: asyncio.Task[None] | None = None
    # The task's result when the run started: an agent that reports through the kanban
    # tools changes it, and then its own report wins over the final message.
    result_before: str | None = None


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
        self, database: Database, settings: Settings, executor: Executor | None = None, metrics: Metrics | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        self.executor = executor or ClaudeExecutor()
        self.cli_path = settings.claude_cli or bundled_cli_path()
        self.listeners = RunListeners()
        self.approvals = ApprovalBridge(database)
        self.files = AgentFiles(settings.data_dir / "agents")
        # False when another process runs the agents of this database (PostgreSQL).
        self.enabled = True
        self._active: dict[int, ActiveRun] = {}
        self._accepting: set[int] = set()
        self._wake = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._launcher = ""
        self._lock = AgentsLock(database)
        self._stop_reacting: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self.database.kind == "postgresql" and not await self._lock.take():
            log.error(
                "Another process runs agents on this database (schema %s): this one serves the board "
                "without running agents, and leaves that process's runs alone. Exactly one process "
                "may have KANBAN_RUN_AGENTS=true on a PostgreSQL database; set it to false here.",
                self._lock.schema,
            )
            self.enabled = False
            return
        for folder in (self.files.folder, self.settings.data_dir / "bin", self.settings.worktrees_dir):
            make_private_dir(folder)
        self._launcher = write_launcher(self.settings.data_dir / "bin" / "claude-launcher")
        problem = self.credentials_problem()
        if problem:
            log.warning("Agents cannot run yet. %s", problem)
        await self._recover()
        await self._start_unblocked()  # what was unblocked while no process ran agents
        self._stop_reacting = self.database.on_commit(self._on_commit)
        self._spawn(self._schedule_loop(), "run-scheduler")
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
        await self._lock.release()

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
            if change.kind == RunChangeKind.queued:
                self.wake()
            elif change.kind == RunChangeKind.cancel_requested:
                self._stop_run(change.id)
            elif change.kind == RunChangeKind.approval_decided:
                self.approvals.decided(change.id)

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
        # MCP configs (plugin secrets) of runs a crash ended: no agent of this process uses them.
        for folder in self.files.leftover_mcp_configs():
            remove_mcp_config(str(folder))
            log.info("removed the MCP config left by %s", folder.name.removesuffix(".mcp"))
        async with self.database.session(write=True) as session:
            for run in await run_service.left_in_progress(session):
                if kill_process_group(self.files.pid_file(run.id), cli_path=self.cli_path, forget=True):
                    log.warning("run %s: killed the agent processes left by the previous server", run.id)
                if run.kind == RunKind.check.value:
                    kill_process_group(self.files.pid_file(run.id), forget=True)  # its command's group
                    await run_service.requeue(session, run)  # a check runs again from the start
                    log.info("run %s: will run its check again after the restart", run.id)
                elif self.settings.resume_interrupted and run.session_id:
                    await run_service.requeue(session, run)
                    log.info("run %s: will resume session %s after the restart", run.id, run.session_id)
                else:
                    await run_service.finish(session, run, RunStatus.interrupted, error=INTERRUPTED_BY_RESTART)

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
        free = self.settings.max_concurrent_runs - len(self._active)
        if free <= 0:
            return
        async with self.database.session() as session:
            queued = await run_service.queued_ids(session, free)
        for run_id in queued:
            async with self.database.session(write=True) as session:
                run = await run_service.claim(session, run_id)
            if run is None:
                continue
            active = ActiveRun(run_id)
            self._active[run_id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run-{run_id}")

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
        except asyncio.CancelledError:
            await self._after_cancel(active, execution.writer if execution else None)
            raise
        except Exception as exc:
            await self._after_failure(active, execution.writer if execution else None, exc)
        finally:
            remove_mcp_config(self.files.mcp_config_dir(active.run_id))  # whatever the executor did
            self._active.pop(active.run_id, None)
            self.listeners.changed(active.run_id)
            self.wake()

    async def _begin(self, active: ActiveRun) -> Execution:
        """Load the run and open its event log where it left off."""
        async with self.database.session() as session:
            run, task, project = await run_service.for_execution(session, active.run_id)
            next_seq = await run_service.last_seq(session, active.run_id) + 1
            step = await workflow_service.context_of(session, task)
        timed = self.metrics.event_write.observe if self.metrics is not None else None
        writer = RunEventWriter(self.database, active.run_id, next_seq, self.listeners.written, timed)
        active.result_before = task.result
        await writer.emit("status", {"status": "running", "attempt": run.attempt, "start": run.starts})
        return Execution(active, run, task, project, writer, step)

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
        tree = await asyncio.to_thread(
            git.ensure_worktree,
            project.workspace_path,
            run.worktree_path or str(default_path),
            branch,
            project.base_branch,
            list(project.copy_files),
        )
        execution.worktree = str(tree.path)
        execution.base_commit = run.base_commit or tree.base_commit
        async with self.database.session(write=True) as session:
            await run_service.record_worktree(session, run.id, execution.worktree, execution.base_commit)

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
            pid_file=self.files.pid_file(run.id),
            mcp_config_dir=self.files.mcp_config_dir(run.id),
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
            pid_file=self.files.pid_file(run.id),
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
        ask = self.approvals.asker(run.id, writer, lambda: active.cancelling)
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
        except Exception:
            log.exception("run %s: recording its failure failed; closing it without its last events", active.run_id)
            with contextlib.suppress(Exception):
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
    "This server runs no agents (KANBAN_RUN_AGENTS=false, or another process on this PostgreSQL "
    "database runs them); runs wait for the process that does."
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

"""Agent runs in the database: queue, claim, approvals, cancel requests, finish, review decisions.

Every change of a run's or an approval's state is a function here, used alike by the API, by
the orchestrator (which executes runs) and by its recovery after a restart. No FastAPI here.

The processes that run agents react to some changes once they are committed (a run was
queued, a cancel was requested, an approval answered): the functions note them on the
session (`RunChange`), and the orchestrator's `Database.on_commit` callback takes them with
`committed_changes`; on PostgreSQL the same note goes to every other process as a NOTIFY on
`RUN_SIGNALS_CHANNEL` (sent on commit), so the worker that owns the run reacts within
milliseconds whichever API process took the request. A note only ever wakes it up: what to
do it reads from the database.

Writes a worker makes for a run it executes carry its `Lease` and are refused once the run
was taken over (`leases.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import CursorResult, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from .. import git
from ..db import Database, notify, outside_transaction
from ..errors import Conflict, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..kit.signals import wait_for_signal
from ..knowledge import service as knowledge_service
from ..models import (
    ACTIVE_RUN_STATUSES,
    AgentRun,
    Approval,
    ApprovalStatus,
    Project,
    RunEvent,
    RunKind,
    RunReason,
    RunStatus,
    StepKind,
    Task,
    TaskStatus,
    WorkflowStatus,
)
from ..models.agent_run import FINISHED_RUN_STATUSES
from ..models.base import utcnow
from ..tasks import dependencies
from ..tasks import service as task_service
from ..tasks.schemas import TaskRead
from ..workflows import service as workflow_service
from ..workflows.schemas import WorkflowRead
from ..workflows.templates import ReviewMode
from . import leases
from .leases import Lease, WorkerIdentity
from .live import RunEnded, RunEventRecord, RunListeners
from .schemas import ApprovalRead, RunRead, RunSummary

ACTIVE = [s.value for s in ACTIVE_RUN_STATUSES]
IN_PROGRESS = [RunStatus.running.value, RunStatus.waiting_approval.value]
RUN_CHANGES = "run_changes"
# PostgreSQL: run changes for the other processes, as `<kind>:<id>`.
RUN_SIGNALS_CHANNEL = "kanban_runs"
# PostgreSQL: a batch of a run's events committed, as `<run id>:<pid of the writing process>`.
RUN_EVENTS_CHANNEL = "kanban_run_events"


class RunChangeKind(StrEnum):
    queued = "queued"  # id: the run
    cancel_requested = "cancel_requested"  # id: the run
    approval_decided = "approval_decided"  # id: the approval


class RunChange(NamedTuple):
    kind: RunChangeKind
    id: int


async def _note(session: AsyncSession, kind: RunChangeKind, id: int) -> None:
    session.info.setdefault(RUN_CHANGES, []).append(RunChange(kind, id))
    if session.get_bind().dialect.name == "postgresql":  # delivered when the transaction commits
        await notify(session, RUN_SIGNALS_CHANNEL, f"{kind}:{id}")


def parse_signal(payload: str) -> RunChange | None:
    """A `RUN_SIGNALS_CHANNEL` payload as the change it tells of (None: not one of ours)."""
    kind, _, id = payload.partition(":")
    try:
        return RunChange(RunChangeKind(kind), int(id))
    except ValueError:
        return None


def committed_changes(session: Session) -> list[RunChange]:
    """The changes noted in the transaction that has just committed (for `Database.on_commit`)."""
    return session.info.pop(RUN_CHANGES, [])


# What the metrics count (`runs/monitoring.py`), noted the same way: counted once committed.
RUN_OUTCOMES = "run_outcomes"


class RunStarted(NamedTuple):
    """A run was claimed, after waiting this long in the queue."""

    queue_wait_seconds: float


class RunFinished(NamedTuple):
    status: str


def committed_outcomes(session: Session) -> list[RunStarted | RunFinished]:
    """The runs started and finished in the transaction that has just committed."""
    return session.info.pop(RUN_OUTCOMES, [])


def _note_outcome(session: AsyncSession, outcome: RunStarted | RunFinished) -> None:
    session.info.setdefault(RUN_OUTCOMES, []).append(outcome)


def summary(run: AgentRun) -> dict[str, Any]:
    return RunSummary.model_validate(run).model_dump(mode="json")


def approval_payload(approval: Approval) -> dict[str, Any]:
    return ApprovalRead.model_validate(approval).model_dump(mode="json")


async def detail(session: AsyncSession, run: AgentRun) -> dict[str, Any]:
    """A run as the API shows it: with its pending approvals."""
    data = RunRead.model_validate(run).model_dump()
    data["pending_approvals"] = await pending_approvals(session, run.id)
    return data


async def record_run_event(session: AsyncSession, type: BoardEventType, run: AgentRun) -> None:
    await event_log.record(session, type, run.project_id, summary(run))


async def get(session: AsyncSession, run_id: int, *, for_update: bool = False) -> AgentRun:
    return await get_or_404(session, AgentRun, run_id, "Run", for_update=for_update)


async def list_for_task(session: AsyncSession, task_id: int) -> Sequence[AgentRun]:
    await task_service.get(session, task_id)
    return (
        await session.scalars(select(AgentRun).where(AgentRun.task_id == task_id).order_by(AgentRun.attempt.desc()))
    ).all()


async def latest_for_task(session: AsyncSession, task_id: int) -> AgentRun | None:
    return await session.scalar(
        select(AgentRun).where(AgentRun.task_id == task_id).order_by(AgentRun.attempt.desc()).limit(1)
    )


async def latest_by_task(session: AsyncSession, project_id: int) -> dict[int, AgentRun]:
    """The newest run of every task of a project, in one query (for the board)."""
    newest = select(func.max(AgentRun.id)).where(AgentRun.project_id == project_id).group_by(AgentRun.task_id)
    runs = (await session.scalars(select(AgentRun).where(AgentRun.id.in_(newest)))).all()
    return {run.task_id: run for run in runs}


async def pending_approvals(session: AsyncSession, run_id: int) -> Sequence[Approval]:
    return (
        await session.scalars(
            select(Approval)
            .where(Approval.run_id == run_id, Approval.status == ApprovalStatus.pending.value)
            .order_by(Approval.id)
        )
    ).all()


# How much of a predecessor's result a dependent's prompt quotes.
PREDECESSOR_RESULT_CHARS = 2_000


class Predecessor(NamedTuple):
    """A task the run's task waited for, as its prompt tells of it."""

    short_id: str
    title: str
    result: str | None
    branch: str | None
    commit: str | None


async def predecessors(session: AsyncSession, task_id: int) -> list[Predecessor]:
    """The tasks this one waits for that still exist, with their results and their newest run's
    branch and head commit (merged into the base branch when the task was approved)."""
    found = []
    for blocker in (await dependencies.blockers_of(session, [task_id])).get(task_id, []):
        if blocker.task_id is None:
            continue
        task = await session.get(Task, blocker.task_id)
        run = await latest_for_task(session, blocker.task_id)
        if task is not None:
            found.append(
                Predecessor(
                    task.short_id,
                    task.title,
                    task.result,
                    run.branch if run else None,
                    run.head_commit if run else None,
                )
            )
    return found


def _predecessor_section(found: Sequence[Predecessor], base_branch: str) -> str:
    lines = [
        f"This task builds on tasks that are done. Your worktree starts from {base_branch} with their "
        f"work: an approved task's is merged into {base_branch}, and the commits of one moved to Done "
        "without being merged are merged into your branch:"
    ]
    for item in found:
        where = ", ".join(
            part
            for part in (
                f"branch {item.branch}" if item.branch else "",
                f"commit {item.commit[:12]}" if item.commit else "",
            )
            if part
        )
        lines.append(f"- {item.short_id}: {item.title}" + (f" ({where})" if where else ""))
        result = (item.result or "").strip()
        if len(result) > PREDECESSOR_RESULT_CHARS:
            result = result[:PREDECESSOR_RESULT_CHARS].rstrip() + " …"
        if result:
            lines.append("  Result: " + result.replace("\n", "\n  "))
    return "\n".join(lines)


def first_prompt(
    task: Task, branch: str, instructions: str, found: Sequence[Predecessor] = (), base_branch: str = "the base branch"
) -> str:
    parts = [f"You are working on task {task.short_id}: {task.title}"]
    if task.description.strip():
        parts.append(task.description.strip())
    if found:
        parts.append(_predecessor_section(found, base_branch))
    if instructions.strip():
        parts.append(f"Additional instructions:\n{instructions.strip()}")
    parts.append(
        f"Work in the current directory, a git worktree on branch {branch}. Do not commit: the board "
        "commits your changes when you finish. End with a short summary of what you did; it becomes "
        "the task's result for the reviewer."
    )
    return "\n\n".join(parts)


async def _queue(
    session: AsyncSession,
    task: Task,
    prompt: str,
    *,
    resume_session_id: str | None,
    previous: AgentRun | None,
    branch: str,
    kind: RunKind = RunKind.agent,
    reason: RunReason = RunReason.start,
) -> AgentRun:
    attempt = (previous.attempt + 1) if previous else 1
    spent = await session.scalar(select(func.sum(AgentRun.cost_usd)).where(AgentRun.task_id == task.id))
    run = AgentRun(
        task_id=task.id,
        project_id=task.project_id,
        attempt=attempt,
        kind=kind.value,
        status=RunStatus.queued.value,
        reason=reason.value,
        prompt=prompt,
        resume_session_id=resume_session_id,
        branch=branch,
        worktree_path=previous.worktree_path if previous else None,
        # A run that continues a Claude session needs the host the session's files are on.
        host=previous.host if previous and resume_session_id else None,
        base_commit=previous.base_commit if previous else None,
        head_commit=previous.head_commit if previous else None,
        starts=0,
        cancel_requested=False,
        task_cost_usd=spent,
    )
    now = utcnow()
    run.created_at = run.updated_at = now
    session.add(run)
    await session.flush()
    await record_run_event(session, BoardEventType.run_queued, run)
    await _note(session, RunChangeKind.queued, run.id)
    if task.status != TaskStatus.in_progress.value:
        await task_service.transition(session, task, TaskStatus.in_progress)
    return run


async def _active_run(session: AsyncSession, task_id: int) -> AgentRun | None:
    return await session.scalar(
        select(AgentRun).where(AgentRun.task_id == task_id, AgentRun.status.in_(ACTIVE)).limit(1)
    )


async def start(session: AsyncSession, task_id: int, instructions: str = "") -> AgentRun:
    """Queue a run of the task; refused while a run is active or the task is blocked. A start
    consumes the task's `start_when_unblocked` intent. A workflow step's run gets the step's
    prompt with the results it needs (an agent step) or runs its command (a check step)."""
    task = await task_service.get(session, task_id, for_update=True)
    project = await task_service.lock_project(session, task.project_id)
    workflow_service.refuse_to_run_workflow_card(task)
    active = await _active_run(session, task_id)
    if active is not None:
        raise Conflict(
            f"Task {task.short_id} already has an active run (attempt {active.attempt}, {active.status}); cancel it first"
        )
    blockers = await dependencies.open_blockers(session, task_id)
    if blockers:
        raise Conflict(
            dependencies.blocked_message(task.short_id, blockers),
            blocked_by=[blocker.model_dump(mode="json") for blocker in blockers],
        )
    step = await workflow_service.context_of(session, task)
    if step is not None and step.step.kind == StepKind.approval:
        raise Conflict(
            f"Task {task.short_id} is an approval step: a person approves it in Review (or sends it back); it has no run"
        )
    previous = await latest_for_task(session, task_id)
    from ..git import branch_name

    branch = previous.branch if previous and previous.branch else branch_name(task.short_id, task.title)
    kind = RunKind.agent
    if step is not None:
        await workflow_service.render_step(session, task, step)
    if step is not None and step.step.kind == StepKind.check:
        kind = RunKind.check
        prompt = workflow_service.check_command(step, until=False)
    else:
        prompt = first_prompt(task, branch, instructions, await predecessors(session, task_id), project.base_branch)
    if task.start_when_unblocked:
        task.start_when_unblocked = False
        if task.status == TaskStatus.in_progress.value:  # _queue moves it otherwise, which records the change
            await task_service.touch(session, task)
    return await _queue(session, task, prompt, resume_session_id=None, previous=previous, branch=branch, kind=kind)


async def waiting_to_start(session: AsyncSession, limit: int = 100) -> Sequence[int]:
    """Tasks meant to start by themselves that nothing blocks any more (for the orchestrator)."""
    return await dependencies.waiting_to_start(session, limit)


async def start_unblocked(session: AsyncSession, task_id: int) -> AgentRun | None:
    """Act on a task's `start_when_unblocked`: if it is still set and nothing blocks the task,
    queue its run and clear the intent, in this one transaction (the task's row is locked, so
    the intent is consumed exactly once). A task that is no longer in To Do, or has a run
    already, only loses the intent. None when no run was queued."""
    task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        return None
    await task_service.lock_project(session, task.project_id)
    await session.refresh(task)  # as it is now that the project's writers wait for us
    if not task.start_when_unblocked or await dependencies.open_blockers(session, task_id):
        return None
    approval_step = task.workflow_step_kind == StepKind.approval.value  # opened by its workflow, never run
    if approval_step or task.status != TaskStatus.todo.value or await _active_run(session, task_id) is not None:
        task.start_when_unblocked = False
        await task_service.touch(session, task)
        return None
    return await start(session, task_id)


async def request_changes(session: AsyncSession, task_id: int, feedback: str) -> AgentRun:
    """Continue the task's agent session with the reviewer's feedback. For a workflow's
    approval step the feedback goes to the agent steps it approves (they work again; the
    approval comes back to Review once they are done)."""
    task = await task_service.get(session, task_id, for_update=True)
    await task_service.lock_project(session, task.project_id)
    if task.status != TaskStatus.needs_review.value:
        raise Conflict(
            f"Task {task.short_id} is not in review (it is {task.status}); only reviewed work can get change requests"
        )
    if task.workflow_step_kind == StepKind.approval.value:
        return await _send_back(session, task, feedback)
    if await _active_run(session, task_id) is not None:
        raise Conflict(f"Task {task.short_id} already has an active run")
    previous = await latest_for_task(session, task_id)
    if previous is None or not previous.session_id:
        raise Conflict(f"Task {task.short_id} has no agent session to continue; start a new run instead")
    assert previous.branch is not None
    return await _queue(
        session,
        task,
        feedback,
        resume_session_id=previous.session_id,
        previous=previous,
        branch=previous.branch,
        reason=RunReason.changes_requested,
    )


async def _send_back(session: AsyncSession, approval: Task, feedback: str) -> AgentRun:
    context = await workflow_service.context_of(session, approval)
    cards = await workflow_service.step_cards(session, context.workflow.id) if context else {}
    queued: list[AgentRun] = []
    for need in context.step.needs if context else []:
        card = cards.get(need)
        previous = await latest_for_task(session, card.id) if card is not None else None
        if card is None or card.workflow_step_kind != StepKind.agent.value or previous is None:
            continue
        if not previous.session_id or not previous.branch or await _active_run(session, card.id) is not None:
            continue
        prompt = (
            f"A person reviewing {approval.short_id} ({approval.title}) sent your work back with this "
            f"feedback:\n\n{feedback.strip()}\n\nRevise your work accordingly and end with the revised result."
        )
        queued.append(
            await _queue(
                session,
                card,
                prompt,
                resume_session_id=previous.session_id,
                previous=previous,
                branch=previous.branch,
                reason=RunReason.sent_back,
            )
        )
    if not queued:
        raise Conflict(
            f"Task {approval.short_id} approves no agent step with a session to continue; approve it, "
            "or rerun the steps it needs"
        )
    await task_service.transition(session, approval, TaskStatus.todo)
    return queued[0]


async def resume_interrupted(session: AsyncSession, run_id: int) -> AgentRun:
    """Queue an interrupted run again; it continues its Claude session when it has one."""
    run = await get(session, run_id, for_update=True)
    if run.status != RunStatus.interrupted.value:
        raise Conflict(f"Attempt {run.attempt} (run {run_id}) is {run.status}; only interrupted runs can be resumed")
    task = await task_service.get(session, run.task_id, for_update=True)
    await task_service.lock_project(session, task.project_id)  # before the first event, like every task write
    if await _active_run(session, run.task_id) is not None:
        raise Conflict(f"Task {task.short_id} already has an active run")
    run.error = None
    run.finished_at = None
    run.cancel_requested = False
    await requeue(session, run)
    if task.status != TaskStatus.in_progress.value:
        await task_service.transition(session, task, TaskStatus.in_progress)
    return run


async def requeue(session: AsyncSession, run: AgentRun) -> AgentRun:
    """Put a run back in the queue; it continues its Claude session when it has one. Used by
    `resume_interrupted` and by recovery after a restart (for runs left with a session)."""
    await _expire_pending_approvals(session, run.id)
    run.status = RunStatus.queued.value
    run.owner = None
    run.lease_expires_at = None
    if run.session_id:
        run.resume_session_id = run.session_id
    run.updated_at = utcnow()
    await session.flush()
    await record_run_event(session, BoardEventType.run_queued, run)
    await _note(session, RunChangeKind.queued, run.id)
    return run


async def request_cancel(session: AsyncSession, run_id: int) -> AgentRun:
    """A queued run is cancelled at once; a running one is flagged for its orchestrator."""
    run = await get(session, run_id, for_update=True)
    if run.status not in ACTIVE:
        raise Conflict(f"Attempt {run.attempt} (run {run_id}) is already {run.status}")
    if run.status == RunStatus.queued.value:
        await finish(session, run, RunStatus.cancelled, error="Cancelled before it started.")
    else:
        run.cancel_requested = True
        run.updated_at = utcnow()
        await session.flush()
        await _note(session, RunChangeKind.cancel_requested, run.id)
    return run


async def cancel(
    session: AsyncSession, run_id: int, until_stopped: Callable[[int], Awaitable[None]] | None
) -> dict[str, Any]:
    """Cancel a run and answer with its state once its agent stopped: the request commits
    first (which tells the agent-running process), then `until_stopped(run_id)` waits for
    this process's agent, if it runs the run, outside the transaction."""
    await request_cancel(session, run_id)
    if until_stopped is not None:
        async with outside_transaction(session):
            await until_stopped(run_id)
    return await detail(session, await get(session, run_id))


NUL = "\x00"
REPLACEMENT_CHARACTER = "\ufffd"


def without_nul(value: Any) -> Any:
    """`value` with every NUL character (in strings, keys, nested lists and dicts) replaced by
    U+FFFD. PostgreSQL stores neither NUL in text nor \\u0000 in JSON; SQLite would, but the
    same text must read back the same from both."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT_CHARACTER) if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


async def finish(
    session: AsyncSession,
    run: AgentRun,
    status: RunStatus,
    *,
    error: str | None = None,
    result: str | None = None,
    move_task: bool = True,
) -> None:
    """Close a run and move its task: review on success, back to To Do otherwise.

    Locks the task's row, then its project, before the first event: the order every task
    write takes them in (an event insert takes the event log's lock on PostgreSQL, and a
    writer holding the project while waiting for that lock would deadlock with us)."""
    error, result = without_nul(error), without_nul(result)
    task = await session.scalar(select(Task).where(Task.id == run.task_id).with_for_update())
    if task is not None:
        await task_service.lock_project(session, task.project_id)
    before = await session.scalar(
        select(func.sum(AgentRun.cost_usd)).where(AgentRun.task_id == run.task_id, AgentRun.id < run.id)
    )
    run.task_cost_usd = None if before is None and run.cost_usd is None else (before or 0) + (run.cost_usd or 0)
    run.status = status.value
    run.error = error
    run.owner = None
    run.lease_expires_at = None
    run.waiting_for = None
    if result is not None:
        run.result = result
    run.finished_at = run.updated_at = utcnow()
    await _expire_pending_approvals(session, run.id, run.finished_at)
    await session.flush()
    await record_run_event(session, BoardEventType.run_finished, run)
    _note_outcome(session, RunFinished(status.value))
    if task is None or not move_task:
        return
    if status == RunStatus.succeeded:
        await task_service.transition(session, task, TaskStatus.needs_review, result=result or "")
    elif status != RunStatus.interrupted:
        await task_service.transition(session, task, TaskStatus.todo)


async def _expire_pending_approvals(session: AsyncSession, run_id: int, at: datetime | None = None) -> None:
    for approval in await pending_approvals(session, run_id):
        approval.status = ApprovalStatus.expired.value
        approval.decided_at = at or utcnow()


async def session_cost_before(session: AsyncSession, run_id: int, session_id: str) -> float:
    """What the Claude session had cost when its previous run ended (0 for a new session):
    the CLI reports a resumed session's total, and a run's own cost is the difference."""
    total = await session.scalar(
        select(AgentRun.session_cost_usd)
        .where(AgentRun.session_id == session_id, AgentRun.id != run_id, AgentRun.session_cost_usd.is_not(None))
        .order_by(AgentRun.id.desc())
        .limit(1)
    )
    return total or 0.0


def own_cost(session_total: float, before: float) -> float:
    return max(0.0, round(session_total - before, 10))


async def approve(session: AsyncSession, task_id: int) -> TaskRead:
    """Merge the task's branch into the base branch; the task is then done.

    Git first, outside the transaction (`outside_transaction`: no writer waits for the merge):
    a conflict leaves everything as it was, and if the database write after it failed,
    approving again finds the branch merged already.
    """
    task = await task_service.get(session, task_id)
    project = await session.get(Project, task.project_id)
    run = await latest_for_task(session, task_id)
    if task.status != TaskStatus.needs_review.value:
        raise Conflict(f"Task {task.short_id} is not in review (it is {task.status})")
    if task.workflow_step_kind == StepKind.approval.value:  # a person's gate: nothing to merge
        task = await task_service.get(session, task_id, for_update=True)
        # Its result is what the person approved (its prompt, filled in), so a workflow that
        # ends with a review still returns the work reviewed.
        context = await workflow_service.context_of(session, task)
        shown = task.description if context is not None and context.step.prompt.strip() else None
        approved = await task_service.transition(session, task, TaskStatus.done, result=shown)
        return await task_service.read(session, approved)
    if run is None or not run.branch or not run.worktree_path:
        raise Conflict(f"Task {task.short_id} has no agent work to merge")
    assert project is not None
    async with outside_transaction(session):
        await asyncio.to_thread(
            git.merge_into_base,
            project.workspace_path,
            run.branch,
            project.base_branch,
            f"Merge {run.branch}: {task.title}",
        )
        files = await knowledge_service.changed_files(project.workspace_path, run)
    task = await task_service.get(session, task_id, for_update=True)
    if task.status != TaskStatus.needs_review.value:  # approved meanwhile (the merge found it merged)
        return await task_service.read(session, task)
    task = await task_service.transition(session, task, TaskStatus.done)
    # The result goes to the project's write collection (knowledge) in the same transaction.
    await knowledge_service.save_on_approve(session, task, run, files)
    done = await task_service.read(session, task)
    async with outside_transaction(session):  # the task is done (committed) before its worktree goes
        with contextlib.suppress(Conflict):  # a worktree with work that is not merged stays
            await asyncio.to_thread(git.remove_worktree, project.workspace_path, run.worktree_path, run.branch)
    return done


async def task_diff(session: AsyncSession, task_id: int) -> dict[str, Any]:
    """What the agent changed: base…head of the task's newest run (empty before any work)."""
    task = await task_service.get(session, task_id)
    project = await session.get(Project, task.project_id)
    run = await latest_for_task(session, task_id)
    if run is None or not run.base_commit or project is None:
        empty = {"files": 0, "additions": 0, "deletions": 0}
        return {"base": None, "head": None, "branch": run.branch if run else None, "files": [], "stats": empty}
    diff = await asyncio.to_thread(
        git.diff, project.workspace_path, run.base_commit, run.head_commit or run.base_commit
    )
    return {**diff, "branch": run.branch}


async def events_after(
    executor: AsyncSession | AsyncConnection, run_id: int, after_seq: int, limit: int
) -> list[RunEventRecord]:
    """A page of the run's log: one Core statement, rows as the writer hands them over."""
    connection = await executor.connection() if isinstance(executor, AsyncSession) else executor
    rows = await connection.execute(
        select(_EVENTS.c.seq, _EVENTS.c.type, _EVENTS.c.payload, _EVENTS.c.created_at)
        .where(_EVENTS.c.run_id == run_id, _EVENTS.c.seq > after_seq)
        .order_by(_EVENTS.c.seq)
        .limit(limit)
    )
    return [RunEventRecord(*row) for row in rows]


FINISHED = {status.value for status in FINISHED_RUN_STATUSES}
FOLLOW_BATCH = 500
# How often a quiet follower looks at the database (run state, other processes' events).
FOLLOW_POLL_SECONDS = 1.0


async def follow(
    database: Database, listeners: RunListeners | None, run_id: int, cursor: int
) -> AsyncIterator[RunEventRecord | RunEnded]:
    """A run's events after `cursor`, then live ones, then `RunEnded` once it finished.

    Replays from the database, then takes what the event writer of this process hands over
    (`listeners`, see `live.py`), and reads the database again whenever that does not follow
    on. Without listeners (another process runs the agents) it polls the database.
    """
    listener = listeners.listen(run_id) if listeners is not None else None
    try:
        caught_up = False
        woken = False  # this read was asked for by a wake-up (a batch written, maybe elsewhere)
        while True:
            if caught_up and listener is not None:
                handed_over = listener.take_after(cursor)
                if handed_over is None:
                    caught_up, woken = False, True
                    continue
                for record in handed_over:
                    yield record
                    cursor = record.seq
                if not handed_over:
                    await wait_for_signal(listener.wake, FOLLOW_POLL_SECONDS)
                    caught_up = listener.wake.is_set()  # after a quiet spell: look at the database
                continue
            ended: str | None = None
            async with database.reading() as connection:
                events = await events_after(connection, run_id, cursor, FOLLOW_BATCH)
                if not events:
                    status = await connection.scalar(select(_RUNS.c.status).where(_RUNS.c.id == run_id))
                    if status is None:
                        raise NotFound(f"Run {run_id} not found")
                    if status in FINISHED:
                        # Its last events were committed before it finished, but maybe after
                        # the first read (on PostgreSQL each read sees what was committed when
                        # it began): look once more.
                        events = await events_after(connection, run_id, cursor, FOLLOW_BATCH)
                        ended = None if events else status
            for event in events:
                yield event
                cursor = event.seq
            if events:
                # Woken for a batch and read all there was (a short page): wait for the next
                # wake-up rather than ask again at once (a follower of another process's run is
                # woken per batch). A replay asks again: the run may have finished already.
                caught_up = woken and listener is not None and len(events) < FOLLOW_BATCH
                woken = False
                continue
            if ended is not None:
                yield RunEnded(ended)
                return
            if listener is not None:
                caught_up = True
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        if listeners is not None and listener is not None:
            listeners.unlisten(run_id, listener)


# Mapped classes' tables, typed as the Tables they are (SQLAlchemy types __table__ as a FromClause).
_EVENTS = cast(Table, RunEvent.__table__)
_INSERT_RUN_EVENT = insert(_EVENTS)
_RUNS = cast(Table, AgentRun.__table__)


async def append_events(
    connection: AsyncConnection,
    run_id: int,
    first_seq: int,
    events: list[tuple[str, dict[str, Any]]],
    session_id: str | None = None,
    lease: Lease | None = None,
) -> list[RunEventRecord]:
    """Insert events with consecutive seq numbers (and save the run's Claude session id when
    given); returns them as written. With a lease, only while it holds the run (LeaseLost:
    nothing is written)."""
    # Other processes' followers read when this commits (PostgreSQL; SQLite has one process).
    notice = (RUN_EVENTS_CHANNEL, f"{run_id}:{os.getpid()}") if connection.dialect.name == "postgresql" else None
    if lease is not None:
        await leases.hold(connection, run_id, lease, session_id, notice)
        session_id = notice = None  # saved and sent by the same statement: one round trip
    now = utcnow()
    records = [
        RunEventRecord(first_seq + i, type, without_nul(payload), now) for i, (type, payload) in enumerate(events)
    ]
    # Core executemany on a plain connection: a run can produce thousands of events a second.
    await connection.execute(
        _INSERT_RUN_EVENT,
        [{"run_id": run_id, "seq": r.seq, "type": r.type, "payload": r.payload, "created_at": now} for r in records],
    )
    if session_id:
        await connection.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(session_id=session_id))
    if notice is not None:
        await notify(connection, *notice)
    return records


def other_process_wrote(listeners: RunListeners) -> Callable[[str], None]:
    """The `RUN_EVENTS_CHANNEL` callback: a batch another process wrote makes the run's
    followers here read the database at once (this process's own batches are handed over)."""
    me = str(os.getpid())

    def wrote(payload: str) -> None:
        run_id, _, pid = payload.partition(":")
        if pid != me and run_id.isdigit():
            listeners.changed(int(run_id))

    return wrote


async def last_seq(session: AsyncSession, run_id: int) -> int:
    return (await session.scalar(select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id))) or 0


async def decide_approval(session: AsyncSession, approval_id: int, decision: str, message: str) -> Approval:
    approval = await session.scalar(select(Approval).where(Approval.id == approval_id).with_for_update())
    if approval is None:
        raise NotFound(f"Approval {approval_id} not found")
    if approval.status != ApprovalStatus.pending.value:
        raise Conflict(f"Approval {approval_id} was already answered ({approval.status})")
    run = await get(session, approval.run_id)
    approval.status = (ApprovalStatus.denied if decision == "deny" else ApprovalStatus.allowed).value
    approval.decision = decision
    approval.message = message or None
    approval.decided_at = utcnow()
    if decision == "always_allow":
        project = await session.get(Project, run.project_id)
        if project is not None and approval.tool_name not in project.allowed_tools:
            project.allowed_tools = [*project.allowed_tools, approval.tool_name]
    await session.flush()
    await event_log.record(session, BoardEventType.approval_resolved, run.project_id, approval_payload(approval))
    await _note(session, RunChangeKind.approval_decided, approval.id)
    return approval


# -- the orchestrator's side: claim, execute, approvals, finish, recovery -----------------


async def queued_ids(session: AsyncSession, limit: int) -> Sequence[int]:
    """The oldest queued runs: the next to start."""
    return (
        await session.scalars(
            select(AgentRun.id).where(AgentRun.status == RunStatus.queued.value).order_by(AgentRun.id).limit(limit)
        )
    ).all()


async def next_queued(session: AsyncSession, worker: WorkerIdentity, limit: int) -> Sequence[tuple[int, int, str]]:
    """The oldest queued runs of this worker's host (or of none yet), with their project and
    its folder (the worker takes those it reaches), their rows locked for this transaction;
    rows another worker is claiming are skipped (SKIP LOCKED on PostgreSQL; SQLite has one
    writer at a time)."""
    rows = await session.execute(
        select(AgentRun.id, AgentRun.project_id, Project.workspace_path)
        .join(Project, Project.id == AgentRun.project_id)
        .where(
            AgentRun.status == RunStatus.queued.value,
            (AgentRun.host.is_(None)) | (AgentRun.host == worker.host),
        )
        .order_by(AgentRun.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=AgentRun)
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def claim(
    session: AsyncSession, run_id: int, worker: WorkerIdentity | None = None, lease_seconds: float = 20.0
) -> AgentRun | None:
    """Start a queued run; None when it is not queued (any more). A conditional UPDATE: of
    several processes trying, exactly one gets the run. A worker becomes its owner, with a
    lease of `lease_seconds` and the run's next lease generation (`run.lease_generation`)."""
    # A queued run's updated_at is when it was queued (nothing changes a run while it waits).
    queued_since = await session.scalar(
        select(AgentRun.updated_at).where(AgentRun.id == run_id, AgentRun.status == RunStatus.queued.value)
    )
    if queued_since is None:
        return None
    now = utcnow()
    # An UPDATE's result is a CursorResult (Session.execute is typed as returning a Result).
    claimed = cast(
        CursorResult[Any],
        await session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id, AgentRun.status == RunStatus.queued.value)
            .values(
                status=RunStatus.running.value,
                starts=AgentRun.starts + 1,
                started_at=now,
                updated_at=now,
                waiting_for=None,
                lease_generation=AgentRun.lease_generation + 1,
                **(
                    {
                        "owner": worker.id,
                        "host": worker.host,
                        "lease_expires_at": now + timedelta(seconds=lease_seconds),
                    }
                    if worker is not None
                    else {}
                ),
            )
        ),
    )
    if claimed.rowcount != 1:
        return None
    run = await get(session, run_id)
    await session.refresh(run)  # the UPDATE's values, not those of an earlier read
    await record_run_event(session, BoardEventType.run_started, run)
    _note_outcome(session, RunStarted(max(0.0, (now - queued_since).total_seconds())))
    return run


async def cancel_requested(session: AsyncSession, run_ids: Sequence[int]) -> Sequence[int]:
    """Those of `run_ids` whose cancel was requested."""
    return (
        await session.scalars(
            select(AgentRun.id).where(AgentRun.id.in_(list(run_ids)), AgentRun.cancel_requested.is_(True))
        )
    ).all()


async def take_over(
    session: AsyncSession, run: AgentRun, taker: WorkerIdentity, *, resume: bool, interrupted_error: str
) -> RunStatus:
    """A run in progress whose worker lost its lease (`run` read locked, see
    `leases.expired`), or a restarted worker's own: its lease generation moves on at once, so
    whatever the old worker still writes for it is refused. Then, as after a restart: a cancel
    that was asked for ends it cancelled; a check, or a run with a Claude session (`resume`),
    waits in the queue again (on its host, where its session is); any other is interrupted.
    The state it is left in."""
    run.lease_generation += 1
    if run.owner != taker.id:
        await leases.count_takeover(session, taker.id)
    if run.cancel_requested:
        await finish(session, run, RunStatus.cancelled, error="Cancelled by the user.")
        return RunStatus.cancelled
    if run.kind == RunKind.check.value or (resume and run.session_id):
        await requeue(session, run)
        return RunStatus.queued
    await finish(session, run, RunStatus.interrupted, error=interrupted_error)
    return RunStatus.interrupted


async def note_waiting(session: AsyncSession, lease_seconds: float, limit: int = 200) -> int:
    """Say on each queued run why no live worker can take it (`waiting_for`: its host, its
    folder), or clear that once one can; a change is a `run.updated` event, so cards show it.
    How many runs changed."""
    live = await leases.live_workers(session, lease_seconds)
    rows = (
        await session.execute(
            select(AgentRun, Project.workspace_path)
            .join(Project, Project.id == AgentRun.project_id)
            .where(AgentRun.status == RunStatus.queued.value)
            .order_by(AgentRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=AgentRun)
        )
    ).all()
    changed = 0
    for run, folder in rows:
        reason = leases.waiting_reason(run, folder, live)
        if reason == run.waiting_for:
            continue
        # A queued run's updated_at says since when it waits: it stays.
        await session.execute(
            update(_RUNS).where(_RUNS.c.id == run.id).values(waiting_for=reason, updated_at=_RUNS.c.updated_at)
        )
        await session.refresh(run)
        await record_run_event(session, BoardEventType.run_updated, run)
        changed += 1
    return changed


async def left_in_progress(session: AsyncSession) -> Sequence[AgentRun]:
    """Runs `running` or `waiting_approval`, oldest first (after a restart: left by the previous server)."""
    return (await session.scalars(select(AgentRun).where(AgentRun.status.in_(IN_PROGRESS)).order_by(AgentRun.id))).all()


async def for_execution(session: AsyncSession, run_id: int) -> tuple[AgentRun, Task, Project]:
    """A run with its task and project, to execute it."""
    run = await get(session, run_id)
    task = await session.get(Task, run.task_id)
    project = await session.get(Project, run.project_id)
    if task is None or project is None:
        raise NotFound(f"Run {run_id} has lost its task or project")
    return run, task, project


async def record_worktree(
    session: AsyncSession, run_id: int, worktree_path: str, base_commit: str, lease: Lease | None = None
) -> None:
    """Where the run works; its base commit is set once, by the task's first worktree."""
    leases.check(await get(session, run_id, for_update=True), lease)
    await session.execute(
        update(AgentRun)
        .where(AgentRun.id == run_id)
        .values(worktree_path=worktree_path, base_commit=func.coalesce(AgentRun.base_commit, base_commit))
    )


async def first_prompt_of_task(session: AsyncSession, task_id: int) -> str | None:
    """The prompt of the task's first run (to start afresh when a session is lost)."""
    return await session.scalar(
        select(AgentRun.prompt).where(AgentRun.task_id == task_id).order_by(AgentRun.attempt).limit(1)
    )


async def request_approval(
    session: AsyncSession, run_id: int, tool_name: str, tool_input: dict[str, Any], lease: Lease | None = None
) -> Approval | None:
    """An agent asks to use a tool: a pending approval, and the run waits for it. None when
    the project always allows the tool (then nothing changes)."""
    run = await get(session, run_id, for_update=True)
    leases.check(run, lease)
    project = await session.get(Project, run.project_id)
    if project is not None and tool_name in project.allowed_tools:
        return None
    approval = Approval(
        run_id=run.id,
        tool_name=without_nul(tool_name),
        input=without_nul(tool_input),
        status=ApprovalStatus.pending.value,
        created_at=utcnow(),
    )
    session.add(approval)
    run.status = RunStatus.waiting_approval.value
    run.updated_at = utcnow()
    await session.flush()
    await event_log.record(session, BoardEventType.approval_requested, run.project_id, approval_payload(approval))
    await record_run_event(session, BoardEventType.run_updated, run)
    return approval


async def decided_approval(session: AsyncSession, approval_id: int) -> Approval | None:
    """The approval once it is no longer pending (answered, or expired with its run); else None."""
    approval = await session.get(Approval, approval_id)
    return approval if approval is not None and approval.status != ApprovalStatus.pending.value else None


async def back_to_running(session: AsyncSession, run_id: int, lease: Lease | None = None) -> bool:
    """A run waiting for approvals runs again once none is pending; True when it changed."""
    run = await get(session, run_id, for_update=True)
    leases.check(run, lease)
    if run.status != RunStatus.waiting_approval.value or await pending_approvals(session, run.id):
        return False
    run.status = RunStatus.running.value
    run.updated_at = utcnow()
    await session.flush()
    await record_run_event(session, BoardEventType.run_updated, run)
    return True


class AgentTotals(Protocol):
    """What an agent reports when it ends (`agent.AgentOutcome`)."""

    session_id: str | None
    result: str | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    turns: int | None
    duration_ms: int | None


async def finish_execution(
    session: AsyncSession,
    run_id: int,
    status: RunStatus,
    totals: AgentTotals,
    *,
    error: str | None,
    head_commit: str | None,
    result_before: str | None,
    check_passed: bool | None = None,
    move_task: bool = True,
    lease: Lease | None = None,
) -> AgentRun:
    """Close an executed run with what its agent reported, then `finish` it (refused with
    LeaseLost when `lease` no longer holds it).

    Token counts are the run's own, the CLI's cost is the session's total (the run's own cost
    is the difference). `result_before` is the task's result when the run started: an agent
    that reported through the board's tools changed it, and then that report wins over the
    final message."""
    run = await get(session, run_id, for_update=True)
    leases.check(run, lease)
    if totals.session_id:
        run.session_id = totals.session_id
    if head_commit:
        run.head_commit = head_commit
    for name in ("input_tokens", "output_tokens", "turns", "duration_ms"):
        value = getattr(totals, name)
        if value is not None:
            setattr(run, name, value)
    if totals.cost_usd is not None:
        run.session_cost_usd = totals.cost_usd
        before = await session_cost_before(session, run.id, run.session_id) if run.session_id else 0.0
        run.cost_usd = own_cost(totals.cost_usd, before)
    result = totals.result if status == RunStatus.succeeded else None
    if result is not None:
        current = await session.scalar(select(Task.result).where(Task.id == run.task_id))
        if current and current != result_before:
            result = current  # the agent reported its result itself
    if check_passed is not None:
        run.check_passed = check_passed
    await finish(session, run, status, error=error, result=result, move_task=move_task)
    return run


async def retry_after_check(session: AsyncSession, run: AgentRun, feedback: str) -> AgentRun:
    """An `until` check failed with attempts left: the same agent session continues with the
    check's output, in a new run of the task (the task stays in Running)."""
    task = await task_service.get(session, run.task_id, for_update=True)
    await task_service.lock_project(session, task.project_id)
    assert run.branch is not None
    return await _queue(
        session,
        task,
        feedback,
        resume_session_id=run.session_id,
        previous=run,
        branch=run.branch,
        reason=RunReason.check_failed,
    )


async def check_attempts(session: AsyncSession, task_id: int) -> int:
    """How many of the task's runs were followed by a check (an `until` step's attempts)."""
    return (
        await session.scalar(
            select(func.count()).where(AgentRun.task_id == task_id, AgentRun.check_passed.is_not(None))
        )
    ) or 0


AUTO_ACCEPT_FAILED = "Accepting this step automatically failed: "


async def accept_automatically(session: AsyncSession, task_id: int) -> TaskRead | None:
    """A `review: auto` workflow step in Review whose run succeeded (and whose check passed) is
    approved: merged into the base branch and done, so its dependents start. A merge that fails
    leaves it in Review for a person, with the reason on its run. None when nothing was done."""
    task = await session.get(Task, task_id)
    if task is None or task.status != TaskStatus.needs_review.value:
        return None
    context = await workflow_service.context_of(session, task)
    if context is None or context.review != ReviewMode.auto:
        return None
    if context.workflow.status != WorkflowStatus.running.value:
        return None
    run = await latest_for_task(session, task_id)
    if run is None or run.status != RunStatus.succeeded.value or run.check_passed is False or run.error:
        return None
    if not context.step.merge:  # done as it is: the steps that need it start from its commits
        task = await task_service.get(session, task_id, for_update=True)
        return await task_service.read(session, await task_service.transition(session, task, TaskStatus.done))
    try:
        return await approve(session, task_id)
    except Conflict as exc:
        run = await get(session, run.id, for_update=True)
        run.error = f"{AUTO_ACCEPT_FAILED}{exc.message}. Resolve it, then approve the task by hand."
        run.updated_at = utcnow()
        await session.flush()
        await record_run_event(session, BoardEventType.run_updated, run)
        return None


async def cancel_workflow(
    session: AsyncSession, workflow_id: int, until_stopped: Callable[[int], Awaitable[None]] | None
) -> WorkflowRead:
    """Cancel a workflow: no step starts any more, its running steps are cancelled (answered
    once their agents stopped), its card goes back to To Do."""
    cards = await workflow_service.mark_cancelled(session, workflow_id)
    stopping = []
    for card in cards:
        active = await _active_run(session, card.id)
        if active is not None:
            await request_cancel(session, active.id)
            stopping.append(active.id)
    if until_stopped is not None and stopping:
        async with outside_transaction(session):
            for run_id in stopping:
                await until_stopped(run_id)
    return await workflow_service.get_read(session, workflow_id)

"""Task dependencies: a task waits for other tasks of its project (`blocked_by`) until every
one of them is done. A graph of its own, apart from parent and subtask.

- Links stay inside a project, never point at the task itself and never close a cycle
  (checked over the project's whole graph; the error names the path: `KAN-3 → KAN-5 → KAN-3`).
- Blocked means: some predecessor is not done, or was deleted (its link keeps the short id).
- `start_when_unblocked` is the stored intent to start an agent run once unblocked. The
  functions here only find the tasks whose intent can be acted on (`waiting_to_start`);
  `runs.service.start_unblocked` consumes the intent and queues the run in one transaction.
- The callers hold the project's lock (every task write takes it first), so two writers never
  race on one project's graph.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import Select, Table, and_, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from ..errors import InvalidInput
from ..models import AgentRun, RunStatus, Task, TaskDependency, TaskStatus
from ..models.base import utcnow
from .schemas import COLUMN_TITLES, Blocker

MAY_START = "tasks_may_start"
_DONE = TaskStatus.done.value
_dependencies = typing.cast(Table, TaskDependency.__table__)
_RUN_ENDINGS = {
    RunStatus.failed.value: "'s run failed",
    RunStatus.cancelled.value: "'s run was cancelled",
    RunStatus.interrupted.value: "'s run was interrupted",
}


def note_may_start(session: AsyncSession) -> None:
    """Something a waiting task depends on changed: the agent-running process looks again
    once this commits (`committed_may_start` in its `Database.on_commit`)."""
    session.info[MAY_START] = True


def committed_may_start(session: Session) -> bool:
    return bool(session.info.pop(MAY_START, False))


def reason(short_id: str, status: str | None, run_status: str | None, deleted: bool) -> str | None:
    """Why a predecessor blocks its dependents; None once it is done."""
    if deleted:
        return f"{short_id} was deleted"
    if status == _DONE:
        return None
    if status is None:
        return f"{short_id} is unknown"
    if status == TaskStatus.todo.value and run_status in _RUN_ENDINGS:
        return f"{short_id}{_RUN_ENDINGS[run_status]}"
    return f"{short_id} is in {COLUMN_TITLES[TaskStatus(status)]}"


def _latest_run_status(predecessor: type[Task]) -> typing.Any:
    return (
        select(AgentRun.status)
        .where(AgentRun.task_id == predecessor.id)
        .order_by(AgentRun.attempt.desc())
        .limit(1)
        .scalar_subquery()
    )


def _blockers_query() -> Select:
    predecessor = aliased(Task, name="predecessor")
    return (
        select(
            TaskDependency.task_id,
            TaskDependency.blocked_by_id,
            TaskDependency.blocked_by_short_id,
            predecessor.short_id,
            predecessor.title,
            predecessor.status,
            _latest_run_status(predecessor),
        )
        .outerjoin(predecessor, predecessor.id == TaskDependency.blocked_by_id)
        .order_by(TaskDependency.task_id, TaskDependency.id)
    )


def _blocker(row: typing.Any) -> Blocker:
    _, task_id, kept_short_id, short_id, title, status, run_status = row
    deleted = short_id is None
    why = reason(kept_short_id if deleted else short_id, status, run_status, deleted)
    return Blocker(
        task_id=task_id,
        short_id=kept_short_id if deleted else short_id,
        title=title,
        status=status,
        run_status=run_status,
        blocking=why is not None,
        reason=why,
    )


async def _collect(session: AsyncSession, query: Select) -> dict[int, list[Blocker]]:
    found: dict[int, list[Blocker]] = {}
    for row in (await session.execute(query)).all():
        found.setdefault(row[0], []).append(_blocker(row))
    return found


async def blockers_of(session: AsyncSession, task_ids: Iterable[int]) -> dict[int, list[Blocker]]:
    """Every predecessor of these tasks (blocking or not), in link order, in one query."""
    ids = list(task_ids)
    if not ids:
        return {}
    return await _collect(session, _blockers_query().where(TaskDependency.task_id.in_(ids)))


async def blockers_in_project(session: AsyncSession, project_id: int) -> dict[int, list[Blocker]]:
    """Every link of a project's tasks (for the board), in one query."""
    dependent = aliased(Task, name="dependent")
    query = _blockers_query().join(dependent, dependent.id == TaskDependency.task_id)
    return await _collect(session, query.where(dependent.project_id == project_id))


async def open_blockers(session: AsyncSession, task_id: int) -> list[Blocker]:
    """The predecessors that still block the task."""
    return [b for b in (await blockers_of(session, [task_id])).get(task_id, []) if b.blocking]


def blocked_message(short_id: str, blockers: Sequence[Blocker]) -> str:
    reasons = "; ".join(b.reason or b.short_id for b in blockers)
    return f"Task {short_id} is blocked ({reasons}); it can run once every task it waits for is done"


async def dependents_of(session: AsyncSession, task_id: int) -> Sequence[int]:
    """The tasks waiting for this one."""
    return (
        await session.scalars(
            select(TaskDependency.task_id)
            .where(TaskDependency.blocked_by_id == task_id)
            .order_by(TaskDependency.task_id)
        )
    ).all()


class TaskRef(Protocol):
    id: int
    project_id: int
    short_id: str


async def set_blockers(session: AsyncSession, task: TaskRef, blocked_by: Sequence[int]) -> bool:
    """Make `blocked_by` the task's predecessors (replacing every link, those to deleted tasks
    too). Refuses the task itself, unknown tasks, other projects' tasks and cycles with
    InvalidInput before anything is written. True when the links changed."""
    wanted = list(dict.fromkeys(blocked_by))
    if task.id in wanted:
        raise InvalidInput(f"blocked_by: task {task.short_id} cannot be blocked by itself")
    found = {
        row.id: row
        for row in (
            await session.execute(select(Task.id, Task.project_id, Task.short_id).where(Task.id.in_(wanted)))
        ).all()
    }
    for predecessor_id in wanted:
        row = found.get(predecessor_id)
        if row is None:
            raise InvalidInput(f"blocked_by: task {predecessor_id} does not exist")
        if row.project_id != task.project_id:
            raise InvalidInput(f"blocked_by: task {row.short_id} belongs to another project")
    current = (
        await session.execute(
            select(TaskDependency.id, TaskDependency.blocked_by_id)
            .where(TaskDependency.task_id == task.id)
            .order_by(TaskDependency.id)
        )
    ).all()
    linked = [row.blocked_by_id for row in current]
    if None not in linked and len(linked) == len(wanted) and set(linked) == set(wanted):
        return False  # the same tasks (links keep the order they were made in)
    await _refuse_cycle(session, task, wanted)
    keep = {row.blocked_by_id for row in current if row.blocked_by_id in found}
    gone = [row.id for row in current if row.blocked_by_id not in found]
    if gone:
        await session.execute(delete(_dependencies).where(_dependencies.c.id.in_(gone)))
    new = [
        {"task_id": task.id, "blocked_by_id": pid, "blocked_by_short_id": found[pid].short_id, "created_at": utcnow()}
        for pid in wanted
        if pid not in keep
    ]
    if new:
        await session.execute(insert(_dependencies), new)
    note_may_start(session)
    return True


async def _refuse_cycle(session: AsyncSession, task: TaskRef, wanted: Sequence[int]) -> None:
    """Would the task, blocked by `wanted`, wait for itself? Walks the project's graph from the
    new predecessors along their own predecessors (breadth first: the shortest path)."""
    if not wanted:
        return
    dependent = aliased(Task, name="dependent")
    edges = (
        await session.execute(
            select(TaskDependency.task_id, TaskDependency.blocked_by_id)
            .join(dependent, dependent.id == TaskDependency.task_id)
            .where(
                dependent.project_id == task.project_id,
                TaskDependency.blocked_by_id.is_not(None),
                TaskDependency.task_id != task.id,  # the task's own links are being replaced
            )
        )
    ).all()
    waits_for: dict[int, list[int]] = {}
    for dependent_id, predecessor_id in edges:
        assert predecessor_id is not None  # filtered above
        waits_for.setdefault(dependent_id, []).append(predecessor_id)
    came_from: dict[int, int] = {pid: task.id for pid in wanted}
    queue = deque(wanted)
    while queue:
        current = queue.popleft()
        for predecessor_id in waits_for.get(current, []):
            if predecessor_id == task.id:
                step = current
                chain = [step]
                while came_from[step] != task.id:
                    step = came_from[step]
                    chain.append(step)
                ids = [task.id, *reversed(chain), task.id]
                names = await _short_ids(session, ids)
                raise InvalidInput(
                    f"blocked_by: that would make a cycle: {' → '.join(names[i] for i in ids)} "
                    "(each task waits for the next)",
                    cycle=[names[i] for i in ids],
                )
            if predecessor_id not in came_from:
                came_from[predecessor_id] = current
                queue.append(predecessor_id)


async def _short_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    rows = (await session.execute(select(Task.id, Task.short_id).where(Task.id.in_(set(ids))))).all()
    return {row.id: row.short_id for row in rows}


def _open_predecessor(task_id: typing.Any) -> typing.Any:
    predecessor = aliased(Task, name="predecessor")
    return exists(
        select(TaskDependency.id)
        .outerjoin(predecessor, predecessor.id == TaskDependency.blocked_by_id)
        .where(
            TaskDependency.task_id == task_id,
            or_(predecessor.id.is_(None), predecessor.status != _DONE),
        )
    )


async def waiting_to_start(session: AsyncSession, limit: int = 100) -> Sequence[int]:
    """Tasks meant to start by themselves that nothing blocks any more, oldest first."""
    return (
        await session.scalars(
            select(Task.id)
            .where(and_(Task.start_when_unblocked.is_(True), ~_open_predecessor(Task.id)))
            .order_by(Task.id)
            .limit(limit)
        )
    ).all()

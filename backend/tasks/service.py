"""Tasks: create, read, update, move, delete. Shared by the HTTP API and the orchestrator.

Every change writes its board event in the same transaction. Writes lock the project row
(FOR UPDATE; SQLite serialises writers anyway), so numbering and ordering inside a project
never race.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fractional_indexing import generate_key_between
from pydantic_core import to_json
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import Conflict, InvalidInput, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..kit.schemas import parse_decimal_id
from ..models import ACTIVE_RUN_STATUSES, AgentRun, Project, Task, TaskStatus
from ..models.base import utcnow
from ..projects import service as project_service
from . import dependencies
from .schemas import COLUMN_TITLES, Blocker, BoardTask, TaskCreate, TaskMove, TaskRead, TaskUpdate, WorkflowLink

MAX_PAGE = 200
_READ_COLUMNS = [name for name in TaskRead.model_fields if name in Task.__table__.columns]


def _as_read(task: Task | dict[str, Any], blockers: list[Blocker]) -> TaskRead:
    data = task if isinstance(task, dict) else {name: getattr(task, name) for name in _READ_COLUMNS}
    return TaskRead.model_validate(
        {**data, "blocked_by": blockers, "blocked": any(blocker.blocking for blocker in blockers)}
    )


async def read(session: AsyncSession, task: Task) -> TaskRead:
    """The task as the API shows it: with what blocks it."""
    return _as_read(task, (await dependencies.blockers_of(session, [task.id])).get(task.id, []))


async def read_many(session: AsyncSession, tasks: Sequence[Task]) -> list[TaskRead]:
    blockers = await dependencies.blockers_of(session, [task.id for task in tasks])
    return [_as_read(task, blockers.get(task.id, [])) for task in tasks]


async def task_payload(session: AsyncSession, task: Task) -> dict:
    return (await read(session, task)).model_dump(mode="json")


async def _record(session: AsyncSession, type: BoardEventType, task: Task) -> None:
    await event_log.record(session, type, task.project_id, await task_payload(session, task))


async def _announce_dependents(session: AsyncSession, task_id: int, *, done: bool = False) -> None:
    """A task changed column or was deleted: what its dependents show changed with it. Their rows
    did not change (same version); `task.updated` carries their new blockers."""
    dependents = await dependencies.dependents_of(session, task_id)
    if done and dependents:
        dependencies.note_may_start(session)
    for dependent_id in dependents:
        dependent = await session.get(Task, dependent_id)
        if dependent is not None:
            await _record(session, BoardEventType.task_updated, dependent)


async def _refuse_if_blocked(session: AsyncSession, task: Task | TaskRead, status: str) -> None:
    """A blocked task cannot run: moving it to Running is refused like starting its run."""
    if status != TaskStatus.in_progress.value:
        return
    blockers = await dependencies.open_blockers(session, task.id)
    if blockers:
        raise Conflict(
            dependencies.blocked_message(task.short_id, blockers),
            blocked_by=[blocker.model_dump(mode="json") for blocker in blockers],
        )


async def get(session: AsyncSession, task_id: int, *, for_update: bool = False) -> Task:
    return await get_or_404(session, Task, task_id, "Task", for_update=for_update)


async def lock_project(session: AsyncSession, project_id: int) -> Project:
    """Lock the project row until commit: writes inside one project queue up here."""
    try:
        return await project_service.get(session, project_id, for_update=True)
    except NotFound:
        raise InvalidInput(f"project_id: project {project_id} does not exist") from None


async def _check_parent(session: AsyncSession, project_id: int, parent_id: int, task_id: int | None = None) -> None:
    """The parent exists on the same board and is not the task itself or one of its subtasks."""
    if parent_id == task_id:
        raise InvalidInput("parent_id: a task cannot be its own parent")
    row = (await session.execute(select(Task.project_id, Task.parent_id).where(Task.id == parent_id))).first()
    if row is None:
        raise InvalidInput(f"parent_id: task {parent_id} does not exist")
    if row.project_id != project_id:
        raise InvalidInput(f"parent_id: task {parent_id} belongs to another project")
    seen = {parent_id}
    ancestor = row.parent_id
    while ancestor is not None and ancestor not in seen:
        if ancestor == task_id:
            raise InvalidInput(f"parent_id: task {parent_id} is a subtask of this task; that would make a cycle")
        seen.add(ancestor)
        ancestor = await session.scalar(select(Task.parent_id).where(Task.id == ancestor))


def _column(project_id: int, status: str, excluding: int | None) -> Select:
    query = select(Task.position).where(Task.project_id == project_id, Task.status == status)
    if excluding is not None:
        query = query.where(Task.id != excluding)
    return query


async def _end_of_column(session: AsyncSession, project_id: int, status: str, excluding: int | None = None) -> str:
    last = await session.scalar(_column(project_id, status, excluding).order_by(Task.position.desc()).limit(1))
    return generate_key_between(last, None)


# Mapped classes' tables, typed as the Tables they are (SQLAlchemy types __table__ as a FromClause).
_tasks = typing.cast(Table, Task.__table__)
_projects = typing.cast(Table, Project.__table__)
# The hot path's statements are built once; each create only binds values.
# One statement takes the next number and reads the project's key and the last order key
# of the target column.
_NEXT_NUMBER = (
    update(_projects)
    .where(_projects.c.id == bindparam("target_project"))
    .values(last_task_number=_projects.c.last_task_number + 1, updated_at=_projects.c.updated_at)
    .returning(
        _projects.c.last_task_number,
        _projects.c.key,
        select(_tasks.c.position)
        .where(_tasks.c.project_id == bindparam("target_project"), _tasks.c.status == bindparam("target_status"))
        .order_by(_tasks.c.position.desc())
        .limit(1)
        .scalar_subquery(),
    )
)
_LOCK_PROJECT = select(_projects.c.id).where(_projects.c.id == bindparam("target_project")).with_for_update()
_INSERT_TASK = insert(_tasks).returning(_tasks.c.id)


async def create(session: AsyncSession, data: TaskCreate, *, workflow: WorkflowLink | None = None) -> TaskRead:
    """Create a task at the end of its column; returns it as the API shows it. `workflow`: the
    card is a workflow's (its parent card or a step)."""
    target = {"target_project": data.project_id, "target_status": data.status.value}
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        # Lock the row before the statement below starts, so its snapshot (and the
        # subquery's) includes the tasks of whoever held the lock before us. Writes in one
        # project queue here until commit, so numbers and order keys never collide
        # (SQLite serialises writers anyway).
        await connection.execute(_LOCK_PROJECT, target)
    numbered = (await connection.execute(_NEXT_NUMBER, target)).first()
    if numbered is None:
        raise InvalidInput(f"project_id: project {data.project_id} does not exist")
    number, key, last_position = numbered
    if data.parent_id is not None:
        await _check_parent(session, data.project_id, data.parent_id)
    if data.created_by_run_id is not None:
        run_project = await session.scalar(select(AgentRun.project_id).where(AgentRun.id == data.created_by_run_id))
        if run_project is None:
            raise InvalidInput(f"created_by_run_id: run {data.created_by_run_id} does not exist")
    now = utcnow()
    values = {
        "project_id": data.project_id,
        "number": number,
        "short_id": f"{key}-{number}",
        "title": data.title,
        "description": data.description,
        "status": data.status.value,
        "position": generate_key_between(last_position, None),
        "priority": data.priority.value,
        "labels": list(data.labels),
        "parent_id": data.parent_id,
        "created_by_run_id": data.created_by_run_id,
        "result": None,
        "version": 1,
        "start_when_unblocked": data.start_when_unblocked,
        "workflow_id": workflow.workflow_id if workflow else None,
        "workflow_step": workflow.workflow_step if workflow else None,
        "workflow_step_kind": workflow.workflow_step_kind.value if workflow and workflow.workflow_step_kind else None,
        "created_at": now,
        "updated_at": now,
    }
    # Core rather than the ORM unit of work: a create is the board's hottest write, and
    # the flush machinery costs more than the statement.
    values["id"] = (await connection.execute(_INSERT_TASK, values)).scalar_one()
    task = _as_read(values, [])
    if data.blocked_by:
        await dependencies.set_blockers(session, task, data.blocked_by)
        task = _as_read(values, (await dependencies.blockers_of(session, [task.id])).get(task.id, []))
        await _refuse_if_blocked(session, task, data.status.value)
    if data.start_when_unblocked:
        dependencies.note_may_start(session)
    await event_log.record(session, BoardEventType.task_created, data.project_id, task.model_dump(mode="json"))
    return task


async def _check_version(session: AsyncSession, task: Task, version: int | None) -> None:
    if version is not None and task.version != version:
        raise Conflict(
            f"Task {task.short_id} was changed by someone else (you have version {version}, "
            f"it is now at version {task.version}); reload it and apply your change again",
            current=(await read(session, task)).model_dump(mode="json"),
        )


async def update_task(session: AsyncSession, task_id: int, data: TaskUpdate) -> TaskRead:
    task = await get(session, task_id, for_update=True)
    await lock_project(session, task.project_id)  # serialise with moves in this project
    await _check_version(session, task, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version", "blocked_by"})
    if "parent_id" in changes and changes["parent_id"] is not None:
        await _check_parent(session, task.project_id, changes["parent_id"], task.id)
    changed = data.blocked_by is not None and await dependencies.set_blockers(session, task, data.blocked_by)
    moved = "status" in changes and changes["status"] != task.status
    if moved:
        await _refuse_if_blocked(session, task, changes["status"])
        task.position = await _end_of_column(session, task.project_id, changes["status"], excluding=task.id)
    for field, value in changes.items():
        if getattr(task, field) != value:
            setattr(task, field, value)
            changed = True
    if not changed:
        return await read(session, task)
    if task.start_when_unblocked:
        dependencies.note_may_start(session)
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await _record(session, BoardEventType.task_moved if moved else BoardEventType.task_updated, task)
    if moved:
        await _announce_dependents(session, task.id, done=task.status == TaskStatus.done.value)
    return await read(session, task)


@dataclass(frozen=True)
class _Neighbours:
    lower: str | None
    upper: str | None


async def _anchor(session: AsyncSession, anchor_id: int, task: Task, status: str, name: str) -> Task:
    if anchor_id == task.id:
        raise InvalidInput(f"{name}: a task cannot be placed next to itself")
    anchor = await session.get(Task, anchor_id)
    if anchor is None or anchor.project_id != task.project_id:
        raise InvalidInput(f"{name}: task {anchor_id} is not on this board")
    if anchor.status != status:
        raise InvalidInput(f"{name}: task {anchor.short_id} is in column {anchor.status}, not {status}")
    return anchor


async def _neighbours(session: AsyncSession, task: Task, move: TaskMove) -> _Neighbours:
    status = move.status.value
    column = _column(task.project_id, status, excluding=task.id)
    if move.before_id is not None:
        anchor = await _anchor(session, move.before_id, task, status, "before_id")
        lower = await session.scalar(
            column.where(Task.position < anchor.position).order_by(Task.position.desc()).limit(1)
        )
        return _Neighbours(lower, anchor.position)
    if move.after_id is not None:
        anchor = await _anchor(session, move.after_id, task, status, "after_id")
        upper = await session.scalar(column.where(Task.position > anchor.position).order_by(Task.position).limit(1))
        return _Neighbours(anchor.position, upper)
    if move.index is not None:
        if move.index == 0:
            return _Neighbours(None, await session.scalar(column.order_by(Task.position, Task.id).limit(1)))
        keys = (await session.scalars(column.order_by(Task.position, Task.id).offset(move.index - 1).limit(2))).all()
        if not keys:  # past the end
            return _Neighbours(await session.scalar(column.order_by(Task.position.desc()).limit(1)), None)
        return _Neighbours(keys[0], keys[1] if len(keys) > 1 else None)
    return _Neighbours(await session.scalar(column.order_by(Task.position.desc()).limit(1)), None)


async def move(session: AsyncSession, task_id: int, data: TaskMove) -> TaskRead:
    task = await get(session, task_id, for_update=True)
    await lock_project(session, task.project_id)
    await _check_version(session, task, data.version)
    neighbours = await _neighbours(session, task, data)
    if data.status.value == task.status and (
        (neighbours.lower is None or neighbours.lower < task.position)
        and (neighbours.upper is None or task.position < neighbours.upper)
    ):
        return await read(session, task)  # already there
    moved = data.status.value != task.status
    if moved:
        await _refuse_if_blocked(session, task, data.status.value)
    task.position = generate_key_between(neighbours.lower, neighbours.upper)
    task.status = data.status.value
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await _record(session, BoardEventType.task_moved, task)
    if moved:
        await _announce_dependents(session, task.id, done=task.status == TaskStatus.done.value)
    return await read(session, task)


async def transition(session: AsyncSession, task: Task, status: TaskStatus, *, result: str | None = None) -> Task:
    """Move a task to the end of another column (the orchestrator's moves), optionally with a result."""
    await lock_project(session, task.project_id)
    moved = task.status != status.value
    if moved:
        task.position = await _end_of_column(session, task.project_id, status.value, excluding=task.id)
        task.status = status.value
    if result is not None:
        task.result = result
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await _record(session, BoardEventType.task_moved, task)
    if moved:
        await _announce_dependents(session, task.id, done=status == TaskStatus.done)
    return task


async def touch(session: AsyncSession, task: Task) -> Task:
    """Record a change made to the task's row by another domain (e.g. its start intent consumed)."""
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await _record(session, BoardEventType.task_updated, task)
    return task


async def delete(session: AsyncSession, task_id: int) -> None:
    task = await get(session, task_id, for_update=True)
    await lock_project(session, task.project_id)
    await _refuse_if_agent_active(session, AgentRun.task_id == task.id, f"Task {task.short_id}")
    project_id = task.project_id
    payload = {"id": task.id, "short_id": task.short_id, "project_id": project_id}
    dependents = await dependencies.dependents_of(session, task.id)
    await session.delete(task)
    await session.flush()
    await event_log.record(session, BoardEventType.task_deleted, project_id, payload)
    for dependent_id in dependents:  # they stay blocked, and say by what
        dependent = await session.get(Task, dependent_id)
        if dependent is not None:
            await _record(session, BoardEventType.task_updated, dependent)


async def _refuse_if_agent_active(session: AsyncSession, condition, what: str) -> None:
    active = [status.value for status in ACTIVE_RUN_STATUSES]
    attempt = await session.scalar(select(AgentRun.attempt).where(condition, AgentRun.status.in_(active)).limit(1))
    if attempt is not None:
        raise Conflict(f"{what} has an agent run in progress (attempt {attempt}); cancel it first")


def _search(query: Select, q: str | None, dialect: str) -> Select:
    """Tasks whose title, description or a label contains `q`, or whose short id is `q` (`DEM-3`),
    ignoring case."""
    q = (q or "").strip()
    if not q:
        return query
    # Labels are a JSON list: searched in its text. SQLite keeps it as Python's json.dumps wrote it
    # (non-ASCII escaped as \uXXXX), PostgreSQL's jsonb prints it as it is.
    label_text = json.dumps(q)[1:-1] if dialect == "sqlite" else q
    return query.where(
        Task.title.icontains(q, autoescape=True)
        | Task.description.icontains(q, autoescape=True)
        | (func.upper(Task.short_id) == q.upper())
        | cast(Task.labels, Text).icontains(label_text, autoescape=True)
    )


async def list_page(
    session: AsyncSession,
    *,
    project_id: int | None = None,
    status: TaskStatus | None = None,
    q: str | None = None,
    parent_id: int | None = None,
    short_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[TaskRead], str | None]:
    query = _search(select(Task), q, (await session.connection()).dialect.name)
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    if status is not None:
        query = query.where(Task.status == status.value)
    if parent_id is not None:
        query = query.where(Task.parent_id == parent_id)
    if short_id is not None:
        query = query.where(Task.short_id == short_id.upper())
    if cursor is not None:
        query = query.where(Task.id > decode_cursor(cursor))
    limit = max(1, min(limit, MAX_PAGE))
    rows = (await session.scalars(query.order_by(Task.id).limit(limit + 1))).all()
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return await read_many(session, rows[:limit]), next_cursor


def encode_cursor(task_id: int) -> str:
    return f"t{task_id}"


def decode_cursor(cursor: str) -> int:
    task_id = parse_decimal_id(cursor[1:]) if cursor.startswith("t") else None
    if task_id is None:
        raise InvalidInput("cursor: not a cursor from a previous page; omit it to start at the beginning")
    return task_id


BOARD_COLUMNS = [c for c in BoardTask.model_fields if c in Task.__table__.columns]
_TIMESTAMPS = {"created_at", "updated_at"}


def _card_json(dialect: str) -> ColumnElement[str]:
    """A card (BoardTask's fields) as JSON text, built by the database.

    For a board of thousands of cards, decoding every row's timestamps and labels in
    Python and encoding them again costs most of the request; the database writes the
    same JSON in a fraction of that. Timestamps come out as ISO 8601 in UTC with a `Z`.
    """
    pairs: list[ColumnElement] = []
    for name in BOARD_COLUMNS:
        column = _tasks.c[name]
        value: ColumnElement[Any]
        if name in _TIMESTAMPS:
            value = (
                func.replace(column, " ", "T").op("||")("Z")  # stored as "YYYY-MM-DD HH:MM:SS.ffffff", UTC
                if dialect == "sqlite"
                else func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            )
        elif name == "labels" and dialect == "sqlite":
            value = func.json(column)  # stored as JSON text; embed it, do not quote it
        elif name == "start_when_unblocked" and dialect == "sqlite":
            value = func.json(case((column, "true"), else_="false"))  # stored as 0 or 1
        else:
            value = column
        pairs += [literal_column(f"'{name}'"), value]
    if dialect == "sqlite":
        return func.json_object(*pairs, type_=Text)
    return cast(func.json_build_object(*pairs), Text)  # as text: the driver would decode json


async def board_columns_json(
    session: AsyncSession, project_id: int, q: str | None = None, runs: dict | None = None
) -> str:
    """Every column in order with its ordered cards, as the JSON text of BoardRead's `columns`.

    One query for all cards and one for every dependency link of the project. `runs` maps
    task ids to their newest run (JSON-ready), shown on the cards.
    """
    connection = await session.connection()
    query = _search(
        select(_tasks.c.status, _tasks.c.id, _card_json(connection.dialect.name)).where(
            _tasks.c.project_id == project_id
        ),
        q,
        connection.dialect.name,
    )
    result = await connection.execute(query.order_by(_tasks.c.status, _tasks.c.position, _tasks.c.id))
    blocked_by = {
        task_id: (
            "true" if any(b.blocking for b in blockers) else "false",
            to_json([b.model_dump(mode="json") for b in blockers]).decode(),
        )
        for task_id, blockers in (await dependencies.blockers_in_project(session, project_id)).items()
    }
    unblocked = ("false", "[]")
    cards: dict[str, list[str]] = {status.value: [] for status in TaskStatus}
    runs = runs or {}
    for status, task_id, card in result.all():
        run = runs.get(task_id)
        blocked, blockers = blocked_by.get(task_id, unblocked)
        cards[status].append(
            f'{card[:-1]},"blocked":{blocked},"blocked_by":{blockers},'
            f'"run":{to_json(run).decode() if run is not None else "null"}}}'
        )
    columns = (
        f'{{"status":"{status.value}","title":{to_json(COLUMN_TITLES[status]).decode()},'
        f'"count":{len(cards[status.value])},"tasks":[{",".join(cards[status.value])}]}}'
        for status in TaskStatus
    )
    return f"[{','.join(columns)}]"

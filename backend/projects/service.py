"""Projects: create, read, update, delete. Shared by the HTTP API and the orchestrator."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import Conflict, InvalidInput, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..models import Project
from .schemas import ProjectCreate, ProjectRead, ProjectUpdate


def derive_key(name: str) -> str:
    """KAN from "Kanban Orchestrator": the first three letters or digits, starting with a letter."""
    letters = re.sub(r"[^A-Za-z0-9]", "", name).upper().lstrip("0123456789")
    return letters[:3] if len(letters) >= 2 else "TASK"


def resolve_workspace(raw: str) -> str:
    path = Path(raw).expanduser()
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput(
            f"workspace_path: folder {raw!r} does not exist on this machine; create it first "
            "or give the path of an existing project folder"
        ) from None
    if not resolved.is_dir():
        raise InvalidInput(f"workspace_path: {raw!r} is a file, not a folder")
    return str(resolved)


async def get(session: AsyncSession, project_id: int, *, for_update: bool = False) -> Project:
    query = select(Project).where(Project.id == project_id)
    if for_update:
        query = query.with_for_update()
    project = await session.scalar(query)
    if project is None:
        raise NotFound(f"Project {project_id} not found")
    return project


async def list_all(session: AsyncSession) -> Sequence[Project]:
    return (await session.scalars(select(Project).order_by(Project.name))).all()


async def _ensure_name_free(session: AsyncSession, name: str, except_id: int | None = None) -> None:
    query = select(Project.id).where(func.lower(Project.name) == name.lower())
    if except_id is not None:
        query = query.where(Project.id != except_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"A project named {name!r} already exists; choose another name")


def _publish(session: AsyncSession, type: BoardEventType, project: Project):  # noqa: ANN202
    return event_log.record(session, type, project.id, ProjectRead.model_validate(project).model_dump(mode="json"))


async def create(session: AsyncSession, data: ProjectCreate) -> Project:
    await _ensure_name_free(session, data.name)
    project = Project(
        name=data.name,
        key=data.key or derive_key(data.name),
        workspace_path=resolve_workspace(data.workspace_path),
        base_branch=data.base_branch,
    )
    session.add(project)
    await session.flush()
    await _publish(session, BoardEventType.project_created, project)
    return project


async def update(session: AsyncSession, project_id: int, data: ProjectUpdate) -> Project:
    project = await get(session, project_id, for_update=True)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        await _ensure_name_free(session, changes["name"], except_id=project_id)
    if "workspace_path" in changes:
        changes["workspace_path"] = resolve_workspace(changes["workspace_path"])
    if not changes:
        return project
    for field, value in changes.items():
        setattr(project, field, value)
    await session.flush()
    await _publish(session, BoardEventType.project_updated, project)
    return project


async def delete(session: AsyncSession, project_id: int) -> None:
    project = await get(session, project_id, for_update=True)
    await session.delete(project)  # its tasks go with it (ON DELETE CASCADE)
    await session.flush()
    await event_log.record(session, BoardEventType.project_deleted, project_id, {"id": project_id})

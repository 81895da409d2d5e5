"""Projects: create, read, update, delete. Shared by the HTTP API and the orchestrator."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import git
from ..db import outside_transaction
from ..errors import Conflict, InvalidInput, KanbanError
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..models import ACTIVE_RUN_STATUSES, AgentRun, Project, Task, Workflow
from .schemas import ProjectCreate, ProjectDeletion, ProjectRead, ProjectUpdate


def derive_key(name: str) -> str:
    """KAN from "Kanban Orchestrator": the first three letters or digits, starting with a letter."""
    letters = re.sub(r"[^A-Za-z0-9]", "", name).upper().lstrip("0123456789")
    return letters[:3] if len(letters) >= 2 else "TASK"


def resolve_workspace(raw: str) -> str:
    if not raw.startswith(("/", "~")):
        raise InvalidInput(f"workspace_path: give the folder's absolute path (or one starting with ~), not {raw!r}")
    try:
        resolved = Path(raw).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: ~user of an unknown user, or a symlink loop
        raise InvalidInput(
            f"workspace_path: folder {raw!r} does not exist on this machine; create it first "
            "or give the path of an existing project folder"
        ) from None
    if not resolved.is_dir():
        raise InvalidInput(f"workspace_path: {raw!r} is a file, not a folder")
    return str(resolved)


# Folders the server must never make a repository of (it would commit all of it as its user).
log = logging.getLogger(__name__)
_SYSTEM_FOLDERS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/var/tmp",
    ]
)
_SYSTEM_TREES = (
    "/bin/",
    "/boot/",
    "/dev/",
    "/etc/",
    "/lib/",
    "/lib32/",
    "/lib64/",
    "/proc/",
    "/sbin/",
    "/sys/",
    "/usr/",
)


def _refuse_init_git_in(path: str) -> None:
    home = str(Path.home().resolve())
    if path in _SYSTEM_FOLDERS or path.startswith(_SYSTEM_TREES) or path == home:
        what = "your home folder" if path == home else "a system folder"
        raise InvalidInput(
            f"workspace_path: {path} is {what}; init_git would commit everything in it. "
            "Make a folder for the project and give that."
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidInput(f"workspace_path: the server cannot write to {path}, so it cannot make it a git repository")


async def get(session: AsyncSession, project_id: int, *, for_update: bool = False) -> Project:
    return await get_or_404(session, Project, project_id, "Project", for_update=for_update)


async def list_all(session: AsyncSession) -> Sequence[Project]:
    return (await session.scalars(select(Project).order_by(Project.name))).all()


async def _free_key(session: AsyncSession, wanted: str | None, name: str, except_id: int | None = None) -> str:
    """The wanted key if free (409 if taken), else a free one derived from the name: KAN, KAN2, …"""

    async def taken(key: str) -> bool:
        query = select(Project.id).where(Project.key == key)
        if except_id is not None:
            query = query.where(Project.id != except_id)
        return await session.scalar(query) is not None

    if wanted is not None:
        if await taken(wanted):
            raise Conflict(f"The key {wanted!r} is used by another project; short ids must stay unique", field="key")
        return wanted
    base = derive_key(name)
    for suffix in ["", *map(str, range(2, 1000))]:
        candidate = f"{base[: 10 - len(suffix)]}{suffix}"
        if not await taken(candidate):
            return candidate
    raise Conflict("No free project key; choose one with `key`")


async def suggest_key(session: AsyncSession, name: str) -> str:
    """The key a project of this name gets when it is created without one (what the create form previews)."""
    return await _free_key(session, None, name)


async def _ensure_name_free(session: AsyncSession, name: str, except_id: int | None = None) -> None:
    query = select(Project.id).where(func.lower(Project.name) == name.lower())
    if except_id is not None:
        query = query.where(Project.id != except_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"A project named {name!r} already exists; choose another name", field="name")


def _publish(session: AsyncSession, type: BoardEventType, project: Project):  # noqa: ANN202
    return event_log.record(session, type, project.id, ProjectRead.model_validate(project).model_dump(mode="json"))


async def _check_repository(path: str, base_branch: str | None, init_git: bool) -> tuple[str, bool]:
    """The base branch, and whether the folder has to be made a git repository first (with init_git).
    Changes nothing: the caller initialises the folder once everything else was checked."""
    if not await asyncio.to_thread(git.is_git_repository, path):
        if not init_git:
            raise InvalidInput(
                f"workspace_path: {path} is not a git repository; agents work on git branches. "
                "Pass init_git: true to make it one (with a first commit of what is there)."
            )
        _refuse_init_git_in(path)
        return base_branch or "main", True
    current = await asyncio.to_thread(git.current_branch, path)
    branch = base_branch or current
    if branch is None:
        raise InvalidInput("base_branch: the repository has no current branch (detached HEAD); name the base branch")
    if not await asyncio.to_thread(git.branch_exists, path, branch):
        raise InvalidInput(f"base_branch: branch {branch!r} does not exist in {path}")
    return branch, False


async def _init_repository(path: str, branch: str) -> None:
    try:
        await asyncio.to_thread(git.init_repository, path, branch)
    except git.GitCommandFailed as exc:
        raise InvalidInput(f"workspace_path: {path} could not be made a git repository: {exc.message}") from None


def _agent_settings(data: ProjectCreate | ProjectUpdate) -> dict:
    return data.model_dump(
        include={
            "permission_mode",
            "allowed_tools",
            "copy_files",
            "agent_model",
            "max_turns",
            "max_budget_usd",
            "save_task_results",
        },
        exclude_unset=True,
        exclude_none=True,
    )


# What a new project's agents get unless the request says otherwise.
_AGENT_DEFAULTS = {"permission_mode": "acceptEdits", "allowed_tools": [], "copy_files": []}


async def create(session: AsyncSession, data: ProjectCreate) -> Project:
    """Every check comes first; the folder is made a git repository (init_git) only once the row
    is written, so a refused project leaves the folder as it was."""
    await _ensure_name_free(session, data.name)
    workspace_path = resolve_workspace(data.workspace_path)
    key = await _free_key(session, data.key, data.name)
    base_branch, needs_init = await _check_repository(workspace_path, data.base_branch, data.init_git)
    project = Project(
        name=data.name,
        key=key,
        workspace_path=workspace_path,
        base_branch=base_branch,
        **(_AGENT_DEFAULTS | _agent_settings(data)),
    )
    session.add(project)
    await session.flush()
    if needs_init:
        await _init_repository(workspace_path, base_branch)
    await _publish(session, BoardEventType.project_created, project)
    return project


async def update(session: AsyncSession, project_id: int, data: ProjectUpdate) -> Project:
    project = await get(session, project_id, for_update=True)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for nullable in ("agent_model", "max_turns", "max_budget_usd"):
        if nullable in data.model_fields_set and getattr(data, nullable) is None:
            changes[nullable] = None
    if "name" in changes:
        await _ensure_name_free(session, changes["name"], except_id=project_id)
    if "key" in changes:
        changes["key"] = await _free_key(session, changes["key"], project.name, except_id=project_id)
    if "workspace_path" in changes:
        changes["workspace_path"] = resolve_workspace(changes["workspace_path"])
    if "workspace_path" in changes or "base_branch" in changes:
        changes["base_branch"], _ = await _check_repository(
            changes.get("workspace_path", project.workspace_path),
            changes.get("base_branch", project.base_branch),
            False,
        )
    if not changes:
        return project
    for field, value in changes.items():
        setattr(project, field, value)
    await session.flush()
    await _publish(session, BoardEventType.project_updated, project)
    return project


async def _worktrees(session: AsyncSession, project_id: int) -> list[str]:
    paths = await session.scalars(
        select(AgentRun.worktree_path)
        .where(AgentRun.project_id == project_id, AgentRun.worktree_path.is_not(None))
        .distinct()
    )
    return sorted(path for path in paths if path and os.path.isdir(path))


async def deletion(session: AsyncSession, project_id: int) -> ProjectDeletion:
    """What deleting the project would remove."""
    project = await get(session, project_id)
    active = [status.value for status in ACTIVE_RUN_STATUSES]

    async def count(model: Any, *where: Any) -> int:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return ProjectDeletion(
        tasks=await count(Task, Task.project_id == project_id),
        runs=await count(AgentRun, AgentRun.project_id == project_id),
        active_runs=await count(AgentRun, AgentRun.project_id == project_id, AgentRun.status.in_(active)),
        workflows=await count(Workflow, Workflow.project_id == project_id),
        worktrees=await _worktrees(session, project_id),
        workspace_path=project.workspace_path,
    )


WORKTREE_REMOVAL_ATTEMPTS = 3


async def _discard_worktree(project_id: int, workspace: str, path: str) -> None:
    """Remove one worktree, trying again shortly when git refuses: a git command reading the
    worktree at that moment (a diff, a status) holds its index lock for a little while."""
    for attempt in range(1, WORKTREE_REMOVAL_ATTEMPTS + 1):
        try:
            await asyncio.to_thread(git.discard_worktree, workspace, path)
            return
        except KanbanError as exc:  # the rest still go; a folder left over is only disk space
            if attempt == WORKTREE_REMOVAL_ATTEMPTS:
                log.warning("project %s: could not remove the worktree %s: %s", project_id, path, exc.message)
            else:
                await asyncio.sleep(0.25 * attempt)


async def delete(session: AsyncSession, project_id: int, *, remove_worktrees: bool = False) -> None:
    """Delete the project with its tasks, runs and workflows. Its folder is never touched; its
    tasks' worktrees stay unless `remove_worktrees` (then they go, once the delete has
    committed; their branches and commits stay in the repository)."""
    project = await get(session, project_id, for_update=True)
    active = [status.value for status in ACTIVE_RUN_STATUSES]
    running = (
        await session.execute(
            select(Task.short_id, AgentRun.attempt)
            .join(Task, Task.id == AgentRun.task_id)
            .where(AgentRun.project_id == project_id, AgentRun.status.in_(active))
            .limit(1)
        )
    ).first()
    if running is not None:
        short_id, attempt = running
        raise Conflict(
            f"Project {project.name!r} has an agent run in progress ({short_id}, attempt {attempt}); cancel it first"
        )
    worktrees = await _worktrees(session, project_id) if remove_worktrees else []
    workspace = project.workspace_path
    await session.delete(project)  # its tasks go with it (ON DELETE CASCADE)
    await session.flush()
    await event_log.record(session, BoardEventType.project_deleted, project_id, {"id": project_id})
    if worktrees:
        async with outside_transaction(session):  # the project is gone (committed) before its worktrees
            for path in worktrees:
                await _discard_worktree(project_id, workspace, path)

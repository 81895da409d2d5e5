from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ..deps import ReadSession, WriteSession
from ..kit.schemas import MAX_ID, ErrorResponse, Responses
from . import service as project_service
from .schemas import ProjectCreate, ProjectDeletion, ProjectName, ProjectRead, ProjectUpdate, SuggestedKey

router = APIRouter(prefix="/projects", tags=["projects"])
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such project"}}
NAME_TAKEN: Responses = {409: {"model": ErrorResponse, "description": "The name or key is used by another project"}}


@router.get("", response_model=list[ProjectRead], summary="List projects")
async def list_projects(session: ReadSession):
    return await project_service.list_all(session)


@router.post(
    "",
    response_model=ProjectRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a project",
    responses=NAME_TAKEN,
)
async def create_project(body: ProjectCreate, session: WriteSession):
    return await project_service.create(session, body)


@router.get("/suggested-key", response_model=SuggestedKey, summary="The key a new project would get")
async def suggested_key(
    session: ReadSession,
    name: Annotated[ProjectName, Query(description="The new project's name.")],
):
    return SuggestedKey(key=await project_service.suggest_key(session, name))


@router.get("/{project_id}", response_model=ProjectRead, summary="Get a project", responses=NOT_FOUND)
async def get_project(project_id: ProjectId, session: ReadSession):
    return await project_service.get(session, project_id)


@router.patch(
    "/{project_id}", response_model=ProjectRead, summary="Update a project", responses={**NOT_FOUND, **NAME_TAKEN}
)
async def update_project(project_id: ProjectId, body: ProjectUpdate, session: WriteSession):
    return await project_service.update(session, project_id, body)


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a project and its tasks",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "An agent run of the project is in progress"}},
)
async def delete_project(
    project_id: ProjectId,
    session: WriteSession,
    remove_worktrees: Annotated[
        bool, Query(description="Also remove its tasks' worktrees (their branches stay in the repository).")
    ] = False,
) -> None:
    await project_service.delete(session, project_id, remove_worktrees=remove_worktrees)


@router.get(
    "/{project_id}/deletion",
    response_model=ProjectDeletion,
    summary="What deleting a project removes",
    responses=NOT_FOUND,
)
async def project_deletion(project_id: ProjectId, session: ReadSession):
    return await project_service.deletion(session, project_id)

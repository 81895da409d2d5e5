from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field
from pydantic_core import to_json

from ..deps import ReadSession, WriteSession
from ..events import service as event_log
from ..kit.schemas import MAX_ID, CleanStr, ErrorResponse, OutputSchema, Responses
from ..runs import service as run_service
from ..runs.schemas import RunSummary
from ..tasks import service as task_service
from ..tasks.schemas import BoardColumn
from . import service as project_service
from .schemas import ProjectCreate, ProjectRead, ProjectUpdate

router = APIRouter(prefix="/projects", tags=["projects"])
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such project"}}
NAME_TAKEN: Responses = {409: {"model": ErrorResponse, "description": "The name or key is used by another project"}}


class BoardRead(OutputSchema):
    project: ProjectRead
    columns: list[BoardColumn]
    last_event_id: int = Field(
        description="The newest board event this board reflects: pass it as `last_event_id` to "
        "/api/events so the live stream starts exactly where this snapshot ends."
    )


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
async def delete_project(project_id: ProjectId, session: WriteSession) -> None:
    await project_service.delete(session, project_id)


@router.get(
    "/{project_id}/board",
    response_model=BoardRead,
    summary="The board: columns in order with their ordered tasks",
    responses=NOT_FOUND,
)
async def get_board(
    project_id: ProjectId,
    session: ReadSession,
    q: Annotated[
        CleanStr | None, Query(max_length=200, description="Only tasks whose title or description contains this.")
    ] = None,
):
    # Read the event cursor first: events after it may already show in the snapshot, and
    # clients apply events idempotently, so nothing falls between snapshot and stream.
    last_event_id = await event_log.last_id(session)
    project = await project_service.get(session, project_id)
    runs = {
        task_id: RunSummary.model_validate(run).model_dump(mode="json")
        for task_id, run in (await run_service.latest_by_task(session, project_id)).items()
    }
    columns = await task_service.board_columns_json(session, project_id, q or None, runs)
    project_json = to_json(ProjectRead.model_validate(project)).decode()
    # Written straight from the database's JSON (the fields are BoardRead's by
    # construction, checked by the tests): for a board of 10,000 cards, validating them
    # again would cost more than the query.
    body = f'{{"project":{project_json},"columns":{columns},"last_event_id":{last_event_id}}}'
    return Response(body, media_type="application/json")

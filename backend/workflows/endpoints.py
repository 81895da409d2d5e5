from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ..deps import ReadSession, SettingsDep, WriteSession
from ..kit.schemas import MAX_ID, ErrorResponse, Responses
from . import service as workflow_service
from .schemas import TemplateCatalog, WorkflowCreate, WorkflowRead

router = APIRouter(tags=["workflows"])
WorkflowId = Annotated[int, Path(ge=1, le=MAX_ID, description="The workflow's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such workflow, project or template"}}


@router.get(
    "/workflow-templates",
    response_model=TemplateCatalog,
    summary="List workflow templates",
    description="The built-in templates, the user's (`workflows/` in the data dir) and, with `project_id`, the "
    "project's own (`.kanban/workflows/*.yaml` in its repository; a name there replaces the others'). Files "
    "that cannot be read are listed in `problems` with their line.",
    responses=NOT_FOUND,
)
async def list_templates(
    session: ReadSession,
    settings: SettingsDep,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Include this project's own.")] = None,
):
    return await workflow_service.catalog(session, project_id, settings.workflows_dir)


@router.post(
    "/workflows",
    response_model=WorkflowRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start a workflow from a template",
    description="Makes the workflow's card (in Running) and one card per step, linked by dependencies; each "
    "step starts by itself once the steps it needs are done. A broken template file is a 422 naming its line.",
    responses=NOT_FOUND,
)
async def start_workflow(body: WorkflowCreate, session: WriteSession, settings: SettingsDep):
    return await workflow_service.start(session, body, settings.workflows_dir)


@router.get("/workflows", response_model=list[WorkflowRead], summary="List a project's workflows", responses=NOT_FOUND)
async def list_workflows(session: ReadSession, project_id: Annotated[int, Query(ge=1, le=MAX_ID)]):
    return await workflow_service.list_reads(session, project_id)


@router.get("/workflows/{workflow_id}", response_model=WorkflowRead, summary="Get a workflow", responses=NOT_FOUND)
async def get_workflow(workflow_id: WorkflowId, session: ReadSession):
    return await workflow_service.get_read(session, workflow_id)

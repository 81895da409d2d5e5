from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ..deps import ReadSession, WriteSession
from ..kit.schemas import MAX_ID, CleanStr, ErrorResponse, Responses
from ..models import TaskStatus
from . import service as task_service
from .schemas import TaskCreate, TaskMove, TaskPage, TaskRead, TaskUpdate

router = APIRouter(prefix="/tasks", tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such task"}}
CONFLICT: Responses = {
    409: {
        "model": ErrorResponse,
        "description": "The task changed since the given version (`current` holds the task as it is now), "
        "or it is blocked and cannot move to Running (`blocked_by` lists what blocks it).",
        "content": {
            "application/json": {
                "example": {
                    "detail": "Task KAN-12 was changed by someone else (you have version 2, it is now at version 3); "
                    "reload it and apply your change again",
                    "current": {"id": 12, "short_id": "KAN-12", "version": 3},
                }
            }
        },
    }
}


@router.post(
    "",
    response_model=TaskRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    responses={409: {"model": ErrorResponse, "description": "Created in Running while blocked (`blocked_by`)"}},
)
async def create_task(body: TaskCreate, session: WriteSession):
    return await task_service.create(session, body)


@router.get("", response_model=TaskPage, summary="List and search tasks")
async def list_tasks(
    session: ReadSession,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this column.")] = None,
    q: Annotated[CleanStr | None, Query(max_length=200, description="Text in the title or description.")] = None,
    parent_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only subtasks of this task.")] = None,
    short_id: Annotated[
        CleanStr | None, Query(max_length=24, description="The task with this short id (e.g. KAN-12).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=task_service.MAX_PAGE)] = 50,
    cursor: Annotated[CleanStr | None, Query(max_length=40, description="`next_cursor` of the previous page.")] = None,
):
    items, next_cursor = await task_service.list_page(
        session,
        project_id=project_id,
        status=status,
        q=q or None,
        parent_id=parent_id,
        short_id=short_id or None,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{task_id}", response_model=TaskRead, summary="Get a task", responses=NOT_FOUND)
async def get_task(task_id: TaskId, session: ReadSession):
    return await task_service.read(session, await task_service.get(session, task_id))


@router.patch(
    "/{task_id}",
    response_model=TaskRead,
    summary="Update a task (optimistic concurrency)",
    responses={**NOT_FOUND, **CONFLICT},
)
async def update_task(task_id: TaskId, body: TaskUpdate, session: WriteSession):
    return await task_service.update_task(session, task_id, body)


@router.post(
    "/{task_id}/move",
    response_model=TaskRead,
    summary="Move a task to a column and place it",
    responses={**NOT_FOUND, **CONFLICT},
)
async def move_task(task_id: TaskId, body: TaskMove, session: WriteSession):
    return await task_service.move(session, task_id, body)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "An agent run of the task is in progress"}},
)
async def delete_task(task_id: TaskId, session: WriteSession) -> None:
    await task_service.delete(session, task_id)

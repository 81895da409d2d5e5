from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ..deps import ReadSession
from ..kit.schemas import MAX_ID, CleanStr, ErrorResponse, Responses
from . import service as board_service
from .schemas import BoardRead

router = APIRouter(prefix="/projects", tags=["projects"])
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such project"}}


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
    return Response(await board_service.board_json(session, project_id, q or None), media_type="application/json")

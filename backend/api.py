"""Every HTTP route under /api."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from . import __version__
from .board.endpoints import router as board_router
from .board.stream import router as events_router
from .deps import DatabaseDep
from .kit.schemas import ErrorResponse, Responses, ValidationErrorResponse
from .knowledge.endpoints import project_router as knowledge_project_router
from .knowledge.endpoints import router as knowledge_router
from .knowledge.endpoints import run_router as knowledge_run_router
from .migrations_runner import current_revision
from .notifications.endpoints import router as notifications_router
from .plugins.endpoints import router as plugins_router
from .projects.endpoints import router as projects_router
from .runs.endpoints import router as runs_router
from .tasks.endpoints import router as tasks_router
from .workflows.endpoints import router as workflows_router


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=["0.1.0"])
    database: str = Field(examples=["sqlite"], description="sqlite or postgresql")
    revision: str | None = Field(examples=["0001"], description="The schema's migration revision.")


health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=Health, summary="Server status")
async def health(database: DatabaseDep):
    async with database.engine.connect() as connection:
        revision = await connection.run_sync(current_revision)
    return Health(status="ok", version=__version__, database=database.kind, revision=revision)


# Answers any route can give: the request guard's (security.py) and the body check's. Each
# router adds the ones its routes use (404, 409, …); all share ErrorResponse's shape.
COMMON_ERRORS: Responses = {
    400: {"model": ErrorResponse, "description": "Host header not allowed"},
    401: {"model": ErrorResponse, "description": "The server has an API token and the request did not carry it"},
    403: {"model": ErrorResponse, "description": "A browser request from a page of another origin"},
    413: {"model": ErrorResponse, "description": "The request body is larger than the server accepts"},
    422: {
        "model": ValidationErrorResponse,
        "description": "The request does not fit the schema, or its values are not acceptable",
    },
}

api_router = APIRouter(prefix="/api", responses=COMMON_ERRORS)
for router in (
    health_router,
    projects_router,
    board_router,
    tasks_router,
    runs_router,
    events_router,
    plugins_router,
    knowledge_router,
    knowledge_project_router,
    knowledge_run_router,
    workflows_router,
    notifications_router,
):
    api_router.include_router(router)

__all__ = ["api_router"]

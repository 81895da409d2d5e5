"""Every HTTP route under /api."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
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
from .monitoring import readiness
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


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    database: str = Field(examples=["postgresql"], description="sqlite or postgresql")
    revision: str | None = Field(examples=["0008"], description="The schema's migration revision.")
    head: str | None = Field(examples=["0008"], description="The revision this version of the server needs.")


class NotReady(BaseModel):
    status: Literal["not_ready"] = "not_ready"
    problems: list[str] = Field(
        examples=[["the database did not answer within 2 s"]], description="What keeps the server from serving."
    )


health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=Health, summary="Server status")
async def health(database: DatabaseDep):
    async with database.engine.connect() as connection:
        revision = await connection.run_sync(current_revision)
    return Health(status="ok", version=__version__, database=database.kind, revision=revision)


@health_router.get(
    "/health/ready",
    response_model=Ready,
    summary="Readiness: the database answers and its schema is current",
    description="200 when the database answers a `SELECT 1` within 2 s and its schema is at the migrations' "
    "head; 503 with the problems otherwise. Like `/api/health`, it needs no API token.",
    responses={503: {"model": NotReady, "description": "Not ready: the database or its schema is not usable"}},
)
async def ready(database: DatabaseDep):
    found = await readiness(database)
    if not found.ready:
        return JSONResponse(NotReady(problems=found.problems).model_dump(), status_code=503)
    return Ready(database=found.database, revision=found.revision, head=found.head)


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

"""Every HTTP route under /api."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from . import __version__
from .deps import DatabaseDep
from .events.endpoints import router as events_router
from .migrations_runner import current_revision
from .plugins.endpoints import router as plugins_router
from .projects.endpoints import router as projects_router
from .runs.endpoints import router as runs_router
from .tasks.endpoints import router as tasks_router


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


api_router = APIRouter(prefix="/api")
for router in (health_router, projects_router, tasks_router, runs_router, events_router, plugins_router):
    api_router.include_router(router)

__all__ = ["api_router"]

"""Reading the board snapshot. No FastAPI here."""

from __future__ import annotations

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from ..events import service as event_log
from ..projects import service as project_service
from ..projects.schemas import ProjectRead
from ..runs import service as run_service
from ..runs.schemas import RunSummary
from ..tasks import service as task_service


async def board_json(session: AsyncSession, project_id: int, q: str | None = None) -> str:
    """The project's board as the JSON text of `BoardRead`.

    Written straight from the database's JSON (the fields are BoardRead's by construction,
    checked by the tests): for a board of 10,000 cards, validating them again would cost more
    than the query.
    """
    # Read the event cursor first: events after it may already show in the snapshot, and
    # clients apply events idempotently, so nothing falls between snapshot and stream.
    last_event_id = await event_log.last_id(session)
    project = await project_service.get(session, project_id)
    runs = {
        task_id: RunSummary.model_validate(run).model_dump(mode="json")
        for task_id, run in (await run_service.latest_by_task(session, project_id)).items()
    }
    columns = await task_service.board_columns_json(session, project_id, q, runs)
    project_json = to_json(ProjectRead.model_validate(project)).decode()
    return f'{{"project":{project_json},"columns":{columns},"last_event_id":{last_event_id}}}'

"""What operators look at: readiness (`/api/health/ready`) and the Prometheus metrics (`/metrics`).

`/api/health` (api.py) says the process is up. Readiness says it can serve: the database
answers within READY_TIMEOUT_SECONDS and its schema is at the migrations' head. `/metrics` is
the app's registry (`metrics.py`) in Prometheus' text format, outside /api and the OpenAPI
document; it needs the API token when the server has one (security.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text

from .db import Database
from .deps import DatabaseDep, MetricsDep
from .metrics import CONTENT_TYPE
from .migrations_runner import current_revision, head_revision
from .runs import monitoring as run_monitoring

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0


@dataclass
class Readiness:
    database: str
    revision: str | None = None
    head: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


async def readiness(database: Database, timeout: float = READY_TIMEOUT_SECONDS) -> Readiness:
    """Whether the database answers (a `SELECT 1` within `timeout`) and its schema is at head.
    A problem names what is wrong, not where the database is: the details go to the log."""
    found = Readiness(database.kind, head=head_revision())
    try:
        async with asyncio.timeout(timeout):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                found.revision = await connection.run_sync(current_revision)
    except TimeoutError:
        log.warning("not ready: the database did not answer within %g s", timeout)
        found.problems.append(f"the database did not answer within {timeout:g} s")
        return found
    except Exception as exc:
        log.warning("not ready: the database cannot be reached", exc_info=True)
        found.problems.append(f"the database cannot be reached ({type(exc).__name__}); the server log has the details")
        return found
    if found.revision != found.head:
        found.problems.append(
            f"the database schema is at revision {found.revision or 'none'}, this version needs {found.head}: "
            "run `kanban db upgrade`"
        )
    return found


metrics_router = APIRouter()


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(metrics: MetricsDep, database: DatabaseDep) -> Response:
    body = await metrics.exposition(partial(run_monitoring.database_gauges, database))
    return Response(body, media_type=CONTENT_TYPE)

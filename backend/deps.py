"""FastAPI dependencies: sessions (the one place HTTP requests commit) and app services.

Only what belongs to no domain: a domain's own app objects (the event hub, the secret box)
have their dependency in its endpoints, so this module imports no domain package.

All of them are `async def`: FastAPI runs plain `def` dependencies on a thread pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client.discovery import DiscoveryClient

from .config import Settings
from .db import Database
from .metrics import Metrics


async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_discovery(request: Request) -> DiscoveryClient:
    return request.app.state.discovery


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def _read_session(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    async with database.session() as session:
        yield session


async def _write_session(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    async with database.session(write=True) as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client
# never sees a 2xx for a change that did not commit.
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DiscoveryDep = Annotated[DiscoveryClient, Depends(get_discovery)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

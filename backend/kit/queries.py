"""Query helpers shared by the domain services."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import NotFound

M = TypeVar("M")


async def get_or_404(session: AsyncSession, model: type[M], id: int, label: str, *, for_update: bool = False) -> M:
    """The row with this id (locked until commit with `for_update`), or NotFound("<label> <id> not found")."""
    query: Any = select(model).where(model.id == id)  # type: ignore[attr-defined]  # every mapped model has an id column
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFound(f"{label} {id} not found")
    return row

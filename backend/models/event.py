from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigIntKey, JSONType, utcnow


class BoardEvent(Base):
    """The append-only board event log.

    Written in the same transaction as the change it describes; the live stream and its
    replay read from here. No foreign key to projects: a project's events outlive it
    (clients must still see `project.deleted`).
    """

    __tablename__ = "board_events"
    __table_args__ = (
        Index("ix_board_events_project_id_id", "project_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    project_id: Mapped[int | None] = mapped_column()
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

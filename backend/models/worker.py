from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType


class Worker(Base):
    """A process that runs agents (`kanban worker`, or `kanban serve` with agents on), as it
    last reported itself. Alive while its heartbeat is younger than the lease."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()
    # The ids of the projects whose folders it can reach (exist, git repositories).
    projects: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    max_concurrent_runs: Mapped[int] = mapped_column(Integer)
    # Runs it took over from workers that lost their lease (never reset: rows stay after a stop).
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

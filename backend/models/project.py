from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin


class Project(TimestampMixin, Base):
    """A board, bound to one folder on disk (later: a git repository)."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Prefix of the tasks' short ids: KAN in KAN-12.
    key: Mapped[str] = mapped_column(String(10))
    workspace_path: Mapped[str] = mapped_column(Text)
    base_branch: Mapped[str] = mapped_column(String(255), default="main")
    # The number the last task got; short ids never repeat inside a project.
    last_task_number: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

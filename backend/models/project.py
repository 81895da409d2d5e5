from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text, text, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin


class Project(TimestampMixin, Base):
    """A board, bound to one folder on disk (later: a git repository)."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Prefix of the tasks' short ids: KAN in KAN-12. Unique, so short ids are unique too.
    key: Mapped[str] = mapped_column(String(10), unique=True)
    workspace_path: Mapped[str] = mapped_column(Text)
    base_branch: Mapped[str] = mapped_column(String(255), default="main")
    # The number the last task got; short ids never repeat inside a project.
    last_task_number: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # How agents work in this project.
    permission_mode: Mapped[str] = mapped_column(String(20), default="acceptEdits", server_default="acceptEdits")
    # Tools the user chose "always allow" for (tool names, e.g. "Bash").
    allowed_tools: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    # Untracked files copied into each task's worktree (e.g. ".env").
    copy_files: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    agent_model: Mapped[str | None] = mapped_column(String(100))
    max_turns: Mapped[int | None] = mapped_column(Integer)
    max_budget_usd: Mapped[float | None] = mapped_column(Float)
    # Approved tasks' results go to the project's write collection (when one is bound).
    save_task_results: Mapped[bool] = mapped_column(default=True, server_default=true())

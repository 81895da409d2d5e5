"""The board snapshot: a project's columns with their cards, each with its newest run."""

from __future__ import annotations

from pydantic import Field

from ..kit.schemas import OutputSchema
from ..models import TaskStatus
from ..projects.schemas import ProjectRead
from ..runs.schemas import RunSummary
from ..tasks.schemas import BoardTask


class BoardCard(BoardTask):
    run: RunSummary | None = Field(default=None, description="The task's newest agent run, if any.")


class BoardColumn(OutputSchema):
    status: TaskStatus
    title: str = Field(examples=["To Do"])
    count: int
    tasks: list[BoardCard]


class BoardRead(OutputSchema):
    project: ProjectRead
    columns: list[BoardColumn]
    last_event_id: int = Field(
        description="The newest board event this board reflects: pass it as `last_event_id` to "
        "/api/events so the live stream starts exactly where this snapshot ends."
    )

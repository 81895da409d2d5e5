from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from ..kit.schemas import Id, InputSchema, OutputSchema, TextLimits, strip_blanks
from ..models import RunStatus, StepKind, TaskPriority, TaskStatus

Title = Annotated[str, TextLimits(1, 200, strip=True)]
Description = Annotated[str, TextLimits(0, 100_000)]
ResultText = Annotated[str, TextLimits(0, 200_000)]
Label = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f,]+$"), BeforeValidator(strip_blanks)
]
Labels = Annotated[list[Label], Field(max_length=20)]
MAX_BLOCKERS = 50
BlockedBy = Annotated[list[Id], Field(max_length=MAX_BLOCKERS)]

COLUMN_TITLES: dict[TaskStatus, str] = {
    TaskStatus.todo: "To Do",
    TaskStatus.in_progress: "Running",
    TaskStatus.needs_review: "Review",
    TaskStatus.done: "Done",
}


class TaskCreate(InputSchema):
    project_id: Id = Field(examples=[1])
    title: Title = Field(examples=["Add a dark mode toggle"])
    description: Description = Field(default="", description="Markdown.", examples=["Follow the system setting."])
    status: TaskStatus = TaskStatus.todo
    priority: TaskPriority = TaskPriority.none
    labels: Labels = Field(default_factory=list, examples=[["ui"]])
    parent_id: Id | None = Field(default=None, description="Make this a subtask of that task.")
    created_by_run_id: Id | None = Field(default=None, description="The agent run that creates this task.")
    blocked_by: BlockedBy = Field(
        default_factory=list,
        description="Tasks of the same project this one waits for: it is blocked until every one of them is done.",
        examples=[[3, 5]],
    )
    start_when_unblocked: bool = Field(
        default=False,
        description="Start an agent run by itself once every task in `blocked_by` is done (at once if none is open).",
    )


class TaskUpdate(InputSchema):
    version: int = Field(
        ge=1,
        description="The version this change is based on. If the task changed since, "
        "the answer is 409 with the current task and nothing is written.",
        examples=[3],
    )
    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = Field(default=None, description="Moves the task to the end of that column.")
    priority: TaskPriority | None = None
    labels: Labels | None = None
    parent_id: Id | None = Field(default=None, description="Set a parent; send null to clear it.")
    result: ResultText | None = Field(default=None, description="Markdown outcome, usually written by an agent.")
    blocked_by: BlockedBy | None = Field(
        default=None,
        description="Replaces the tasks this one waits for (links to deleted tasks too); `[]` clears them.",
    )
    start_when_unblocked: bool | None = Field(
        default=None, description="Start an agent run by itself once unblocked (at once if nothing blocks it)."
    )

    @model_validator(mode="after")
    def _nulls_only_where_allowed(self) -> TaskUpdate:
        for name in ("title", "description", "status", "priority", "labels", "blocked_by", "start_when_unblocked"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TaskMove(InputSchema):
    status: TaskStatus = Field(description="The target column.", examples=["done"])
    before_id: Id | None = Field(default=None, description="Place the task right before this task.")
    after_id: Id | None = Field(default=None, description="Place the task right after this task.")
    index: int | None = Field(
        default=None, ge=0, le=1_000_000, description="0-based place among the column's other tasks."
    )
    version: int | None = Field(
        default=None, ge=1, description="If given, refuse the move when the task changed since."
    )

    @model_validator(mode="after")
    def _one_anchor(self) -> TaskMove:
        given = [n for n in ("before_id", "after_id", "index") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of before_id, after_id, index (got {', '.join(given)})")
        return self


class Blocker(OutputSchema):
    """A task this one waits for, and whether (and why) it still blocks."""

    task_id: int | None = Field(description="Null when that task was deleted.", examples=[3])
    short_id: str = Field(examples=["KAN-3"])
    title: str | None = Field(description="Null when that task was deleted.", examples=["Set up the database"])
    status: TaskStatus | None = Field(description="Its column; null when it was deleted.")
    run_status: RunStatus | None = Field(description="The state of its newest agent run, if any.")
    blocking: bool = Field(description="True until that task is done; a deleted task blocks for good.")
    reason: str | None = Field(
        description="Why it blocks, e.g. `KAN-3 is in To Do`, `KAN-3's run failed`, `KAN-3 was deleted`; "
        "null once it is done.",
        examples=["KAN-3 is in To Do"],
    )


class BoardTask(OutputSchema):
    """A task as shown on a card: everything but the long text fields."""

    id: int = Field(examples=[12])
    short_id: str = Field(examples=["KAN-12"])
    number: int = Field(examples=[12])
    project_id: int = Field(examples=[1])
    title: str = Field(examples=["Add a dark mode toggle"])
    status: TaskStatus
    position: str = Field(description="Order key inside the column (compare as strings).", examples=["a0"])
    priority: TaskPriority
    labels: list[str]
    parent_id: int | None
    created_by_run_id: int | None = Field(description="The agent run that created this task, if an agent did.")
    version: int = Field(examples=[1])
    created_at: datetime
    updated_at: datetime
    start_when_unblocked: bool = Field(description="An agent run starts by itself once nothing blocks the task.")
    blocked: bool = Field(description="Some task in `blocked_by` is not done (or was deleted).")
    blocked_by: list[Blocker] = Field(description="The tasks this one waits for, in the order they were linked.")
    workflow_id: int | None = Field(
        default=None, description="The workflow this card belongs to: its parent card, or one of its steps."
    )
    workflow_step: str | None = Field(
        default=None, description="The step's id in its workflow's template; null on the parent card."
    )
    workflow_step_kind: StepKind | None = Field(default=None, description="What the step does when it starts.")


class WorkflowLink(OutputSchema):
    """Which workflow a new card belongs to (set by the workflow that makes it, never by the API)."""

    workflow_id: int
    workflow_step: str | None = None
    workflow_step_kind: StepKind | None = None


class TaskRead(BoardTask):
    description: str
    result: str | None


class TaskPage(OutputSchema):
    items: list[TaskRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")

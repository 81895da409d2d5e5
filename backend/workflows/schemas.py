from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from ..kit.schemas import Id, InputSchema, OutputSchema, TextLimits
from ..models import RunStatus, StepKind, TaskStatus, WorkflowStatus
from ..tasks.schemas import Title

TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9-]*$")]
InputValue = Annotated[str, TextLimits(0, 100_000)] | int | float | bool
MAX_INPUTS = 50


class TemplateInputRead(OutputSchema):
    name: str = Field(examples=["feature"])
    title: str = Field(examples=["What to build"])
    type: str = Field(
        description="string (one line), text (several lines), integer, number, boolean or choice.",
        examples=["text"],
    )
    description: str
    required: bool
    default: str | int | float | bool | None
    options: list[str] = Field(description="The allowed values of a choice.")


class TemplateUntilRead(OutputSchema):
    check: str = Field(description="The command that must pass (placeholders not filled in).", examples=["make test"])
    max_attempts: int = Field(examples=[3])
    timeout_seconds: int = Field(examples=[600])


class TemplateStepRead(OutputSchema):
    id: str = Field(examples=["plan"])
    title: str = Field(examples=["Plan {{feature}}"])
    kind: StepKind
    needs: list[str] = Field(description="The steps this one waits for (all of them).", examples=[["plan"]])
    review: str | None = Field(
        description="human: lands in Review; auto: accepted (merged, done) when it succeeded. Null for approvals."
    )
    until: TemplateUntilRead | None = Field(description="An agent step's check, retried in the same session.")
    command: str | None = Field(description="A check step's command.")


class TemplateRead(OutputSchema):
    """A workflow template as the board offers it."""

    name: str = Field(examples=["feature"])
    title: str = Field(examples=["Build a feature"])
    description: str
    origin: str = Field(description="builtin, user (the data dir) or project (its `.kanban/workflows`).")
    source: str = Field(description="Its file.", examples=["builtin:feature.yaml"])
    inputs: list[TemplateInputRead]
    steps: list[TemplateStepRead]


class TemplateProblemRead(OutputSchema):
    source: str = Field(examples=[".kanban/workflows/release.yaml"])
    line: int | None = Field(examples=[12])
    field: str = Field(examples=["steps[1].needs[0]"])
    message: str = Field(examples=["no step named 'biuld'; steps: plan, build"])


class TemplateCatalog(OutputSchema):
    templates: list[TemplateRead]
    problems: list[TemplateProblemRead] = Field(description="Template files that could not be read, and why.")


class WorkflowCreate(InputSchema):
    project_id: Id = Field(examples=[1])
    template: TemplateName = Field(description="The template's name.", examples=["feature"])
    inputs: dict[Annotated[str, StringConstraints(max_length=40)], InputValue] = Field(
        default_factory=dict,
        max_length=MAX_INPUTS,
        description="The template's inputs by name; defaults fill in what is left out.",
        examples=[{"feature": "A dark mode toggle", "test_command": "make test"}],
    )
    title: Title | None = Field(default=None, description="The workflow card's title (default: from the template).")


class WorkflowPhase(StrEnum):
    """Where a workflow stands, for people: what the board shows on its card."""

    running = "running"  # a step works, or is about to start
    needs_you = "needs_you"  # a step waits in Review for a person
    stalled = "stalled"  # a step failed or was deleted: its dependents wait until it is done
    done = "done"
    cancelled = "cancelled"


class WorkflowStepRead(OutputSchema):
    step_id: str = Field(examples=["implement"])
    title: str = Field(examples=["Implement a dark mode toggle"])
    kind: StepKind
    needs: list[str] = Field(examples=[["approve-plan"]])
    review: str | None
    task_id: int | None = Field(description="The step's card; null when it was deleted.")
    short_id: str | None = Field(examples=["KAN-7"])
    status: TaskStatus | None = Field(description="The card's column.")
    run_status: RunStatus | None = Field(description="Its newest run's state.")
    runs: int = Field(description="How many runs it had (with `until`: one per attempt).")
    max_attempts: int | None = Field(description="With `until`: how many attempts it may take.")
    blocked: bool
    reason: str | None = Field(description="Why it waits or stopped, when it does.")


class WorkflowProgress(OutputSchema):
    done: int = Field(examples=[2])
    total: int = Field(examples=[3])
    current: list[str] = Field(description="The titles of the steps working or waiting for a person now.")


class WorkflowRead(OutputSchema):
    id: int = Field(examples=[1])
    project_id: int
    parent_task_id: int | None = Field(description="The workflow's card; null when it was deleted.")
    template_name: str = Field(examples=["feature"])
    title: str
    origin: str
    source: str
    status: WorkflowStatus
    phase: WorkflowPhase
    inputs: dict[str, str]
    progress: WorkflowProgress
    steps: list[WorkflowStepRead] = Field(description="In the template's order (every step after those it needs).")
    result: str | None = Field(description="The final steps' results, once every step is done.")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

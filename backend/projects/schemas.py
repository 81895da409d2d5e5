from __future__ import annotations

from datetime import datetime
import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from ..kit.schemas import InputSchema, OutputSchema, bounded_text

ProjectName = bounded_text(1, 100, strip=True)
WorkspacePath = bounded_text(1, 4096, strip=True)
_BAD_BRANCH_CHARS = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]")


def _branch_name(value: str) -> str:
    """Close to `git check-ref-format --branch`."""
    if (
        _BAD_BRANCH_CHARS.search(value)
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
    ):
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


BranchName = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_branch_name)]
ProjectKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,9}$")]


class ProjectCreate(InputSchema):
    name: ProjectName = Field(examples=["Kanban Orchestrator"])
    workspace_path: WorkspacePath = Field(
        description="An existing folder on the server's machine; stored as an absolute path.",
        examples=["~/code/kanban-orchestrator"],
    )
    base_branch: BranchName = Field(default="main", examples=["main"])
    key: ProjectKey | None = Field(
        default=None,
        description="Prefix of the tasks' short ids (2–10 capital letters or digits). "
        "Default: derived from the name.",
        examples=["KAN"],
    )


class ProjectUpdate(InputSchema):
    name: ProjectName | None = None
    workspace_path: WorkspacePath | None = None
    base_branch: BranchName | None = None
    key: ProjectKey | None = Field(default=None, description="Applies to tasks created from now on.")


class ProjectRead(OutputSchema):
    id: int = Field(examples=[1])
    name: str = Field(examples=["Kanban Orchestrator"])
    key: str = Field(examples=["KAN"])
    workspace_path: str = Field(examples=["/home/ada/code/kanban-orchestrator"])
    base_branch: str = Field(examples=["main"])
    created_at: datetime
    updated_at: datetime

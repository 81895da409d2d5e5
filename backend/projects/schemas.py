from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from ..kit.schemas import InputSchema, OutputSchema, TextLimits, strip_blanks

ProjectName = Annotated[str, TextLimits(1, 100, strip=True)]
WorkspacePath = Annotated[str, TextLimits(1, 4096, strip=True)]
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
PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
ToolName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:()*\- /]+$"),
    BeforeValidator(strip_blanks),
]
RelativeFile = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000),
    AfterValidator(lambda v: _relative_file(v)),
    BeforeValidator(strip_blanks),
]


def _relative_file(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if "\x00" in value or value.startswith(("/", "~")) or ".." in parts:
        raise ValueError(f"{value!r} must be a path inside the project folder (no '..', not absolute)")
    if not [part for part in parts if part not in ("", ".")]:
        raise ValueError(f"{value!r} names the project folder itself; name a file or folder inside it")
    return value


class AgentSettings(InputSchema):
    permission_mode: PermissionMode | None = Field(
        default=None,
        description="How the agent may act: acceptEdits (default) edits files freely and asks before other "
        "tools; default asks for edits too; plan only plans; bypassPermissions never asks.",
    )
    allowed_tools: Annotated[list[ToolName], Field(max_length=100)] | None = Field(
        default=None, description='Tools the agent may use without asking ("always allow").', examples=[["Bash"]]
    )
    copy_files: Annotated[list[RelativeFile], Field(max_length=100)] | None = Field(
        default=None, description="Untracked files copied into each task's worktree.", examples=[[".env"]]
    )
    agent_model: Annotated[str, TextLimits(1, 100, strip=True)] | None = Field(
        default=None, description="Model for this project's agents."
    )
    max_turns: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_budget_usd: Annotated[float, Field(gt=0, le=100_000)] | None = None
    save_task_results: bool | None = Field(
        default=None,
        description="Save an approved task's result to the project's write collection (knowledge); default on.",
    )


class ProjectCreate(AgentSettings):
    name: ProjectName = Field(examples=["Kanban Orchestrator"])
    workspace_path: WorkspacePath = Field(
        description="An existing git repository on the server's machine (or any folder with init_git); "
        "stored as an absolute path.",
        examples=["~/code/kanban-orchestrator"],
    )
    base_branch: BranchName | None = Field(
        default=None,
        description="Branch agents start from and merge into. Default: the repository's current branch.",
        examples=["main"],
    )
    init_git: bool = Field(
        default=False, description="Make the folder a git repository (with a first commit) if it is not one."
    )
    key: ProjectKey | None = Field(
        default=None,
        description="Prefix of the tasks' short ids (2–10 capital letters or digits). Default: derived from the name.",
        examples=["KAN"],
    )


class ProjectUpdate(AgentSettings):
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
    permission_mode: str = Field(examples=["acceptEdits"])
    allowed_tools: list[str]
    copy_files: list[str]
    agent_model: str | None
    max_turns: int | None
    max_budget_usd: float | None
    save_task_results: bool
    created_at: datetime
    updated_at: datetime


class ProjectDeletion(OutputSchema):
    """What deleting a project removes, for the confirmation that names it."""

    tasks: int = Field(description="Its tasks, with their runs and logs.", examples=[12])
    runs: int = Field(examples=[20])
    active_runs: int = Field(description="Runs in progress: the delete is refused until they are cancelled.")
    workflows: int = Field(examples=[1])
    worktrees: list[str] = Field(
        description="Its tasks' worktrees on disk: kept unless the delete asks to remove them (their branches stay)."
    )
    workspace_path: str = Field(description="The project's folder: never touched.")


class SuggestedKey(OutputSchema):
    key: str = Field(description="The key a project of that name gets when created without `key`.", examples=["KAN"])

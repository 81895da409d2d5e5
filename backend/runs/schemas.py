from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..git import MAX_DIFF_LINES_PER_FILE, MAX_DIFF_LINES_TOTAL
from ..kit.schemas import InputSchema, OutputSchema, TextLimits
from ..models import ApprovalStatus, RunKind, RunReason, RunStatus
from .event_types import RUN_EVENTS_DOC, RunEventType

Instructions = Annotated[str, TextLimits(0, 50_000)]
Feedback = Annotated[str, TextLimits(1, 50_000, strip=True)]


class RunCreate(InputSchema):
    instructions: Instructions = Field(default="", description="Extra instructions for the agent, added to the task.")


class ChangesRequest(InputSchema):
    feedback: Feedback = Field(description="What the agent should change; it continues the same session.")


class ApprovalDecision(InputSchema):
    decision: Literal["allow", "deny", "always_allow"] = Field(
        description="always_allow also adds the tool to the project's always-allowed tools."
    )
    message: Annotated[str, TextLimits(0, 2_000)] = Field(default="", description="Told to the agent when denied.")


class ApprovalRead(OutputSchema):
    id: int
    run_id: int
    tool_name: str
    input: dict[str, Any]
    status: ApprovalStatus
    decision: str | None
    message: str | None
    created_at: datetime
    decided_at: datetime | None


class AgentsStatus(OutputSchema):
    """Whether this board can run agents now, and what to do when it cannot."""

    runs_agents: bool = Field(description="This server process runs agents (false: another process does, or none).")
    can_run: bool = Field(description="Agents can start: this process runs them and finds credentials.")
    problem: str | None = Field(description="Why agents cannot run, with the fix; null when they can.")
    login_command: str | None = Field(
        description="The command that logs the agents' Claude CLI in on this machine (there may be no `claude` on PATH)."
    )
    active_runs: int = Field(description="Runs this process is executing now.")
    max_concurrent_runs: int


class RunSummary(OutputSchema):
    """A run as shown on cards and in the run history."""

    id: int
    task_id: int
    project_id: int
    attempt: int = Field(description="The task's attempt this run is: 1, 2, 3 … (the number the board shows).")
    kind: RunKind = Field(description="agent, or check: a workflow check step's command.")
    reason: RunReason = Field(
        description="Why it was queued: start (Run), changes_requested (the reviewer's feedback), check_failed "
        "(an `until` check sent the attempt back with its output), sent_back (a workflow's approval step). "
        "What the agent was told is the run's `prompt`."
    )
    status: RunStatus
    check_passed: bool | None = Field(
        description="A workflow step's check after this run (`until`, or a check step); null when none ran."
    )
    session_id: str | None
    branch: str | None
    base_commit: str | None
    head_commit: str | None
    error: str | None
    cost_usd: float | None = Field(description="This run's own cost in USD (not the earlier runs of its session).")
    task_cost_usd: float | None = Field(
        description="What the task's runs cost up to and including this one; on the newest run, the task's total."
    )
    input_tokens: int | None
    output_tokens: int | None
    turns: int | None
    duration_ms: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    has_changes: bool = Field(
        default=False,
        description="The task's branch has commits the base did not have when its work began (head differs from "
        "base); false before any work and for a run that changed nothing: then approving merges nothing.",
    )
    starts: int = Field(description="How many times the run was started: more than 1 after a restart or a takeover.")
    owner: str | None = Field(description="The worker executing the run while it runs; null otherwise.")
    host: str | None = Field(
        description="The host the run ran on (its worktree and Claude session are there); null before it started."
    )
    lease_expires_at: datetime | None = Field(
        description="Until when the owner's lease holds without renewal; a live worker takes the run over after it."
    )
    waiting_for: str | None = Field(
        description="Why a queued run waits when no live worker can take it (its host, its folder); null otherwise."
    )

    @model_validator(mode="after")
    def _changes_from_commits(self) -> RunSummary:
        """Derived from the commits, never taken from input, so a card and an event cannot disagree."""
        self.has_changes = bool(self.head_commit and self.base_commit and self.head_commit != self.base_commit)
        return self


class RunRead(RunSummary):
    prompt: str = Field(description="What the agent was asked (a check run: its command).")
    resume_session_id: str | None = Field(description="The Claude session this run continued, if any.")
    result: str | None
    pending_approvals: list[ApprovalRead] = Field(default_factory=list)


class RunEventRead(OutputSchema):
    seq: int
    type: RunEventType = Field(examples=["tool_use"], description=RUN_EVENTS_DOC)
    payload: dict[str, Any]
    created_at: datetime


class RunEventPage(OutputSchema):
    items: list[RunEventRead]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null when there is none yet."
    )


class DiffLine(OutputSchema):
    type: Literal["context", "add", "del"]
    old: int | None = Field(description="The line's number in the base version; null for an added line.")
    new: int | None = Field(description="The line's number in the new version; null for a deleted line.")
    text: str = Field(description="The line without its line break (a CR of a CRLF line stays).")
    no_newline: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description="The file ends after this line without a line break; present only when true.",
    )


class DiffHunk(OutputSchema):
    header: str = Field(examples=["@@ -8,3 +8,4 @@ def main():"])
    lines: list[DiffLine]


class DiffFile(OutputSchema):
    path: str
    old_path: str | None = Field(description="The path before a rename; null otherwise.")
    status: Literal["added", "modified", "deleted", "renamed"]
    additions: int
    deletions: int
    binary: bool = Field(description="A binary file: its changes have no lines, `hunks` is empty.")
    truncated: bool = Field(
        description=f"Its lines were cut short ({MAX_DIFF_LINES_PER_FILE:,} a file, {MAX_DIFF_LINES_TOTAL:,} a diff); "
        "additions and deletions still count them all."
    )
    hunks: list[DiffHunk]


class DiffStats(OutputSchema):
    files: int
    additions: int
    deletions: int


class DiffRead(OutputSchema):
    base: str | None
    head: str | None
    branch: str | None
    files: list[DiffFile]
    stats: DiffStats

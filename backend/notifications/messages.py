"""What a board event means to someone away from the board: which kind of notification it is,
for which project, and its short title and body with a link to the task.

- `approval.requested` → approval_requested ("KAN-12 needs approval: Bash `rm -rf build`");
- `run.finished` succeeded → run_succeeded ("KAN-12 is ready for review: <title>"), except a
  workflow step the workflow accepts by itself (`review: auto`) and a check step's command;
- `run.finished` failed → run_failed ("KAN-12's run failed: <first line of the error>"),
  except an attempt an `until` check sends back (the task has a newer run);
- `task.moved` of a workflow's own card to Done, as the workflow completes → workflow_done.

Every other event means nothing here (None). Texts are clipped: chat services cut long ones
in their own ways.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..events.types import BoardEventType
from ..models import (
    AgentRun,
    BoardEvent,
    NotificationKind,
    Project,
    RunKind,
    RunStatus,
    Task,
    TaskStatus,
    Workflow,
    WorkflowStatus,
)
from ..workflows import service as workflow_service
from ..workflows.templates import ReviewMode

TITLE_CHARS = 200
BODY_CHARS = 1_500
TOOL_INPUT_CHARS = 80
# The input field that says best what a tool is about to do, by tool.
TOOL_SUBJECT = ("command", "file_path", "path", "url", "pattern", "query", "notebook_path", "description")


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NotificationKind
    project_id: int
    title: str
    body: str


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def task_link(board_url: str, task: Task) -> str:
    """The board with the task open (the board page reads `project` and `task` from its URL)."""
    return f"{board_url.rstrip('/')}/?project={task.project_id}&task={task.id}"


def tool_summary(tool_name: str, tool_input: dict[str, Any]) -> str:
    """`Bash `rm -rf build``: the tool and the input that says what it is about to do."""
    subject = next((tool_input[key] for key in TOOL_SUBJECT if isinstance(tool_input.get(key), str)), None)
    if subject is None and tool_input:
        subject = json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
    subject = clip(" ".join(str(subject or "").split()), TOOL_INPUT_CHARS).replace("`", "'")
    return f"{tool_name} `{subject}`" if subject else tool_name


async def notice_for(session: AsyncSession, event: BoardEvent, board_url: str) -> Notice | None:
    """The notification a board event makes, or None."""
    payload = event.payload
    if event.type == BoardEventType.approval_requested.value:
        return await _approval(session, payload, board_url)
    if event.type == BoardEventType.run_finished.value:
        return await _run_finished(session, payload, board_url)
    if (
        event.type == BoardEventType.task_moved.value
        and payload.get("status") == TaskStatus.done.value
        and payload.get("workflow_id") is not None
        and payload.get("workflow_step") is None
    ):
        return await _workflow_done(session, event, board_url)
    return None


async def _run_and_task(session: AsyncSession, run_id: object) -> tuple[AgentRun | None, Task | None]:
    if not isinstance(run_id, int):
        return None, None
    run = await session.get(AgentRun, run_id)
    return run, (await session.get(Task, run.task_id) if run is not None else None)


async def _approval(session: AsyncSession, payload: dict[str, Any], board_url: str) -> Notice | None:
    run, task = await _run_and_task(session, payload.get("run_id"))
    if run is None or task is None:
        return None
    tool = tool_summary(str(payload.get("tool_name", "a tool")), payload.get("input") or {})
    title = f"{task.short_id} needs approval: {tool}"
    body = "\n".join(
        [
            f"{task.short_id} {task.title}",
            "The agent waits for your answer (allow or deny).",
            task_link(board_url, task),
        ]
    )
    return Notice(
        NotificationKind.approval_requested, task.project_id, clip(title, TITLE_CHARS), clip(body, BODY_CHARS)
    )


async def _run_finished(session: AsyncSession, payload: dict[str, Any], board_url: str) -> Notice | None:
    status = payload.get("status")
    if status not in (RunStatus.succeeded.value, RunStatus.failed.value):
        return None
    run, task = await _run_and_task(session, payload.get("id"))
    if run is None or task is None:
        return None
    link = task_link(board_url, task)
    if status == RunStatus.succeeded.value:
        if run.kind == RunKind.check.value:
            return None  # a check step's command: the workflow goes on by itself
        context = await workflow_service.context_of(session, task)
        if context is not None and context.review is ReviewMode.auto:
            return None  # accepted by the workflow, nobody needs to review it
        title = f"{task.short_id} is ready for review: {task.title}"
        summary = first_line(task.result)
        body = "\n".join(part for part in [summary and clip(summary, 500), link] if part)
        return Notice(NotificationKind.run_succeeded, task.project_id, clip(title, TITLE_CHARS), clip(body, BODY_CHARS))
    newer = await session.scalar(select(AgentRun.id).where(AgentRun.task_id == task.id, AgentRun.id > run.id).limit(1))
    if run.check_passed is False and newer is not None:
        return None  # an `until` check sent it back: the next attempt is already queued
    reason = first_line(run.error) or "no reason given"
    title = f"{task.short_id}'s run failed: {reason}"
    body = "\n".join([f"{task.short_id} {task.title}", clip(run.error or reason, 800), link])
    return Notice(NotificationKind.run_failed, task.project_id, clip(title, TITLE_CHARS), clip(body, BODY_CHARS))


async def _workflow_done(session: AsyncSession, event: BoardEvent, board_url: str) -> Notice | None:
    """The card's move that came with its workflow's completion: the last move of the card
    recorded by the time the workflow finished (a person moving it later is not one)."""
    workflow_id, task_id = event.payload["workflow_id"], event.payload.get("id")
    if not isinstance(workflow_id, int) or not isinstance(task_id, int):
        return None
    workflow = await session.get(Workflow, workflow_id)
    task = await session.get(Task, task_id)
    if (
        workflow is None
        or task is None
        or workflow.status != WorkflowStatus.done.value
        or workflow.finished_at is None
        or event.created_at > workflow.finished_at
    ):
        return None
    later = await session.scalar(
        select(BoardEvent.id)
        .where(
            BoardEvent.project_id == event.project_id,
            BoardEvent.id > event.id,
            BoardEvent.type == BoardEventType.task_moved.value,
            BoardEvent.created_at <= workflow.finished_at,
            BoardEvent.payload["id"].as_integer() == task.id,
        )
        .limit(1)
    )
    if later is not None:
        return None
    project = await session.get(Project, task.project_id)
    steps = await session.scalar(
        select(func.count()).where(Task.workflow_id == workflow.id, Task.workflow_step.is_not(None))
    )
    title = f"{task.short_id} workflow done: {workflow.title}"
    summary = first_line(task.result)
    body = "\n".join(
        part
        for part in [
            f"{steps or 0} steps done in {project.name if project else 'the project'}.",
            summary and clip(summary, 500),
            task_link(board_url, task),
        ]
        if part
    )
    return Notice(NotificationKind.workflow_done, task.project_id, clip(title, TITLE_CHARS), clip(body, BODY_CHARS))

"""Every board event type. The docstrings here are the reference in docs/events.md."""

from __future__ import annotations

import enum


class BoardEventType(enum.StrEnum):
    project_created = "project.created"
    project_updated = "project.updated"
    project_deleted = "project.deleted"
    task_created = "task.created"
    task_updated = "task.updated"
    task_moved = "task.moved"
    task_deleted = "task.deleted"


EVENT_DESCRIPTIONS: dict[BoardEventType, str] = {
    BoardEventType.project_created: "A project was created. Payload: the project.",
    BoardEventType.project_updated: "A project's fields changed. Payload: the project.",
    BoardEventType.project_deleted: "A project and its tasks were deleted. Payload: `{id}`.",
    BoardEventType.task_created: "A task was created. Payload: the task.",
    BoardEventType.task_updated: "A task's fields changed (not its column or order). Payload: the task.",
    BoardEventType.task_moved: "A task changed column and/or position. Payload: the task.",
    BoardEventType.task_deleted: "A task was deleted. Payload: `{id, short_id, project_id}`.",
}

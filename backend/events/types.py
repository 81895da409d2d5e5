"""Every board event type. The descriptions here are the reference in docs/events.md."""

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
    run_queued = "run.queued"
    run_started = "run.started"
    run_updated = "run.updated"
    run_finished = "run.finished"
    approval_requested = "approval.requested"
    approval_resolved = "approval.resolved"
    plugin_installed = "plugin.installed"
    plugin_updated = "plugin.updated"
    plugin_removed = "plugin.removed"
    knowledge_collection_created = "knowledge.collection_created"
    knowledge_collection_updated = "knowledge.collection_updated"
    knowledge_collection_deleted = "knowledge.collection_deleted"
    knowledge_document_updated = "knowledge.document_updated"
    knowledge_document_deleted = "knowledge.document_deleted"


EVENT_DESCRIPTIONS: dict[BoardEventType, str] = {
    BoardEventType.project_created: "A project was created. Payload: the project.",
    BoardEventType.project_updated: "A project's fields changed. Payload: the project.",
    BoardEventType.project_deleted: "A project and its tasks were deleted. Payload: `{id}`.",
    BoardEventType.task_created: "A task was created. Payload: the task.",
    BoardEventType.task_updated: (
        "A task's fields changed (not its column or order), or what blocks it did (a task it waits for "
        "changed column or was deleted: same `version`). Payload: the task."
    ),
    BoardEventType.task_moved: "A task changed column and/or position. Payload: the task.",
    BoardEventType.task_deleted: "A task was deleted. Payload: `{id, short_id, project_id}`.",
    BoardEventType.run_queued: "An agent run was queued for a task. Payload: the run summary.",
    BoardEventType.run_started: "An agent run started (or resumed after a restart). Payload: the run summary.",
    BoardEventType.run_updated: "A running agent's state changed (waiting for an approval, or running again). Payload: the run summary.",
    BoardEventType.run_finished: "An agent run ended: succeeded, failed, cancelled or interrupted. Payload: the run summary.",
    BoardEventType.approval_requested: "An agent asks to use a tool and waits for the user's answer. Payload: the approval.",
    BoardEventType.approval_resolved: "A tool request was allowed or denied. Payload: the approval.",
    BoardEventType.plugin_installed: "A plugin (MCP server) was installed or a built-in one registered. "
    "Payload: the plugin (secret values never included).",
    BoardEventType.plugin_updated: "A plugin's settings, switches, project enablement or last connection test "
    "changed. Payload: the plugin (secret values never included).",
    BoardEventType.plugin_removed: "A plugin was uninstalled. Payload: `{id, name}`.",
    BoardEventType.knowledge_collection_created: "A knowledge collection was created. Payload: the collection.",
    BoardEventType.knowledge_collection_updated: "A knowledge collection's name, description or project "
    "bindings changed. Payload: the collection.",
    BoardEventType.knowledge_collection_deleted: "A knowledge collection and its documents were deleted. "
    "Payload: `{id, name}`.",
    BoardEventType.knowledge_document_updated: "A knowledge document was added or its ingestion moved on "
    "(pending, fetching, chunking, embedding, ready, failed). Payload: the document summary (no content).",
    BoardEventType.knowledge_document_deleted: "A knowledge document was deleted. Payload: `{id, collection_id}`.",
}

"""The payload of every board event type, and the envelope `GET /api/events` sends.

`record` checks each payload against its type's model, so an event never carries a shape the
OpenAPI document does not describe. The envelopes form the `BoardEvent` schema: a union
discriminated by `type`, which the stream route documents as its `text/event-stream` body.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, RootModel, ValidationError, create_model

from ..kit.schemas import OutputSchema
from ..knowledge.schemas import CollectionDeletedPayload, CollectionRead, DocumentDeletedPayload, DocumentSummary
from ..plugins.schemas import PluginRead
from ..projects.schemas import ProjectRead
from ..runs.schemas import ApprovalRead, RunSummary
from ..tasks.schemas import TaskRead
from .types import EVENT_DESCRIPTIONS, BoardEventType


class ProjectDeletedPayload(OutputSchema):
    id: int


class TaskDeletedPayload(OutputSchema):
    id: int
    short_id: str
    project_id: int


class PluginRemovedPayload(OutputSchema):
    id: int
    name: str


EVENT_PAYLOADS: dict[BoardEventType, type[BaseModel]] = {
    BoardEventType.project_created: ProjectRead,
    BoardEventType.project_updated: ProjectRead,
    BoardEventType.project_deleted: ProjectDeletedPayload,
    BoardEventType.task_created: TaskRead,
    BoardEventType.task_updated: TaskRead,
    BoardEventType.task_moved: TaskRead,
    BoardEventType.task_deleted: TaskDeletedPayload,
    BoardEventType.run_queued: RunSummary,
    BoardEventType.run_started: RunSummary,
    BoardEventType.run_updated: RunSummary,
    BoardEventType.run_finished: RunSummary,
    BoardEventType.approval_requested: ApprovalRead,
    BoardEventType.approval_resolved: ApprovalRead,
    BoardEventType.plugin_installed: PluginRead,
    BoardEventType.plugin_updated: PluginRead,
    BoardEventType.plugin_removed: PluginRemovedPayload,
    BoardEventType.knowledge_collection_created: CollectionRead,
    BoardEventType.knowledge_collection_updated: CollectionRead,
    BoardEventType.knowledge_collection_deleted: CollectionDeletedPayload,
    BoardEventType.knowledge_document_updated: DocumentSummary,
    BoardEventType.knowledge_document_deleted: DocumentDeletedPayload,
}


class EventPayloadError(TypeError):
    """A payload that does not match its event type's model: a bug in the code recording it."""


def check_payload(type: BoardEventType, payload: Mapping[str, Any]) -> None:
    """Raise `EventPayloadError` unless `payload` (JSON-ready) is exactly what `type`'s model describes."""
    model = EVENT_PAYLOADS[type]
    unknown = payload.keys() - model.model_fields.keys()
    if unknown:
        raise EventPayloadError(f"{type.value}: fields {sorted(unknown)} are not in {model.__name__}")
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        raise EventPayloadError(f"{type.value}: the payload is not a {model.__name__}: {exc}") from None


def _envelope(type: BoardEventType) -> type[BaseModel]:
    """The stream's message for one event type: `{id, type, project_id, created_at, payload}`."""
    name = "".join(part.capitalize() for part in type.value.split(".")) + "Event"
    return create_model(
        name,
        __doc__=EVENT_DESCRIPTIONS[type],
        __module__=__name__,
        id=(int, Field(description="The event's id in the board event log; ids only grow.")),
        type=(Literal[type.value], ...),  # type: ignore[arg-type]  # a Literal of a value known at run time
        project_id=(int | None, Field(description="The project it belongs to; null for plugin events.")),
        created_at=(datetime, ...),
        payload=(EVENT_PAYLOADS[type], ...),
    )


ENVELOPES = tuple(_envelope(type) for type in BoardEventType)


# The union of models made at run time: a type checker cannot see its members.
class BoardEvent(RootModel[Annotated[Union[ENVELOPES], Field(discriminator="type")]]):  # type: ignore[valid-type]  # noqa: UP007
    """One message of `GET /api/events` (its `data:`), told apart by `type`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from ..kit.schemas import Id, InputSchema, OutputSchema, TextLimits
from ..models import EVENT_KINDS

EventKind = Literal["approval_requested", "run_succeeded", "run_failed", "workflow_done"]
DeliveryKind = Literal["approval_requested", "run_succeeded", "run_failed", "workflow_done", "test"]
DeliveryStatusName = Literal["pending", "sending", "delivered", "failed"]
ALL_EVENTS: list[EventKind] = list(get_args(EventKind))
assert set(ALL_EVENTS) == {kind.value for kind in EVENT_KINDS}, "EventKind and the model's kinds differ"
ChannelName = Annotated[str, TextLimits(1, 80, strip=True)]
AppriseUrl = Annotated[
    str,
    TextLimits(1, 2_000, strip=True),
    Field(
        description="An apprise URL: the service and its credentials, such as `ntfy://topic`, "
        "`discord://webhook_id/token`, `slack://tokenA/tokenB/tokenC/#channel`, `mailto://user:password@host`, "
        "`json://host:port/path` (a JSON POST). Write-only: answers show `url_hint`.",
        examples=["ntfy://my-board-topic"],
    ),
]
Events = Annotated[
    list[EventKind],
    Field(
        min_length=1,
        max_length=len(ALL_EVENTS),
        description="What the channel is told about: approval_requested (an agent waits for a tool approval), "
        "run_succeeded (a task is ready for review), run_failed, workflow_done.",
    ),
]


def _unique(events: list[EventKind] | None) -> list[EventKind] | None:
    """The kinds once each, in their usual order."""
    return None if events is None else [kind for kind in ALL_EVENTS if kind in events]


class ChannelCreate(InputSchema):
    name: ChannelName = Field(examples=["Phone"])
    url: AppriseUrl
    events: Events = Field(default_factory=lambda: list(ALL_EVENTS))
    project_id: Id | None = Field(default=None, description="Only this project's events; null: every project's.")
    enabled: bool = True

    _events = field_validator("events")(_unique)


class ChannelUpdate(InputSchema):
    """Change a channel; fields left out keep their value. `project_id: null`: every project."""

    name: ChannelName | None = None
    url: AppriseUrl | None = None
    events: Events | None = None
    project_id: Id | None = None
    enabled: bool | None = None

    _events = field_validator("events")(_unique)

    @model_validator(mode="after")
    def _no_nulls(self) -> ChannelUpdate:
        for name in ("name", "url", "events", "enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ChannelRead(OutputSchema):
    id: int
    name: str
    url_hint: str = Field(
        description="The URL's scheme and, when the service is reached at a host you named, that host; the "
        "rest (tokens, topics, paths) masked as …",
        examples=["json://127.0.0.1:8765/…", "discord://…/…"],
    )
    events: list[EventKind]
    project_id: int | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeliveryRead(OutputSchema):
    id: int
    channel_id: int
    channel_name: str
    event_id: int | None = Field(description="The board event it was made for; null for a test.")
    kind: DeliveryKind
    title: str
    body: str
    status: DeliveryStatusName = Field(
        description="pending (waiting for its next attempt), sending, delivered, failed (after its last attempt)."
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried (again).")
    last_error: str | None = Field(description="Why the last attempt failed, the URL's secret parts hidden.")
    created_at: datetime
    delivered_at: datetime | None

"""Outgoing notifications: channels (an apprise URL each), the deliveries made for board
events, and the cursor that says which board events have been turned into deliveries."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin, sql_in, utcnow


class NotificationKind(enum.StrEnum):
    """What a channel can be told about (`test` is the test button's, never subscribed to)."""

    approval_requested = "approval_requested"
    run_succeeded = "run_succeeded"
    run_failed = "run_failed"
    workflow_done = "workflow_done"
    test = "test"


EVENT_KINDS = tuple(kind for kind in NotificationKind if kind is not NotificationKind.test)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    failed = "failed"


class NotificationChannel(TimestampMixin, Base):
    """Where notifications go: an apprise URL (Slack, Discord, ntfy, e-mail, a JSON webhook…).

    The URL carries the service's tokens, so it is stored encrypted (the plugins' key in the
    data dir) and never shown again: `url_hint` is what the API shows (scheme and host, the
    secret parts masked)."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    url_encrypted: Mapped[str] = mapped_column(Text)
    url_hint: Mapped[str] = mapped_column(String(300))
    # The kinds it is told about (NotificationKind values but `test`).
    events: Mapped[list[str]] = mapped_column(JSONType)
    # Only this project's events; null: every project's.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())


class NotificationDelivery(Base):
    """One notification for one channel: made from a board event (`event_id`, at most one per
    channel and event) or by the channel's test (`event_id` null), then sent with retries."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(NotificationKind)})", name="kind"),
        CheckConstraint(f"status IN ({sql_in(DeliveryStatus)})", name="status"),
        UniqueConstraint("channel_id", "event_id"),
        Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # Why the last attempt failed, with the URL's secret parts hidden.
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()


class NotificationCursor(Base):
    """One row: the last board event the notification worker has turned into deliveries."""

    __tablename__ = "notification_cursor"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


__all__ = [
    "EVENT_KINDS",
    "DeliveryStatus",
    "NotificationChannel",
    "NotificationCursor",
    "NotificationDelivery",
    "NotificationKind",
]

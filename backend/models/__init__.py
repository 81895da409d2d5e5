"""Every table of the application. Alembic imports `Base.metadata` from here."""

from .agent_run import ACTIVE_RUN_STATUSES, AgentRun, Approval, ApprovalStatus, RunEvent, RunKind, RunReason, RunStatus
from .base import Base
from .event import BoardEvent
from .knowledge import (
    CollectionScope,
    DocumentKind,
    DocumentStatus,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
    ProjectKnowledgeBinding,
)
from .notification import (
    EVENT_KINDS,
    DeliveryStatus,
    NotificationChannel,
    NotificationCursor,
    NotificationDelivery,
    NotificationKind,
)
from .plugin import Plugin, PluginProject, PluginSource, PluginTransport
from .project import Project
from .task import Task, TaskDependency, TaskPriority, TaskStatus
from .worker import Worker
from .workflow import StepKind, Workflow, WorkflowStatus

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "AgentRun",
    "Approval",
    "ApprovalStatus",
    "Base",
    "BoardEvent",
    "CollectionScope",
    "DocumentKind",
    "DeliveryStatus",
    "DocumentStatus",
    "EVENT_KINDS",
    "KnowledgeChunk",
    "KnowledgeCollection",
    "KnowledgeDocument",
    "NotificationChannel",
    "NotificationCursor",
    "NotificationDelivery",
    "NotificationKind",
    "Plugin",
    "PluginProject",
    "PluginSource",
    "PluginTransport",
    "Project",
    "ProjectKnowledgeBinding",
    "RunEvent",
    "RunKind",
    "RunReason",
    "RunStatus",
    "Task",
    "TaskDependency",
    "TaskPriority",
    "StepKind",
    "TaskStatus",
    "Worker",
    "Workflow",
    "WorkflowStatus",
]

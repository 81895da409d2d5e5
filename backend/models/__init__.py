"""Every table of the application. Alembic imports `Base.metadata` from here."""

from .base import Base
from .event import BoardEvent
from .project import Project
from .task import Task, TaskPriority, TaskStatus

__all__ = ["Base", "BoardEvent", "Project", "Task", "TaskPriority", "TaskStatus"]

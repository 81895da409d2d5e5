"""Domain errors. Services raise these; one handler turns them into JSON responses.

They carry their HTTP status so services stay free of FastAPI, and the same errors reach
the MCP servers (through the HTTP API) with the same messages.
"""

from __future__ import annotations

from typing import Any


class KanbanError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"detail": self.message, **self.extra}


class NotFound(KanbanError):
    status_code = 404


class Conflict(KanbanError):
    status_code = 409


class InvalidInput(KanbanError):
    """Input that is well-formed but not acceptable (a missing folder, a foreign neighbour)."""

    status_code = 422

"""A small Server-Sent Events reader for tests (parses the wire format itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx


@dataclass
class SSEEvent:
    id: str | None = None
    event: str = "message"
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict:
        return json.loads(self.data)


class SSEReader:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> SSEEvent:
        """The next event with data (heartbeat comments are collected on the side)."""
        current = SSEEvent()
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if data:
                    current.data = "\n".join(data)
                    return current
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            elif name == "data":
                data.append(value)
        raise EOFError("stream ended")

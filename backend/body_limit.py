"""A limit on request bodies, enforced before they are read whole (pure ASGI).

A body announced larger than the limit (Content-Length) is refused with 413 before a byte of
it is read; a body without a length (chunked transfer) is counted as it arrives, and the
request is refused as soon as the count passes the limit. The refusal closes the connection
(`Connection: close`), so the server stops reading what the client still sends. Responses,
SSE streams included, pass untouched: only `receive` is watched, and only for bodies of
unknown length (the server itself never hands over more than a Content-Length announces).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


def _message(limit: int) -> bytes:
    return json.dumps(
        {"detail": f"The request body is larger than this server accepts ({limit:,} bytes, KANBAN_MAX_BODY_BYTES)."}
    ).encode()


async def _send_413(send: Send, limit: int) -> None:
    body = _message(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """`max_bytes` for every request; `larger` gives paths (full-match regular expressions) a
    limit of their own (file uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), limit) for pattern, limit in larger]

    def _limit(self, path: str) -> int:
        for pattern, limit in self.larger:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        length = _content_length(scope)
        if length is not None:
            if length > limit:
                await _send_413(send, limit)
                return
            await self.app(scope, receive, send)
            return
        await _CountedRequest(self.app, limit, receive, send).run(scope)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it gets here
    return None


class _CountedRequest:
    """One request whose body has no announced length: count it, refuse it past the limit."""

    def __init__(self, app: ASGIApp, limit: int, receive: Receive, send: Send) -> None:
        self.app, self.limit, self._receive, self._send = app, limit, receive, send
        self.received = 0
        self.started = False  # a response (the app's or ours) has started
        self.refused = False

    async def run(self, scope: Scope) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise
            # The app failed on the body it was denied (a disconnect); the 413 is the answer.
            log.debug("request refused for its body size; the app's error is not the answer", exc_info=True)

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self.started:
                    self.started = True
                    await _send_413(self._send, self.limit)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 was sent; what the app answers to the cut body is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

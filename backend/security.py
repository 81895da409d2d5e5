"""Request guards for a server that usually runs on a developer's own machine.

- Host: only loopback names and configured hosts (stops DNS rebinding: a web page on
  evil.example resolving to 127.0.0.1 still sends `Host: evil.example`).
- Origin: a browser request from a page of another site is refused (CSRF on localhost).
- Token: with an API token configured, every /api and /mcp request carries it.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Settings

PROTECTED_PREFIXES = ("/api", "/mcp")


async def _reject(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """Pure ASGI middleware (works for SSE and streamed responses)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = {h.lower() for h in settings.host_names}
        self.any_host = "*" in self.allowed
        token = settings.api_token.get_secret_value() if settings.api_token else None
        self.token = token.encode() if token else None

    def _host_ok(self, host: str) -> bool:
        return self.any_host or _host_name(host) in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self._host_ok(host):
            await _reject(
                send,
                400,
                f"Host {host[:100]!r} is not allowed. Add it to KANBAN_ALLOWED_HOSTS if you serve the board under this name.",
            )
            return
        origin = headers.get("origin")
        if origin and origin != "null":
            origin_host = urlsplit(origin).netloc
            if not self._host_ok(origin_host):
                await _reject(send, 403, f"Requests from pages on {origin[:100]!r} are not allowed.")
                return
        path: str = scope["path"]
        if self.token and path.startswith(PROTECTED_PREFIXES) and not self._token_ok(scope, headers):
            await _reject(
                send,
                401,
                "This server needs an API token: send `Authorization: Bearer <token>` "
                "(the token is the server's KANBAN_API_TOKEN).",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)

    def _token_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        authorization = headers.get("authorization", "")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and given:
            return secrets.compare_digest(given.strip().encode(), self.token)
        # EventSource cannot set headers: the streams may carry ?token=.
        if scope["method"] == "GET" and _is_stream(scope["path"]):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            for given in query.get("token", []):
                return secrets.compare_digest(given.encode(), self.token)
        return False


def _is_stream(path: str) -> bool:
    return path == "/api/events" or (path.startswith("/api/") and path.endswith("/stream"))

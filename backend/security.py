"""Request guards for a server that usually runs on a developer's own machine.

- Host: only loopback names and configured hosts (stops DNS rebinding: a web page on
  evil.example resolving to 127.0.0.1 still sends `Host: evil.example`). A request with more
  than one Host (or Origin) header is refused: which one counts would depend on who reads it.
- Origin (CSRF): a browser request may come only from the server's own origin (scheme, host and
  port, as the browser addressed it) or a configured one. A state-changing request (anything but
  GET, HEAD, OPTIONS) from a page elsewhere is refused even when it needs no CORS preflight
  (`Content-Type: text/plain`, a form, `Origin: null` from a sandboxed frame or a file:// page).
  Requests without Origin and without Sec-Fetch-Site are not from a browser page (curl,
  scripts, the agents' tools) and pass. Reads from other origins are kept from the page by CORS:
  the server sends no CORS headers.
- Token: with an API token configured, every /api and /mcp request carries it, and so does
  /metrics (Prometheus sends it as a bearer token). Excepted: the API's documentation page and
  its OpenAPI document, which hold nothing of the board, and the health checks (`/api/health`,
  `/api/health/ready`: a load balancer or an orchestrator probes them, and they tell only the
  version and whether the database is usable). Host and Origin are checked for these too.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Settings

PROTECTED_PREFIXES = ("/api", "/mcp")
PROTECTED_PATHS = frozenset({"/metrics"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests a page of this origin made, or the user made (a typed URL).
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
PUBLIC_PATHS = frozenset({"/api/docs", "/api/openapi.json", "/api/health", "/api/health/ready"})
PUBLIC_PREFIXES = ("/api/docs/",)
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Origin = tuple[str, str, int]


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


def parse_origin(value: str) -> Origin | None:
    """(scheme, host, port) of an origin such as `http://localhost:8000`; None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


class RequestGuard:
    """Pure ASGI middleware (works for SSE and streamed responses)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = {h.lower() for h in settings.host_names}
        self.any_host = "*" in self.allowed
        self.allowed_origins = _configured_origins(settings.allowed_origins)
        token = settings.api_token.get_secret_value() if settings.api_token else None
        self.token = token.encode() if token else None

    def _host_ok(self, host: str) -> bool:
        return self.any_host or _host_name(host) in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            if name in headers and name in ("host", "origin"):
                await _reject(send, 400, f"More than one {name.title()} header: send one.")
                return
            headers[name] = value.decode("latin-1")
        host = headers.get("host", "")
        if not self._host_ok(host):
            await _reject(
                send,
                400,
                f"Host {host[:100]!r} is not allowed. Add it to KANBAN_ALLOWED_HOSTS if you serve the board under this name.",
            )
            return
        refusal = self._origin_refusal(scope, headers)
        if refusal:
            await _reject(send, 403, refusal)
            return
        path: str = scope["path"]
        if (
            self.token
            and (path.startswith(PROTECTED_PREFIXES) or path in PROTECTED_PATHS)
            and not _is_public(path)
            and not self._token_ok(scope, headers)
        ):
            await _reject(
                send,
                401,
                "This server needs an API token: send `Authorization: Bearer <token>` "
                "(the token is the server's KANBAN_API_TOKEN).",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)

    def _origin_refusal(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why a browser request must not be served (None: it may)."""
        origin = headers.get("origin")
        fetch_site = headers.get("sec-fetch-site", "").strip().lower()
        state_changing = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if origin is not None:
            if not self._origin_ok(origin, scope, headers.get("host", "")):
                what = (
                    "a page without an origin (a sandboxed frame or a local file)"
                    if origin.strip() == "null"
                    else f"pages on {origin[:100]!r}"
                )
                return (
                    f"Requests from {what} are not allowed: only pages this server serves may call it. "
                    "Add the origin to KANBAN_ALLOWED_ORIGINS if a proxy of yours serves the board there."
                )
            if fetch_site == "cross-site":
                return "Requests from pages on another site are not allowed."
            return None
        if state_changing and fetch_site and fetch_site not in OWN_FETCH_SITES:
            return f"Requests from pages elsewhere ({fetch_site}) may not change anything here."
        return None

    def _origin_ok(self, origin: str, scope: Scope, host: str) -> bool:
        parsed = parse_origin(origin)
        if parsed is None:  # "null" and anything that is not an origin
            return False
        return parsed == _own_origin(scope, host) or parsed in self.allowed_origins

    def _token_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        authorization = headers.get("authorization", "")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and given:
            return secrets.compare_digest(given.strip().encode(), self.token)
        # EventSource cannot set headers: the streams may carry ?token=.
        if scope.get("method") == "GET" and _is_stream(scope["path"]):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            for given in query.get("token", []):
                return secrets.compare_digest(given.encode(), self.token)
        return False


def _own_origin(scope: Scope, host: str) -> Origin | None:
    """The origin the browser addressed: this server's scheme and the (allowed) Host header.

    Taken from the request rather than from the configured port, so it is right however the
    server was started (`uvicorn --port`, a proxy that keeps the Host header such as the Vite
    dev server's). A page on another port or host sends its own origin, which differs.
    """
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return parse_origin(f"{scheme}://{host.strip()}") if host.strip() else None


def _configured_origins(values: Iterable[str]) -> set[Origin]:
    out = set()
    for value in values:
        parsed = parse_origin(value)
        if parsed is None:
            raise ValueError(f"KANBAN_ALLOWED_ORIGINS: {value!r} is not an origin such as http://localhost:5173")
        out.add(parsed)
    return out


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_stream(path: str) -> bool:
    return path == "/api/events" or (path.startswith("/api/") and path.endswith("/stream"))


# --------------------------------------------------------------------------- access log

TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]*", re.IGNORECASE)


class RedactTokenFilter(logging.Filter):
    """Masks `token=` query values in uvicorn's access log (the streams take `?token=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = TOKEN_IN_QUERY.sub(r"\1***", record.msg)
        return True


def redact_access_log(logger_name: str = "uvicorn.access") -> None:
    """Install the filter on the access logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokenFilter) for f in logger.filters):
        logger.addFilter(RedactTokenFilter())

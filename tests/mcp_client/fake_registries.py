"""Local stand-ins for the Glama and official MCP registries, served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes/str → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the test ends)


@dataclass
class Recorded:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class FakeRegistry:
    """A threaded HTTP server. Routes answer from data; `script()` queues one-off replies first."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[str, Callable[[dict[str, str]], Reply]] = {}
        self.scripts: dict[str, deque[Reply]] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                with fake._lock:
                    fake.requests.append(Recorded(parts.path, params, {k.lower(): v for k, v in self.headers.items()}))
                    queued = fake.scripts.get(parts.path)
                    reply = queued.popleft() if queued else None
                if reply is None:
                    route = fake.routes.get(parts.path)
                    reply = route(params) if route else Reply(404, {"error": "not found"})
                if reply.hang:
                    fake.release.wait(30)
                    return
                body = reply.body
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body or b""
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client hung up (timeouts in tests); nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> FakeRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts.setdefault(path, deque()).extend(replies)

    def calls(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]


# --------------------------------------------------------------------------- sample data

GLAMA_PATH = "/v1/servers"
OFFICIAL_PATH = "/v0.1/servers"


def glama_server(i: int, **overrides: Any) -> dict[str, Any]:
    server = {
        "id": f"id{i:04d}",
        "name": f"Server {i}",
        "namespace": f"owner{i}",
        "slug": f"server-{i}",
        "description": f"Does thing number {i}",
        "url": f"https://glama.ai/mcp/servers/id{i:04d}",
        "attributes": ["hosting:local-only"],
        "repository": {"url": f"https://github.com/owner{i}/server-{i}"},
        "spdxLicense": {"name": "MIT License", "url": "https://spdx.org/licenses/MIT.html"},
        "tools": [{"name": f"tool_{i}", "description": f"Tool {i}", "inputSchema": {"type": "object"}}],
        "environmentVariablesJsonSchema": {
            "type": "object",
            "required": [f"TOKEN_{i}"],
            "properties": {f"TOKEN_{i}": {"type": "string", "description": "API token"}},
        },
    }
    server.update(overrides)
    return server


def glama_route(servers: list[dict[str, Any]]) -> Callable[[dict[str, str]], Reply]:
    """Relay-style paging like Glama's: `first`, `after` (base64 JSON cursor), `query` substring."""

    def encode(s: dict[str, Any]) -> str:
        return base64.b64encode(json.dumps({"createdAt": "2025-01-01T00:00:00Z", "id": s["id"]}).encode()).decode()

    def route(params: dict[str, str]) -> Reply:
        query = params.get("query", "").lower()
        matching = [s for s in servers if query in (s["name"] + " " + s.get("description", "")).lower()]
        start = 0
        if params.get("after"):
            last_id = json.loads(base64.b64decode(params["after"]))["id"]
            start = next(i for i, s in enumerate(matching) if s["id"] == last_id) + 1
        first = int(params.get("first", 10))
        page = matching[start : start + first]
        has_next = start + first < len(matching)
        return Reply(
            body={
                "pageInfo": {
                    "endCursor": encode(page[-1]) if page else None,
                    "hasNextPage": has_next,
                    "hasPreviousPage": start > 0,
                    "startCursor": encode(page[0]) if page else None,
                },
                "servers": page,
            }
        )

    return route


def official_entry(
    name: str,
    version: str = "1.0.0",
    *,
    is_latest: bool = True,
    status: str = "active",
    packages: list[dict[str, Any]] | None = None,
    remotes: list[dict[str, Any]] | None = None,
    **server_fields: Any,
) -> dict[str, Any]:
    server: dict[str, Any] = {
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": name,
        "description": f"The {name} server",
        "version": version,
        "repository": {"url": f"https://github.com/{name.split('/')[-1]}/repo", "source": "github"},
        **server_fields,
    }
    if packages is not None:
        server["packages"] = packages
    if remotes is not None:
        server["remotes"] = remotes
    return {
        "server": server,
        "_meta": {
            "io.modelcontextprotocol.registry/official": {
                "status": status,
                "publishedAt": "2025-09-01T00:00:00Z",
                "updatedAt": "2025-09-01T00:00:00Z",
                "isLatest": is_latest,
            }
        },
    }


def official_route(entries: list[dict[str, Any]]) -> Callable[[dict[str, str]], Reply]:
    """Paging like the official registry: `limit`, opaque `cursor` ("name:version"), `search` on the name."""

    def cursor_of(entry: dict[str, Any]) -> str:
        return f"{entry['server']['name']}:{entry['server']['version']}"

    def route(params: dict[str, str]) -> Reply:
        search = params.get("search", "").lower()
        matching = [e for e in entries if search in e["server"]["name"].lower()]
        start = 0
        if params.get("cursor"):
            start = [cursor_of(e) for e in matching].index(params["cursor"]) + 1
        limit = int(params.get("limit", 30))
        page = matching[start : start + limit]
        metadata: dict[str, Any] = {"count": len(page)}
        if start + limit < len(matching):
            metadata["nextCursor"] = cursor_of(page[-1])
        return Reply(body={"servers": page, "metadata": metadata})

    return route

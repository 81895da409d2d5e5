"""Host and Origin checks (CSRF), token auth (including the SSE stream), the access log, and the
bind refusal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from backend.security import RequestGuard
from tests.backend.factories import create_project, create_task
from tests.conftest import LiveServer, free_port, make_settings

TOKEN = "s3cret-token-value"


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory):
    settings, drop = await asyncio.to_thread(
        make_settings,
        "sqlite",
        tmp_path_factory.mktemp("guarded"),
        api_token=TOKEN,
        allowed_hosts="board.example.org",
        sse_heartbeat_seconds=1,
    )
    async with LiveServer(create_app(settings)) as server:
        yield server
    drop()


async def test_unknown_host_is_400_even_for_the_stream(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5) as http:
        for path in ("/api/health", "/api/events", "/", "/api/projects"):
            response = await http.get(path, headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 400, path
            assert "not allowed" in response.json()["detail"]
        ok = await http.get(
            "/api/health", headers={"Host": "board.example.org:8000", "Authorization": f"Bearer {TOKEN}"}
        )
        assert ok.status_code == 200
        ok = await http.get("/api/health", headers={"Host": "localhost:1234", "Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


async def test_foreign_origin_is_403(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        response = await http.post(
            "/api/projects", json={"name": "x", "workspace_path": "/tmp"}, headers={"Origin": "https://evil.example"}
        )
        assert response.status_code == 403
        response = await http.get("/api/health", headers={"Origin": guarded.url})
        assert response.status_code == 200


async def test_token_is_required_for_api(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5) as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": TOKEN},
            {"Authorization": "Basic abc"},
        ):
            response = await http.get("/api/projects", headers=headers)
            assert response.status_code == 401, headers
            assert "KANBAN_API_TOKEN" in response.json()["detail"]
            assert response.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in response.text
        assert (await http.get("/api/projects", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
        # ?token= is for the streams only.
        assert (await http.get("/api/projects", params={"token": TOKEN})).status_code == 401
        # The board page itself is not an API call.
        assert (await http.get("/")).status_code in (200, 503)


async def test_stream_accepts_token_in_query(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5) as http:
        assert (await http.get("/api/events", params={"token": "wrong"})).status_code == 401
        assert (await http.get("/api/events")).status_code == 401
        async with http.stream("GET", "/api/events", params={"token": TOKEN}) as response:
            assert response.status_code == 200
            first = await asyncio.wait_for(response.aiter_lines().__anext__(), 5)
            assert first.startswith(":")  # the heartbeat arrives; the stream is open


def test_serving_beyond_loopback_without_token_refuses(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to serve on 0.0.0.0 without an API token" in result.stderr
    assert "KANBAN_API_TOKEN" in result.stderr
    assert not (tmp_path / "kanban.db").exists()  # refused before touching anything


# --------------------------------------------------------------------------- CSRF

# What pages elsewhere send: a sandboxed frame or a file:// page (Origin: null), a page on
# another port of this machine, another host name of it, and browsers' fetch metadata alone.
FOREIGN = [
    {"Origin": "null", "Content-Type": "text/plain"},
    {"Origin": "http://127.0.0.1:5173", "Content-Type": "text/plain"},
    {"Origin": "http://localhost", "Content-Type": "text/plain"},
    {"Origin": "https://127.0.0.1", "Content-Type": "text/plain"},
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    {"Sec-Fetch-Site": "same-site", "Content-Type": "text/plain"},
]


async def test_state_changes_from_pages_elsewhere_are_403(client):
    # The client talks to http://127.0.0.1 (port 80): that is the server's own origin here.
    project = await create_project(client)
    task = await create_task(client, project["id"])
    kanban = next(p for p in (await client.get("/api/plugins")).json() if p["name"] == "kanban")
    requests = [
        ("POST", f"/api/tasks/{task['id']}/runs", ""),
        ("POST", f"/api/tasks/{task['id']}/runs", json.dumps({"prompt": "rm -rf"})),
        ("POST", f"/api/tasks/{task['id']}/approve", ""),
        ("POST", "/api/runs/1/cancel", ""),
        ("POST", "/api/runs/1/resume", ""),
        ("POST", "/api/approvals/1", json.dumps({"decision": "allow"})),
        ("POST", f"/api/plugins/{kanban['id']}/test", ""),
        ("DELETE", f"/api/projects/{project['id']}", ""),
    ]
    for method, path, body in requests:
        for headers in FOREIGN:
            response = await client.request(method, path, content=body, headers=headers)
            assert response.status_code == 403, (method, path, headers, response.text)
            assert "not allowed" in response.json()["detail"] or "may not change" in response.json()["detail"]
    assert (await client.get(f"/api/tasks/{task['id']}/runs")).json() == []
    assert (await client.get(f"/api/projects/{project['id']}")).status_code == 200

    # The board itself (same origin), a typed URL and scripts (no Origin, no fetch metadata) pass.
    for headers in (
        {"Origin": "http://127.0.0.1"},
        {"Origin": "http://127.0.0.1:80"},
        {"Sec-Fetch-Site": "same-origin"},
        {},
    ):
        response = await client.post("/api/tasks", json={"project_id": project["id"], "title": "ok"}, headers=headers)
        assert response.status_code == 201, (headers, response.text)
    # Links from elsewhere still open the board (a navigation is a GET without Origin).
    response = await client.get(f"/api/projects/{project['id']}", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    # Reads from pages elsewhere get no CORS headers (and, with an Origin, a 403).
    response = await client.get(f"/api/projects/{project['id']}", headers={"Origin": "http://127.0.0.1:5173"})
    assert response.status_code == 403 and "access-control-allow-origin" not in response.headers


async def test_a_text_plain_body_is_not_taken_for_json(client):
    workspace = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
    before = len((await client.get("/api/projects")).json())
    body = json.dumps({"name": "from text/plain", "workspace_path": workspace})
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        response = await client.post("/api/projects", content=body, headers=headers)
        assert response.status_code == 422, (headers, response.text)
    assert len((await client.get("/api/projects")).json()) == before


class Recorder:
    """The innermost ASGI app: answers 204 and remembers it was reached."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call_guard(
    guard: RequestGuard, headers: list[tuple[str, str]], method: str = "POST", path: str = "/api/tasks"
) -> tuple[int, dict]:
    """One request through the guard with exactly these raw headers (repeats included)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await guard(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], (json.loads(body) if body else {})


def guard_for(tmp_path: Path, **settings) -> tuple[RequestGuard, Recorder]:
    inner = Recorder()
    return RequestGuard(inner, Settings(data_dir=tmp_path, **settings)), inner


async def test_a_second_host_or_origin_header_is_400(tmp_path):
    guard, inner = guard_for(tmp_path)
    for headers in (
        [("Host", "evil.example"), ("Host", "127.0.0.1:8000")],
        [("Host", "127.0.0.1:8000"), ("Host", "evil.example")],
        [("Host", "127.0.0.1:8000"), ("Origin", "http://evil.example"), ("Origin", "http://127.0.0.1:8000")],
        [("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8000"), ("Origin", "null")],
    ):
        status, body = await call_guard(guard, headers)
        assert status == 400, headers
        assert "More than one" in body["detail"]
    assert inner.calls == 0
    assert (await call_guard(guard, [("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8000")]))[0] == 204


async def test_own_origin_is_scheme_host_and_port_as_addressed(tmp_path):
    guard, _ = guard_for(tmp_path, allowed_origins="http://dev.example:5173")
    cases = [
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8000")], 204),
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8001")], 403),
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://localhost:8000")], 403),
        ([("Host", "127.0.0.1:8000"), ("Origin", "https://127.0.0.1:8000")], 403),
        ([("Host", "[::1]:8000"), ("Origin", "http://[::1]:8000")], 204),
        ([("Host", "localhost"), ("Origin", "http://localhost:80")], 204),
        # The Vite dev server's proxy keeps the browser's Host (changeOrigin: false).
        ([("Host", "localhost:5173"), ("Origin", "http://localhost:5173")], 204),
        # A configured origin (a proxy of the user's that serves the board elsewhere).
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://dev.example:5173")], 204),
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://dev.example:5174")], 403),
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8000"), ("Sec-Fetch-Site", "cross-site")], 403),
        ([("Host", "127.0.0.1:8000"), ("Origin", "http://127.0.0.1:8000/path")], 403),
        ([("Host", "127.0.0.1:8000"), ("Sec-Fetch-Site", "same-site")], 403),
        ([("Host", "127.0.0.1:8000"), ("Sec-Fetch-Site", "none")], 204),
        ([("Host", "127.0.0.1:8000")], 204),
    ]
    for headers, expected in cases:
        status, body = await call_guard(guard, headers)
        assert status == expected, (headers, body)
    # Safe methods without Origin pass whatever the fetch metadata (links, images).
    assert (await call_guard(guard, [("Host", "127.0.0.1:8000"), ("Sec-Fetch-Site", "cross-site")], method="GET"))[
        0
    ] == 204


def test_allowed_hosts_and_origins_are_comma_separated_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KANBAN_ALLOWED_HOSTS", "board.lan, kanban.example")
    monkeypatch.setenv("KANBAN_ALLOWED_ORIGINS", "http://localhost:5173,https://board.lan")
    settings = Settings(data_dir=tmp_path)
    assert settings.allowed_hosts == ["board.lan", "kanban.example"]
    assert settings.allowed_origins == ["http://localhost:5173", "https://board.lan"]
    for bad in ("localhost:5173", "http://localhost:5173/board", "http://localhost:99999", "ftp://x"):
        with pytest.raises(ValueError, match="not an origin"):
            Settings(data_dir=tmp_path, allowed_origins=bad)


# --------------------------------------------------------------------------- access log


def test_the_access_log_does_not_show_the_token(tmp_path: Path):
    token = "log-me-not-" + os.urandom(8).hex()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env.update(KANBAN_API_TOKEN=token, KANBAN_LOG_LEVEL="info", KANBAN_RUN_AGENTS="false")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if (
                    httpx.get(f"{url}/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        with httpx.stream("GET", f"{url}/api/events", params={"token": token}, timeout=5) as response:
            assert response.status_code == 200
        assert httpx.get(f"{url}/", params={"project": "1", "token": token}, timeout=5).status_code in (200, 503)
        time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    text = log.read_text()
    assert "GET /api/events?token=*** HTTP/1.1" in text, text[-2000:]
    assert "GET /?project=1&token=*** HTTP/1.1" in text, text[-2000:]
    assert token not in text

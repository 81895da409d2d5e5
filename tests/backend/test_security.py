"""Host and Origin checks, token auth (including the SSE stream), and the bind refusal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.main import create_app
from tests.conftest import LiveServer, make_settings

TOKEN = "s3cret-token-value"


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory):
    settings, drop = await asyncio.to_thread(
        make_settings, "sqlite", tmp_path_factory.mktemp("guarded"), api_token=TOKEN, allowed_hosts="board.example.org",
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
        ok = await http.get("/api/health", headers={"Host": "board.example.org:8000", "Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        ok = await http.get("/api/health", headers={"Host": "localhost:1234", "Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


async def test_foreign_origin_is_403(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        response = await http.post("/api/projects", json={"name": "x", "workspace_path": "/tmp"}, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        response = await http.get("/api/health", headers={"Origin": guarded.url})
        assert response.status_code == 200


async def test_token_is_required_for_api(guarded):
    async with httpx.AsyncClient(base_url=guarded.url, timeout=5) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic abc"}):
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
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to serve on 0.0.0.0 without an API token" in result.stderr
    assert "KANBAN_API_TOKEN" in result.stderr
    assert not (tmp_path / "kanban.db").exists()  # refused before touching anything

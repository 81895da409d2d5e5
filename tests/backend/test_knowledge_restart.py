"""Kill -9 the server mid-ingestion: the restarted server takes up every unfinished document."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.backend.knowledge_helpers import ARTICLE, serving, wait_for_document
from tests.conftest import DATABASE_KINDS, free_port, make_settings


def _serve(env: dict, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)


async def _wait_status(http: httpx.AsyncClient, document_id: int, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await http.get(f"/api/knowledge/documents/{document_id}")).json()["status"] != status:
        assert time.monotonic() < deadline, f"document {document_id} never reached {status}"
        await asyncio.sleep(0.05)


@pytest.fixture(params=DATABASE_KINDS)
def database(request, tmp_path):
    """A migrated database of its own (make_settings runs outside the test's event loop)."""
    settings, drop = make_settings(request.param, tmp_path)
    yield settings
    drop()


async def test_kill_9_mid_fetch_then_restart_resumes_every_unfinished_document(database, tmp_path):
    settings = database
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env.update(
        KANBAN_DATA_DIR=str(settings.data_dir),
        KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS="true",
        KANBAN_KNOWLEDGE_FETCH_TIMEOUT_SECONDS="120",
        KANBAN_KNOWLEDGE_EMBEDDING_MODEL="off",
    )
    if settings.database_url:
        env.update(KANBAN_DATABASE_URL=settings.database_url, KANBAN_DATABASE_SCHEMA=settings.database_schema or "")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = _serve(env, port, log)
    try:
        with serving() as site:
            slow = site.hang("/slow")
            await asyncio.to_thread(_wait_healthy, url, server, log)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                collection = (await http.post("/api/knowledge/collections", json={"name": "Survivors"})).json()
                fetching = (
                    await http.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": slow})
                ).json()
                await _wait_status(http, fetching["id"], "fetching")
                # Queued behind the fetch (one document at a time): still pending at the kill.
                note = (
                    await http.post(
                        f"/api/knowledge/collections/{collection['id']}/notes",
                        json={"title": "Waiting", "content": "A note that waited behind the slow page."},
                    )
                ).json()
                assert (await http.get(f"/api/knowledge/documents/{note['id']}")).json()["status"] == "pending"

            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
            site.page("/slow", ARTICLE)  # the page answers now
            site.release.set()
            hits_before = site.hits.count("/slow")

            server = _serve(env, port, log)
            await asyncio.to_thread(_wait_healthy, url, server, log)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                page = await wait_for_document(http, fetching["id"])
                waited = await wait_for_document(http, note["id"])
                found = (await http.get("/api/knowledge/search", params={"q": "checkpoint"})).json()
        assert page["status"] == "ready", page
        assert page["title"] == "Tuning the write-ahead log" and "checkpoint" in page["content"]
        assert waited["status"] == "ready" and waited["chunk_count"] == 1
        assert site.hits.count("/slow") == hits_before + 1  # fetched again after the restart
        assert found["mode_used"] == "keyword" and found["semantic"]["state"] == "off"
        assert [hit["document_id"] for hit in found["hits"]] == [page["id"]]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(15)

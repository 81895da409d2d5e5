"""Agent runs use the knowledge tools: the real Claude CLI against the fake Messages API, the
built-in `knowledge` plugin in-process, the board on a real socket.

A run finds a document through `mcp__knowledge__search_knowledge`, its `add_note` lands in the
project's write collection (with the run's task and run), its system prompt names the
collections, and an approved task's result is found by a later run.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from backend.knowledge.schemas import BindingRead
from backend.runs.orchestrator import knowledge_note
from tests.backend.factories import create_project, create_task
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch):
    for name, value in fake_anthropic.env(max_retries=0, tool_search=False).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


async def wait_for_run(http: httpx.AsyncClient, run_id: int, timeout: float = 180) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = (await http.get(f"/api/runs/{run_id}")).json()
        if run["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return run
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} still {run['status']}"
        await asyncio.sleep(0.1)


async def wait_ready(http: httpx.AsyncClient, document_id: int, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        doc = (await http.get(f"/api/knowledge/documents/{document_id}")).json()
        if doc["status"] in ("ready", "failed"):
            assert doc["status"] == "ready", doc["error"]
            return doc
        assert asyncio.get_running_loop().time() < deadline, f"document {document_id} still {doc['status']}"
        await asyncio.sleep(0.1)


async def run_events(http: httpx.AsyncClient, run_id: int) -> list[dict]:
    page = (await http.get(f"/api/runs/{run_id}/events", params={"limit": 1000})).json()
    return page["items"]


async def run_task(http: httpx.AsyncClient, agent_env: FakeAnthropic, task: dict, turns: list[Turn]) -> dict:
    marker = f"[{task['short_id']}]"
    agent_env.add_script(marker, turns)
    run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    run = await wait_for_run(http, run["id"])
    assert run["status"] == "succeeded", run["error"]
    return run


async def test_a_run_searches_and_adds_notes_and_finds_an_approved_tasks_result(live_server, agent_env: FakeAnthropic):
    word, learnt, feature = (f"{name}{uuid.uuid4().hex[:8]}" for name in ("ember", "cobalt", "saffron"))
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        made = await http.post("/api/knowledge/collections", json={"name": f"team-{uuid.uuid4().hex[:6]}"})
        kb = made.json()
        bound = await http.put(f"/api/projects/{project['id']}/knowledge/{kb['id']}", json={"can_write": True})
        assert bound.status_code == 200, bound.text
        guide = await http.post(
            f"/api/knowledge/collections/{kb['id']}/notes",
            json={"title": "Deploy guide", "content": f"# Deploy\n\nDeploys go through the {word} pipeline."},
        )
        guide = await wait_ready(http, guide.json()["id"])

        # 1. A run searches the knowledge base and adds a note.
        task = await create_task(http, project["id"], title="Ship it")
        run = await run_task(
            http,
            agent_env,
            task,
            [
                Turn.mcp("knowledge", "search_knowledge", {"query": f"{word} pipeline"}),
                Turn.mcp(
                    "knowledge",
                    "add_note",
                    {
                        "title": "Staging quirk",
                        "text": f"Staging needs the {learnt} flag.",
                        "source_urls": "https://ci.example.org/42",
                    },
                ),
                Turn.text("Shipped; noted the staging quirk."),
            ],
        )
        events = await run_events(http, run["id"])
        tools = next(e for e in events if e["type"] == "init")["payload"]["tools"]
        assert {"mcp__knowledge__search_knowledge", "mcp__knowledge__add_note"} <= set(tools)
        assert "mcp__kanban__search_knowledge" not in tools  # once, from the knowledge plugin
        uses = [e["payload"]["name"] for e in events if e["type"] == "tool_use"]
        assert uses == ["mcp__knowledge__search_knowledge", "mcp__knowledge__add_note"]
        results = [e["payload"] for e in events if e["type"] == "tool_result"]
        assert not any(r["is_error"] for r in results), results  # allowed without an approval, and answered
        assert f"document {guide['id']}: Deploy guide" in results[0]["content"]
        assert f"«{word}»" in results[0]["content"]
        assert f"in collection {kb['name']}" in results[1]["content"]

        docs = (await http.get(f"/api/knowledge/collections/{kb['id']}/documents", params={"kind": "note"})).json()
        added = next(d for d in docs if d["title"] == "Staging quirk")
        assert (added["task_id"], added["run_id"], added["source_uri"]) == (
            task["id"],
            run["id"],
            "https://ci.example.org/42",
        )

        # The system prompt named the collection the run reads and writes.
        system = agent_env.main_requests(f"[{task['short_id']}]")[0].system_text()
        assert f'searches this project\'s collections "{kb["name"]}"' in system
        assert f'add_note saves what later tasks should know to "{kb["name"]}"' in system

        # 2. Approving a task keeps its result as a task_result document.
        feature_task = await create_task(http, project["id"], title=f"Add the {feature} exporter")
        await run_task(
            http,
            agent_env,
            feature_task,
            [
                Turn.tool_use("Write", {"file_path": "exporter.py", "content": "EXPORT = True\n"}),
                Turn.text(f"Added exporter.py: the {feature} exporter writes CSV."),
            ],
        )
        approved = await http.post(f"/api/tasks/{feature_task['id']}/approve")
        assert approved.status_code == 200, approved.text
        results_docs = (
            await http.get(f"/api/knowledge/collections/{kb['id']}/documents", params={"kind": "task_result"})
        ).json()
        saved = next((d for d in results_docs if d["task_id"] == feature_task["id"]), None)
        assert saved is not None, f"approving {feature_task['short_id']} saved no task_result: {results_docs}"
        await wait_ready(http, saved["id"])

        # 3. A later run finds it.
        later = await create_task(http, project["id"], title="Extend the exporter")
        run = await run_task(
            http,
            agent_env,
            later,
            [
                Turn.mcp("knowledge", "search_knowledge", {"query": f"{feature} exporter"}),
                Turn.text("Found the earlier work."),
            ],
        )
        found = [e["payload"]["content"] for e in await run_events(http, run["id"]) if e["type"] == "tool_result"]
        assert f"document {saved['id']}:" in found[0] and "task_result" in found[0], found


def test_the_prompt_note_names_what_a_run_reads_and_writes():
    assert knowledge_note([]) is None
    read_only = [BindingRead(project_id=1, collection_id=2, collection_name="Python", can_write=False)]
    note = knowledge_note(read_only)
    assert note is not None and '"Python"' in note and "add_note" not in note
    both = [*read_only, BindingRead(project_id=1, collection_id=3, collection_name="Ours", can_write=True)]
    note = knowledge_note(both)
    assert note is not None and 'collections "Python", "Ours"' in note and 'to "Ours"' in note
    assert len(note) < 300  # a line, not a manual

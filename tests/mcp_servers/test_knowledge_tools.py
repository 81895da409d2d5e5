"""The knowledge tools with a real MCP client against a real board: over stdio (the `knowledge`
plugin's server and the kanban server, each with a run's context) and over HTTP (/mcp, as
Claude Code uses it outside a run)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_servers.kanban_server import KanbanAPI
from mcp_servers.knowledge_server import build_server as build_knowledge_server
from mcp_servers.knowledge_tools import KNOWLEDGE_TOOLS
from tests.backend.factories import create_project, create_task

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stdio_client(module: str, api_url: str, **env: str) -> Client:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    return Client(
        StdioTransport(
            command=sys.executable,
            args=["-m", module],
            env={**clean, "KANBAN_API_URL": api_url, "FASTMCP_SHOW_SERVER_BANNER": "false", **env},
            cwd=REPO,
        )
    )


async def text_of(client: Client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error
    return result.content[0].text


async def error_of(client: Client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, f"{tool} should have failed: {result.content[0].text}"
    return result.content[0].text


async def collection(http: httpx.AsyncClient, prefix: str) -> dict:
    response = await http.post("/api/knowledge/collections", json={"name": f"{prefix}-{uuid.uuid4().hex[:6]}"})
    assert response.status_code == 201, response.text
    return response.json()


async def note(http: httpx.AsyncClient, collection_id: int, title: str, content: str) -> dict:
    response = await http.post(
        f"/api/knowledge/collections/{collection_id}/notes", json={"title": title, "content": content}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def wait_ready(http: httpx.AsyncClient, document_id: int, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        doc = (await http.get(f"/api/knowledge/documents/{document_id}")).json()
        if doc["status"] in ("ready", "failed"):
            assert doc["status"] == "ready", doc["error"]
            return doc
        assert asyncio.get_running_loop().time() < deadline, f"document {document_id} still {doc['status']}"
        await asyncio.sleep(0.1)


def document_id_in(answer: str) -> int:
    # "Saved as document 12 in collection …"
    return int(answer.split("document ", 1)[1].split()[0])


@pytest.mark.parametrize("module", ["mcp_servers.knowledge_server", "mcp_servers.kanban_server"])
async def test_the_tools_in_a_run_use_the_projects_collections(module, live_server):
    word = f"zephyr{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        task = await create_task(http, project["id"], title="Learn things")
        mine = await collection(http, "mine")
        other = await collection(http, "other")
        elsewhere = await wait_ready(
            http, (await note(http, other["id"], "Not bound", f"{word} lives elsewhere"))["id"]
        )

        env = {"KANBAN_PROJECT_ID": str(project["id"]), "KANBAN_TASK_ID": str(task["id"])}
        async with stdio_client(module, live_server.url, **env) as client:
            assert set(KNOWLEDGE_TOOLS) <= {t.name for t in await client.list_tools()}

            # Nothing bound yet: every tool says how to bind a collection.
            assert "None is bound to this project" in await text_of(client, "list_collections")
            message = await error_of(client, "search_knowledge", query=word)
            assert "No knowledge collection is bound to this project" in message and "Knowledge page" in message
            # add_note with nothing to write to: the project gets its own collection, named after it.
            first = await text_of(client, "add_note", title="t", text="x")
            assert f"in collection {project['name']}" in first, first
            bound = (await http.get(f"/api/projects/{project['id']}/knowledge")).json()
            assert [(b["collection_name"], b["can_write"]) for b in bound] == [(project["name"], True)]

            response = await http.put(f"/api/projects/{project['id']}/knowledge/{mine['id']}", json={"can_write": True})
            assert response.status_code == 200, response.text
            listed = await text_of(client, "list_collections")
            assert f"{mine['id']} {mine['name']}: 0 documents [this project writes here]" in listed
            assert f"{other['id']} {other['name']}: 1 documents" in listed

            saved = await text_of(
                client,
                "add_note",
                title="Retry policy",
                text=f"# Retries\n\nThe {word} client retries three times with backoff.",
                source_urls="https://docs.example.org/retry, https://wiki.example.org/backoff",
            )
            assert f"in collection {mine['name']}" in saved
            doc_id = document_id_in(saved)
            again = await text_of(
                client,
                "add_note",
                title="Retry policy",
                text=f"# Retries\n\nThe {word} client retries three times with backoff.",
            )
            assert again.startswith(f"Unchanged: document {doc_id}")

            doc = await wait_ready(http, doc_id)
            assert (doc["collection_id"], doc["kind"], doc["task_id"], doc["run_id"]) == (
                mine["id"],
                "note",
                task["id"],
                None,
            )
            assert doc["source_uri"] == "https://docs.example.org/retry https://wiki.example.org/backoff"

            # Search reads the bound collections only; the snippet marks the match.
            found = await text_of(client, "search_knowledge", query=word)
            assert f"document {doc_id}: Retry policy ({mine['name']}, note)" in found
            assert f"«{word}»" in found and "source: https://docs.example.org/retry" in found
            assert f"document {elsewhere['id']}:" not in found
            # Naming a collection searches that one, bound or not.
            assert f"document {elsewhere['id']}:" in await text_of(
                client, "search_knowledge", query=word, collection=other["name"]
            )

            read = await text_of(client, "read_document", document_id=doc_id)
            assert read.startswith("# Retry policy\n")
            assert f"collection {mine['name']}" in read and f"from task {task['short_id']}" in read
            assert f"The {word} client retries" in read

            # Mistakes come back as tool errors saying what to do.
            assert "only http(s) URLs" in await error_of(
                client, "add_note", title="t", text="x", source_urls="see the wiki"
            )
            assert "a number" in await error_of(client, "add_note", title="t", text="x", supersedes="latest")
            assert "query is empty" in await error_of(client, "search_knowledge", query="  ")
            assert "No knowledge collection 'ghost'" in await error_of(
                client, "search_knowledge", query=word, collection="ghost"
            )
            assert "Document 99999999 not found" in await error_of(client, "read_document", document_id=99999999)

            # A note that replaces another.
            newer = await text_of(
                client,
                "add_note",
                title="Retry policy v2",
                text=f"{word} now retries five times.",
                supersedes=str(doc_id),
            )
            replaced = await wait_ready(http, document_id_in(newer))
            assert replaced["supersedes_id"] == doc_id
            assert f"replaces document {doc_id}" in await text_of(client, "read_document", document_id=replaced["id"])


async def test_the_tools_over_http_outside_a_run(live_server):
    word = f"quokka{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        first = await collection(http, "first")
        second = await collection(http, "second")
        in_first = await wait_ready(
            http, (await note(http, first["id"], "First note", f"A {word} in the first."))["id"]
        )
        async with Client(f"{live_server.url}/mcp") as client:
            assert set(KNOWLEDGE_TOOLS) <= {t.name for t in await client.list_tools()}
            listed = await text_of(client, "list_collections")
            assert first["name"] in listed and second["name"] in listed and "this project" not in listed

            # Outside a run a note needs a collection.
            assert "Name the collection" in await error_of(client, "add_note", title="t", text="x")
            saved = await text_of(
                client, "add_note", title="Second note", text=f"Another {word} here.", collection=second["name"]
            )
            in_second = await wait_ready(http, document_id_in(saved))
            assert in_second["collection_id"] == second["id"] and in_second["task_id"] is None

            everywhere = await text_of(client, "search_knowledge", query=word)
            assert f"document {in_first['id']}:" in everywhere and f"document {in_second['id']}:" in everywhere
            only = await text_of(client, "search_knowledge", query=word, collection=str(first["id"]))
            assert f"document {in_first['id']}:" in only and f"document {in_second['id']}:" not in only
            assert "No matches" in await text_of(client, "search_knowledge", query=f"nothing{uuid.uuid4().hex}")


async def test_the_knowledge_server_alone_lists_four_small_tools():
    async with Client(build_knowledge_server(KanbanAPI("http://127.0.0.1:9"))) as client:
        tools = await client.list_tools()
    assert [t.name for t in tools] == list(KNOWLEDGE_TOOLS)
    listing = json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools])
    assert '"enum"' not in listing and len(listing) // 4 < 900

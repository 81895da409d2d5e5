"""The knowledge tools: search, read and fill the board's knowledge collections.

Four tools over the board's REST API (`/api/knowledge/...`, through the same `KanbanAPI` client
as the board's tools, so no MCP process touches the database): `search_knowledge`,
`read_document`, `add_note` and `list_collections`. Answers are compact text for a model
(titles, ids, snippets, sources); every failure is a `ToolError` that says what to do.

Inside an agent run (`KANBAN_PROJECT_ID` set) the tools work on the collections bound to the
run's project: search reads them all, `add_note` writes to the project's write collection and
records the run's task and run on the note. Outside a run they see every collection and
`add_note` needs a collection name.

They are registered on the board's MCP server (`kanban_server.py`, core profile) and served
alone as the built-in plugin `knowledge` (`knowledge_server.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastmcp.exceptions import ToolError

from mcp_servers.environment import RunContext

if TYPE_CHECKING:
    from mcp_servers.kanban_server import KanbanAPI

__all__ = ["KNOWLEDGE_TOOLS", "knowledge_tools", "register_knowledge_tools"]

KNOWLEDGE_TOOLS = ("search_knowledge", "read_document", "add_note", "list_collections")
MAX_HITS = 20
READ_CHARS = 20_000  # one read_document answer; the rest is read with offset
SNIPPET_CHARS = 400
NOT_READY = ("pending", "fetching", "chunking", "embedding")
HOW_TO_BIND = (
    "A user binds collections to a project on the board's Knowledge page (Bound projects: read, or "
    "read and write); or name a collection with collection=<name or id> (list_collections shows them)."
)
_URL = re.compile(r"https?://[^\s,]+", re.IGNORECASE)


def _one_line(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _marked(snippet: str) -> str:
    # The API marks matches in snippets; «» costs a model fewer tokens than HTML.
    return snippet.replace("<mark>", "«").replace("</mark>", "»")


def knowledge_tools(api: KanbanAPI, context: RunContext) -> dict[str, Callable[..., Any]]:
    """The four tools by name, bound to the API and the run's context."""

    async def collections() -> list[dict[str, Any]]:
        return await api.request("GET", "/api/knowledge/collections")

    async def bindings() -> list[dict[str, Any]]:
        if context.project_id is None:
            return []
        return await api.request("GET", f"/api/projects/{context.project_id}/knowledge")

    async def resolve(ref: str) -> dict[str, Any]:
        ref = ref.strip().lstrip("#")
        found = await collections()
        for item in found:
            if (ref.isdigit() and item["id"] == int(ref)) or item["name"].lower() == ref.lower():
                return item
        names = ", ".join(f"{c['name']} ({c['id']})" for c in found) or "none yet"
        raise ToolError(f"No knowledge collection {ref!r}. Collections: {names}.")

    async def write_collection() -> dict[str, Any]:
        if context.project_id is None:
            raise ToolError(
                "Name the collection to add the note to: collection=<name or id> (list_collections shows them)."
            )
        for binding in await bindings():
            if binding.get("can_write"):
                return {"id": binding["collection_id"], "name": binding["collection_name"]}
        # None yet: the project gets its own (named after it), as a user would make it.
        made = await api.request("POST", f"/api/projects/{context.project_id}/knowledge/write-collection")
        return {"id": made["collection_id"], "name": made["collection_name"]}

    async def search_knowledge(query: str, collection: str = "", limit: int = 5) -> str:
        """Search the knowledge collections (keyword + semantic) for notes, documents and past task
        results. Default: the collections bound to the current project (or all outside a run).
        collection: name or id to search only that one. limit: 1-20. Answers titles, document ids
        (for read_document), «marked» snippets and sources."""
        if not query.strip():
            raise ToolError("query is empty: say what to look for, in a few words.")
        params: dict[str, Any] = {"q": query, "limit": max(1, min(limit, MAX_HITS))}
        scope = "all collections"
        if collection.strip():
            chosen = await resolve(collection)
            params["collection_id"] = chosen["id"]
            scope = f"collection {chosen['name']}"
        elif context.project_id is not None:
            if not await bindings():
                raise ToolError(f"No knowledge collection is bound to this project. {HOW_TO_BIND}")
            params["project_id"] = context.project_id
            scope = "this project's collections"
        found = await api.request("GET", "/api/knowledge/search", params=params)
        lines = []
        semantic = found.get("semantic") or {}
        if semantic.get("state") not in (None, "ready", "not_loaded") and semantic.get("message"):
            lines.append(f"(keyword search only: {semantic['message']})")
        hits = found.get("hits") or []
        if not hits:
            lines.append(f"No matches for {query!r} in {scope}.")
            return "\n".join(lines)
        lines.append(f"{len(hits)} matches for {query!r} in {scope} (read_document(document_id) for the full text):")
        for number, hit in enumerate(hits, 1):
            where = f"{hit['collection_name']}, {hit['kind']}"
            heading = f" § {_one_line(hit['heading'], 80)}" if hit.get("heading") else ""
            lines.append(f"[{number}] document {hit['document_id']}: {hit['document_title']} ({where}){heading}")
            lines.append(f"    {_one_line(_marked(hit.get('snippet') or ''), SNIPPET_CHARS)}")
            if hit.get("source_uri"):
                lines.append(f"    source: {hit['source_uri']}")
        return "\n".join(lines)

    async def read_document(document_id: int, offset: int = 0) -> str:
        """Read a knowledge document's text (Markdown) by id, as found by search_knowledge. Long
        documents come in parts: offset is the character to start from."""
        doc = await api.request("GET", f"/api/knowledge/documents/{document_id}")
        names = {c["id"]: c["name"] for c in await collections()}
        about = [
            f"document {doc['id']}",
            doc["kind"],
            f"collection {names.get(doc['collection_id'], doc['collection_id'])}",
        ]
        if doc.get("source_uri"):
            about.append(f"source: {doc['source_uri']}")
        if doc.get("task_id"):
            about.append(f"from task {doc.get('task_short_id') or doc['task_id']}")
        if doc.get("run_id"):
            about.append(f"run {doc['run_id']}")
        if doc.get("supersedes_id"):
            about.append(f"replaces document {doc['supersedes_id']}")
        lines = [f"# {doc['title']}", " · ".join(about)]
        if doc["status"] == "failed":
            lines.append(f"(ingestion failed: {doc.get('error') or 'no reason given'})")
        elif doc["status"] in NOT_READY:
            lines.append(f"(still being ingested: {doc['status']}; search finds it once it is ready)")
        content = doc.get("content") or ""
        start = max(0, offset)
        part = content[start : start + READ_CHARS]
        lines.append("")
        lines.append(part if part else "(no text)" if not content else f"(the text has {len(content)} characters)")
        rest = len(content) - start - len(part)
        if rest > 0:
            lines.append(f"\n… {rest} more characters: read_document({doc['id']}, offset={start + len(part)})")
        return "\n".join(lines)

    async def add_note(title: str, text: str, source_urls: str = "", supersedes: str = "", collection: str = "") -> str:
        """Save a note (Markdown) to the knowledge base so later runs can find it: facts learnt,
        decisions, how-tos. Goes to the project's write collection unless collection (name or id)
        is given. source_urls: the URLs it is based on, space-separated. supersedes: id of a
        document this note replaces."""
        target = await resolve(collection) if collection.strip() else await write_collection()
        urls = _URL.findall(source_urls)
        leftover = _URL.sub(" ", source_urls).replace(",", " ").strip()
        if leftover:
            raise ToolError(f"source_urls: only http(s) URLs, space-separated (not {leftover[:80]!r}).")
        body: dict[str, Any] = {"title": title, "content": text}
        if urls:
            body["source_uri"] = " ".join(urls)
        if supersedes.strip():
            ref = supersedes.strip().lstrip("#")
            if not ref.isdigit():
                raise ToolError(f"supersedes: the id of the document this note replaces (a number, not {ref!r}).")
            body["supersedes_id"] = int(ref)
        if context.task_id is not None:
            body["task_id"] = context.task_id
        if context.run_id is not None:
            body["run_id"] = context.run_id
        doc = await api.request("POST", f"/api/knowledge/collections/{target['id']}/notes", json=body)
        name = target["name"] or f"#{target['id']}"
        if doc.get("unchanged"):
            return f"Unchanged: document {doc['id']} in {name} already holds this text."
        return f"Saved as document {doc['id']} in collection {name}; search finds it once it is indexed."

    async def list_collections() -> str:
        """List the knowledge collections (id, name, description, size) and which ones the current
        project reads and writes."""
        found = await collections()
        if not found:
            return "No knowledge collections yet. A user creates them on the board's Knowledge page."
        bound = {b["collection_id"]: b for b in await bindings()}
        lines = []
        for item in found:
            line = f"- {item['id']} {item['name']}: {item.get('document_count', 0)} documents"
            if item.get("description"):
                line += f"; {_one_line(item['description'], 160)}"
            if item["id"] in bound:
                line += " [this project writes here]" if bound[item["id"]].get("can_write") else " [this project reads]"
            lines.append(line)
        if context.project_id is not None and not bound:
            lines.append(f"None is bound to this project. {HOW_TO_BIND}")
        return "\n".join(lines)

    tools: dict[str, Callable[..., Any]] = {
        "search_knowledge": search_knowledge,
        "read_document": read_document,
        "add_note": add_note,
        "list_collections": list_collections,
    }
    return tools


def register_knowledge_tools(mcp: Any, api: KanbanAPI, context: RunContext | None = None) -> None:
    """Add the four knowledge tools to a FastMCP server."""
    for function in knowledge_tools(api, context or RunContext()).values():
        mcp.tool(function)

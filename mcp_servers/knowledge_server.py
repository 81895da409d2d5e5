"""The board's knowledge tools as an MCP server of their own (the built-in plugin `knowledge`).

Tools: search_knowledge, read_document, add_note, list_collections (see knowledge_tools.py).
They call the board's REST API (`KANBAN_API_URL`, `KANBAN_API_TOKEN`) like the board's own
server; inside a run `KANBAN_PROJECT_ID`, `KANBAN_TASK_ID` and `KANBAN_RUN_ID` scope them to
the run's project and record the run on the notes it adds. Agent runs get the same server
in-process (mcp_client/registry.py); this module is the stdio form.

Run: `python -m mcp_servers.knowledge_server` (stdio).
"""

from __future__ import annotations

import os
import signal

from fastmcp import FastMCP

from backend import __version__
from mcp_servers.environment import DEFAULT_API_URL, RunContext, exit_at_once
from mcp_servers.kanban_server import KanbanAPI, configure_logging
from mcp_servers.knowledge_tools import register_knowledge_tools

__all__ = ["INSTRUCTIONS", "build_server", "main"]

INSTRUCTIONS = (
    "The board's knowledge collections: notes, documents, web pages and past task results. "
    "search_knowledge before solving something that may be known; add_note what later work should know."
)


def build_server(api: KanbanAPI, context: RunContext | None = None) -> FastMCP:
    mcp = FastMCP("knowledge", instructions=INSTRUCTIONS, version=__version__)
    register_knowledge_tools(mcp, api, context)
    return mcp


def main() -> None:
    os.environ.setdefault("PY_KEY_VALUE_DISABLE_BEARTYPE", "true")  # see kanban_server.main
    signal.signal(signal.SIGINT, exit_at_once)
    signal.signal(signal.SIGTERM, exit_at_once)
    configure_logging(os.environ.get("KANBAN_LOG_LEVEL"))
    api = KanbanAPI(os.environ.get("KANBAN_API_URL") or DEFAULT_API_URL, os.environ.get("KANBAN_API_TOKEN") or None)
    build_server(api, RunContext.from_env()).run(show_banner=False)


if __name__ == "__main__":
    main()

"""The MCP servers an agent run gets, in the Claude Agent SDK's `mcp_servers` format.

Every run gets the board's own server (`kanban`), which knows the run's project, task and run.
Secrets only ever go into a server's environment or headers in this structure, which is
handed to the SDK and never logged.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunTarget:
    api_url: str
    api_token: str | None
    project_id: int
    task_id: int
    run_id: int


def kanban_server(target: RunTarget) -> dict[str, Any]:
    env = {
        "KANBAN_API_URL": target.api_url,
        "KANBAN_PROJECT_ID": str(target.project_id),
        "KANBAN_TASK_ID": str(target.task_id),
        "KANBAN_RUN_ID": str(target.run_id),
        "KANBAN_MCP_TOOLS": "core",
        "FASTMCP_SHOW_SERVER_BANNER": "false",
    }
    if target.api_token:
        env["KANBAN_API_TOKEN"] = target.api_token
    return {"type": "stdio", "command": sys.executable, "args": ["-m", "mcp_servers.kanban_server"], "env": env}


def filesystem_server(root: str) -> dict[str, Any]:
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.filesystem_server", "--root", root],
        "env": {"FASTMCP_SHOW_SERVER_BANNER": "false"},
    }


def servers_for_run(target: RunTarget) -> dict[str, dict[str, Any]]:
    return {"kanban": kanban_server(target)}

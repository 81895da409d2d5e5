"""The MCP servers an agent run gets, in the Claude Agent SDK's `mcp_servers` format.

Built-in servers now; installed plugins join here. Secrets only ever go into the server's
environment or headers in this structure, which is handed to the SDK and never logged.
"""

from __future__ import annotations

import sys
from typing import Any


def builtin_servers(worktree: str) -> dict[str, dict[str, Any]]:
    return {
        "filesystem": {
            "type": "stdio",
            "command": sys.executable,
            "args": ["-m", "mcp_servers.filesystem_server", "--root", worktree],
            "env": {"FASTMCP_SHOW_SERVER_BANNER": "false"},
        }
    }


def servers_for_run(worktree: str, *, include_builtin: bool = True) -> dict[str, dict[str, Any]]:
    return builtin_servers(worktree) if include_builtin else {}

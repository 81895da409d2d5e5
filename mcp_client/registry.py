"""The MCP servers an agent run gets, in the Claude Agent SDK's `mcp_servers` format.

Every run gets the board's own servers (`kanban`, and `knowledge` for the knowledge collections),
which know the run's project, task and run, and the plugins enabled for the run's project (the orchestrator loads them, decrypted, with
`backend.plugins.run_servers.plugins_for_run`). Secrets only ever go into a server's environment
or headers in this structure, which is handed to the SDK and never logged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KANBAN = "kanban"
KNOWLEDGE = "knowledge"
FILESYSTEM = "filesystem"
#: Built-in plugins every run gets, served in-process; they cannot be switched off.
ALWAYS_ON = (KANBAN, KNOWLEDGE)


@dataclass(frozen=True)
class RunTarget:
    api_url: str
    api_token: str | None
    project_id: int
    task_id: int
    run_id: int
    # The run's git worktree: the root the filesystem plugin is confined to.
    worktree: str | None = None


@dataclass(frozen=True)
class PluginConfig:
    """An installed plugin, ready to run: values filled in, secrets decrypted.

    `builtin` plugins get their command from this module (they need the run's context);
    the others run as configured.
    """

    name: str
    transport: str  # stdio | http | sse
    command: str | None = None
    args: list[str] = field(default_factory=list)
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    builtin: bool = False

    def __repr__(self) -> str:  # never show values: they may be secrets
        return f"PluginConfig(name={self.name!r}, transport={self.transport!r}, builtin={self.builtin})"

    __str__ = __repr__


def kanban_server(target: RunTarget) -> dict[str, Any]:
    """The board's tools for a run, served inside this process (no server process to start:
    importing an MCP server framework in a fresh interpreter costs seconds per run)."""
    from mcp_servers.kanban_server import KanbanAPI, RunContext, build_server

    server = build_server(
        KanbanAPI(target.api_url, target.api_token),
        RunContext(target.project_id, target.task_id, target.run_id),
        "core",
        knowledge=False,  # served by the knowledge server, as mcp__knowledge__*
    )
    return {"type": "sdk", "name": KANBAN, "instance": server._mcp_server}


def knowledge_server(target: RunTarget) -> dict[str, Any]:
    """The knowledge tools for a run, in this process like the board's tools."""
    from mcp_servers.kanban_server import KanbanAPI, RunContext
    from mcp_servers.knowledge_server import build_server

    server = build_server(
        KanbanAPI(target.api_url, target.api_token), RunContext(target.project_id, target.task_id, target.run_id)
    )
    return {"type": "sdk", "name": KNOWLEDGE, "instance": server._mcp_server}


async def warm_up_kanban_server() -> None:
    """Build the board's server once and list its tools through an in-memory MCP session.

    The first server in a process pays for lazy imports and tool schemas (~0.6 s here);
    done at start, the first agent run does not wait for it.
    """
    from fastmcp import Client

    from mcp_servers.kanban_server import KanbanAPI, RunContext, build_server
    from mcp_servers.knowledge_server import build_server as build_knowledge_server

    api = KanbanAPI("http://127.0.0.1:9", None)  # never called: listing tools needs no API
    try:
        async with Client(build_server(api, RunContext(0, 0, 0), "core", knowledge=False)) as client:
            await client.list_tools()
        async with Client(build_knowledge_server(api, RunContext(0, 0, 0))) as client:
            await client.list_tools()
    finally:
        await api.client.aclose()


def _board_env(target: RunTarget) -> dict[str, str]:
    env = {
        "KANBAN_API_URL": target.api_url,
        "KANBAN_PROJECT_ID": str(target.project_id),
        "KANBAN_TASK_ID": str(target.task_id),
        "KANBAN_RUN_ID": str(target.run_id),
        "FASTMCP_SHOW_SERVER_BANNER": "false",
    }
    if target.api_token:
        env["KANBAN_API_TOKEN"] = target.api_token
    return env


def kanban_stdio_server(target: RunTarget) -> dict[str, Any]:
    """The same tools as a stdio server process (for clients outside this process)."""
    env = {**_board_env(target), "KANBAN_MCP_TOOLS": "core"}
    return {"type": "stdio", "command": sys.executable, "args": ["-m", "mcp_servers.kanban_server"], "env": env}


def knowledge_stdio_server(target: RunTarget) -> dict[str, Any]:
    """The knowledge tools as a stdio server process (for clients outside this process)."""
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.knowledge_server"],
        "env": _board_env(target),
    }


def filesystem_server(root: str) -> dict[str, Any]:
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.filesystem_server", "--root", root],
        "env": {"FASTMCP_SHOW_SERVER_BANNER": "false"},
    }


def plugin_server(
    plugin: PluginConfig, target: RunTarget | None = None, *, in_process: bool = True
) -> dict[str, Any] | None:
    """The SDK config of one plugin (None for a builtin that cannot run without the run's context).

    `in_process=False` gives the board's own server as a process, for clients other than the SDK.
    """
    if plugin.builtin:
        if plugin.name == KANBAN and target is not None:
            return kanban_server(target) if in_process else kanban_stdio_server(target)
        if plugin.name == KNOWLEDGE and target is not None:
            return knowledge_server(target) if in_process else knowledge_stdio_server(target)
        if plugin.name == FILESYSTEM and target is not None and target.worktree:
            return filesystem_server(target.worktree)
        return None
    if plugin.transport == "stdio":
        config: dict[str, Any] = {"type": "stdio", "command": plugin.command, "args": list(plugin.args)}
        if plugin.env:
            config["env"] = dict(plugin.env)
        return config
    config = {"type": plugin.transport, "url": plugin.url}
    if plugin.headers:
        config["headers"] = dict(plugin.headers)
    return config


def servers_for_run(target: RunTarget, plugins: Iterable[PluginConfig] = ()) -> dict[str, dict[str, Any]]:
    """The board's own servers and every plugin given (the ones enabled for the run's project)."""
    servers = {KANBAN: kanban_server(target), KNOWLEDGE: knowledge_server(target)}
    for plugin in plugins:
        if plugin.name in servers:
            continue
        config = plugin_server(plugin, target)
        if config is not None:
            servers[plugin.name] = config
    return servers

"""Test an MCP server: start it (stdio) or connect to it (streamable HTTP, SSE), list its tools.

:func:`check_server` takes a server in the Claude Agent SDK's ``mcp_servers`` format (the
same dict an agent run gets) and returns a :class:`ProbeResult`; it never raises for a server
that fails. Errors are meant for people: the command was not found, the process exited
(with the end of what it wrote to stderr), no answer within the timeout (the process is
killed, with everything it started), the server refused the credentials (HTTP 401/403).

The result can hold text the server wrote; callers that know secret values should redact
them before storing or showing it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["DEFAULT_TIMEOUT", "ProbeResult", "check_server"]

DEFAULT_TIMEOUT = 10.0
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 2000
MAX_TOOLS = 500
MAX_DESCRIPTION = 1000


@dataclass
class ProbeResult:
    ok: bool
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{name, description}]
    error: str | None = None


class _ProbeFailed(Exception):
    pass


async def check_server(config: Mapping[str, Any], timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Connect to the server `config` describes, initialize, list its tools."""
    kind = config.get("type") or "stdio"
    try:
        if kind == "stdio":
            tools = await _probe_stdio(config, timeout)
        elif kind in ("http", "sse"):
            tools = await _probe_http(config, kind, timeout)
        else:
            return ProbeResult(ok=False, error=f"Unknown transport {kind!r}; use stdio, http or sse.")
    except _ProbeFailed as exc:
        return ProbeResult(ok=False, error=str(exc))
    return ProbeResult(ok=True, tools=tools)


# --------------------------------------------------------------------------- stdio


async def _probe_stdio(config: Mapping[str, Any], timeout: float) -> list[dict[str, Any]]:
    from fastmcp.client.transports import StdioTransport

    command = str(config.get("command") or "").strip()
    args = [str(a) for a in config.get("args") or []]
    env = {str(k): str(v) for k, v in (config.get("env") or {}).items()}
    if not command:
        raise _ProbeFailed("No command to start the server with.")
    _check_command(command, env)

    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
        transport = StdioTransport(command, args, env=env, cwd=config.get("cwd"), keep_alive=False, log_file=stderr)
        try:
            return await _list_tools(transport, timeout, what=f"The server ({command})")
        except _ProbeFailed as exc:
            tail = _tail(stderr)
            raise _ProbeFailed(f"{exc} Last output on stderr:\n{tail}" if tail else str(exc)) from None


def _check_command(command: str, env: Mapping[str, str]) -> None:
    path = env.get("PATH", os.environ.get("PATH", os.defpath))
    if os.sep in command:
        target = Path(command)
        if not target.exists():
            raise _ProbeFailed(f"Command not found: {command} does not exist.")
        if target.is_dir() or not os.access(target, os.X_OK):
            raise _ProbeFailed(f"Command not executable: {command}.")
        return
    if shutil.which(command, path=path) is None:
        raise _ProbeFailed(f"Command not found: {command!r} is not on the PATH. Is it installed?")


def _tail(stderr: TextIO) -> str:
    try:
        stderr.flush()
        stderr.seek(0)
        text = stderr.read()
    except (OSError, ValueError):
        return ""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    tail = "\n".join(lines[-STDERR_TAIL_LINES:])
    return tail[-STDERR_TAIL_CHARS:]


# --------------------------------------------------------------------------- HTTP


async def _probe_http(config: Mapping[str, Any], kind: str, timeout: float) -> list[dict[str, Any]]:
    from fastmcp.client.transports import SSETransport, StreamableHttpTransport
    from mcp.shared._httpx_utils import create_mcp_http_client

    url = str(config.get("url") or "").strip()
    if not url.startswith(("http://", "https://")):
        raise _ProbeFailed(f"Not an http(s) URL: {url[:200]!r}.")
    headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
    statuses: list[int] = []

    async def record(response: Any) -> None:
        statuses.append(response.status_code)

    def client_factory(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None, **_: Any):
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks.setdefault("response", []).append(record)
        return client

    if kind == "sse":
        transport: Any = SSETransport(url, headers=headers, httpx_client_factory=client_factory)
    else:
        transport = StreamableHttpTransport(url, headers=headers, httpx_client_factory=client_factory)
    try:
        return await _list_tools(transport, timeout, what=f"The server at {url}")
    except _ProbeFailed as exc:
        refused = next((s for s in statuses if s in (401, 403)), None)
        if refused is not None:
            raise _ProbeFailed(
                f"The server at {url} refused the credentials: auth refused (HTTP {refused}). "
                "Check the token or headers in the plugin's settings."
            ) from None
        failed = next((s for s in statuses if s >= 400), None)
        if failed is not None:
            raise _ProbeFailed(f"The server at {url} answered HTTP {failed}; is this the MCP endpoint?") from None
        raise exc from None


# --------------------------------------------------------------------------- both


async def _list_tools(transport: Any, timeout: float, what: str) -> list[dict[str, Any]]:
    from fastmcp import Client

    try:
        async with asyncio.timeout(timeout):
            async with Client(transport, init_timeout=timeout) as client:
                tools = await client.list_tools()
    except TimeoutError:
        raise _ProbeFailed(f"{what} did not answer within {timeout:g} s; it was stopped.") from None
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a message
        raise _ProbeFailed(_describe(exc, what)) from None
    return [
        {"name": tool.name, "description": (tool.description or "")[:MAX_DESCRIPTION] or None}
        for tool in tools[:MAX_TOOLS]
    ]


def _describe(exc: BaseException, what: str) -> str:
    causes = list(_chain(exc))
    for cause in causes:
        if isinstance(cause, FileNotFoundError):
            return f"Command not found: {cause.filename or cause}."
        if isinstance(cause, PermissionError):
            return f"Command not executable: {cause.filename or cause}."
    names = {type(c).__name__ for c in causes}
    text = " ".join(str(c) for c in causes)
    if "Connection closed" in text or "ClosedResourceError" in names or "BrokenResourceError" in names:
        return f"{what} exited (or closed its connection) before it listed its tools."
    if names & {"ConnectError", "ConnectTimeout"} or "connection attempts failed" in text:
        return f"{what} could not be reached: connection refused or no route."
    message = str(exc) or type(exc).__name__
    return f"{what} failed: {' '.join(message.split())[:500]}"


def _chain(exc: BaseException):
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)

"""The Claude agent executor: the only module that talks to the Claude Agent SDK.

The orchestrator hands it an `AgentRequest` and two callbacks (`emit` for every message,
`ask_permission` for tool requests that need the user's consent) and gets an `AgentOutcome`.
Completion is decided by the SDK's final ResultMessage (or the exception it raises), never
by a timeout.

Process control: the CLI is started through a small launcher that puts it in its own
process group and writes the group id to a file, so a cancel (or a restart after a crash)
can end the agent *and* everything it started (shell commands, MCP servers).

Plugin secrets: the SDK turns a dict of MCP servers into `--mcp-config '<json>'` on the CLI's
command line, which every local user can read (`ps`, /proc/*/cmdline). Only the in-process
servers (`type: "sdk"`, no secrets) go that way; the others are written to a 0600 file in a
0700 folder of their own, given to the CLI as a second `--mcp-config <path>` and removed when
the run ends, whatever the outcome (a restart removes what a crash left).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from claude_agent_sdk import (
    AssistantMessage,
    CanUseToolShadowedWarning,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolPermissionContext,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

# allowed_tools skips can_use_tool on purpose (the board's own tools, "always allow").
warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)

MAX_PAYLOAD_TEXT = 20_000
STDERR_TAIL_LINES = 30
CREDENTIAL_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
)
MISSING_CREDENTIALS = (
    "No Anthropic credentials: set ANTHROPIC_API_KEY in the environment of the Kanban Orchestrator "
    "server (or log in once with `claude login` as the user that runs it), then run the task again."
)


def bundled_cli_path() -> str:
    import claude_agent_sdk

    return str(Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude")


def find_credentials(env: dict[str, str]) -> bool:
    """True when the CLI will find some way to authenticate."""
    if any(env.get(name) for name in CREDENTIAL_VARIABLES):
        return True
    config_dir = Path(env.get("CLAUDE_CONFIG_DIR") or Path(env.get("HOME", "~")).expanduser() / ".claude")
    return (config_dir / ".credentials.json").is_file()


@dataclass
class AgentRequest:
    prompt: str
    cwd: str
    cli_path: str
    launcher_path: str
    pid_file: str
    resume_session_id: str | None = None
    permission_mode: str = "acceptEdits"
    model: str | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    mcp_servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A folder for this run's MCP config file (created 0700, removed after the run).
    mcp_config_dir: str | None = None
    # Tools the CLI may use without asking (permission rules such as "Bash" or "mcp__kanban").
    allowed_tools: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    system_prompt_append: str | None = None
    nice: int = 0  # added to the CLI's nice value: agents yield the CPU to the server


@dataclass
class AgentOutcome:
    session_id: str | None = None
    is_error: bool = False
    result: str | None = None
    error: str | None = None
    interrupted: bool = False
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    turns: int | None = None
    duration_ms: int | None = None


@dataclass
class PermissionDecision:
    allow: bool
    message: str = ""


Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
AskPermission = Callable[[str, dict[str, Any], str | None], Awaitable[PermissionDecision]]


class Executor(Protocol):
    async def run(self, request: AgentRequest, emit: Emit, ask_permission: AskPermission, control: RunControl) -> AgentOutcome: ...


class RunControl:
    """Lets the orchestrator interrupt a running agent and kill its process group."""

    def __init__(self) -> None:
        self._interrupt: Callable[[], Awaitable[None]] | None = None
        self.interrupt_requested = False
        self.pid_file: str | None = None

    async def interrupt(self) -> None:
        self.interrupt_requested = True
        if self._interrupt is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._interrupt(), 2)

    def kill(self) -> None:
        if self.pid_file:
            kill_process_group(self.pid_file)


def _is_agent_group(pgid: int, cli_path: str | None) -> bool:
    """The group's leader still runs the agent CLI (process ids get reused after a crash)."""
    if cli_path is None or not Path("/proc/self").exists():
        return True  # nothing to compare with: trust the recorded id
    try:
        command = Path(f"/proc/{pgid}/cmdline").read_bytes()
    except OSError:
        return True  # the leader exited; its group may live on, and only its members carry the id
    if not command:
        return True  # the leader exited and is not reaped yet: its id cannot have been reused
    return os.path.basename(cli_path).encode() in command


def kill_process_group(pid_file: str, sig: int = signal.SIGKILL, *, cli_path: str | None = None, forget: bool = False) -> bool:
    """Signal the agent's whole process group; True when there was one."""
    path = Path(pid_file)
    try:
        pgid = int(path.read_text().strip())
    except (OSError, ValueError):
        return False
    if forget:
        path.unlink(missing_ok=True)
    if pgid <= 1 or pgid == os.getpgrp() or not _is_agent_group(pgid, cli_path):
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def write_launcher(path: Path) -> str:
    """A launcher that runs the CLI in a new session (its own process group), at the agents' CPU priority."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "os.setsid()\n"
        "nice = int(os.environ.get('KANBAN_AGENT_NICE') or 0)\n"
        "os.nice(nice)\n"
        "# Linux puts each new session in a scheduling group of its own, weighted apart from\n"
        "# the nice values inside it: lower the group too, or ten agents get ten server shares.\n"
        "try:\n"
        "    with open('/proc/self/autogroup', 'w') as f:\n"
        "        f.write(str(nice))\n"
        "except OSError:\n"
        "    pass\n"
        "pid_file = os.environ.get('KANBAN_AGENT_PID_FILE')\n"
        "if pid_file:\n"
        "    with open(pid_file, 'w') as f:\n"
        "        f.write(str(os.getpgrp()))\n"
        "cli = os.environ['KANBAN_AGENT_CLI']\n"
        "os.execv(cli, [cli] + sys.argv[1:])\n"
    )
    path.chmod(0o755)
    return str(path)


def mcp_config_file(folder: str) -> str:
    return str(Path(folder) / "mcp.json")


def write_mcp_config(folder: str, servers: dict[str, dict[str, Any]]) -> None:
    """The servers' config (secrets included) in a file only this user can read: `folder` is
    (re)made 0700, the file is created 0600 before anything is written to it."""
    path = Path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.rmtree(path)  # left by a crash, or made by mkdtemp: ours, with our modes
    path.mkdir(mode=0o700)
    path.chmod(0o700)  # mkdir's mode is cut by the umask, never widened by it; be exact
    descriptor = os.open(mcp_config_file(folder), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"mcpServers": servers}, handle)


def remove_mcp_config(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def split_mcp_servers(servers: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(in-process servers for the SDK, every other server for the config file)."""
    in_process = {name: config for name, config in servers.items() if config.get("type") == "sdk"}
    external = {name: config for name, config in servers.items() if config.get("type") != "sdk"}
    return in_process, external


def _clip(text: str) -> str:
    return text if len(text) <= MAX_PAYLOAD_TEXT else text[:MAX_PAYLOAD_TEXT] + f"\n… ({len(text) - MAX_PAYLOAD_TEXT} more characters)"


def _tool_result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append(str(item.get("text", "")))
            else:
                parts.append(json.dumps(item, default=str)[:2000])
        return "\n".join(parts)
    return json.dumps(content, default=str)


def events_for(message: Any) -> list[tuple[str, dict[str, Any]]]:
    """A SDK message as run events: (type, JSON payload)."""
    if isinstance(message, SystemMessage):
        if message.subtype == "init":
            data = message.data
            return [
                (
                    "init",
                    {
                        "session_id": data.get("session_id"),
                        "model": data.get("model"),
                        "cwd": data.get("cwd"),
                        "tools": data.get("tools", []),
                        "mcp_servers": data.get("mcp_servers", []),
                        "permission_mode": data.get("permissionMode"),
                        "claude_code_version": data.get("claude_code_version"),
                    },
                )
            ]
        return [("system", {"subtype": message.subtype})]
    if isinstance(message, AssistantMessage):
        events = []
        for block in message.content:
            if isinstance(block, TextBlock):
                events.append(("text", {"text": _clip(block.text)}))
            elif isinstance(block, ThinkingBlock):
                events.append(("thinking", {"text": _clip(block.thinking)}))
            elif isinstance(block, ToolUseBlock):
                events.append(("tool_use", {"id": block.id, "name": block.name, "input": block.input}))
            elif isinstance(block, ToolResultBlock):
                events.append(("tool_result", {"tool_use_id": block.tool_use_id, "content": _clip(_tool_result_text(block.content)), "is_error": bool(block.is_error)}))
        if message.error:
            events.append(("error", {"message": f"The model API reported: {message.error}"}))
        return events
    if isinstance(message, UserMessage):
        events = []
        if isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    events.append(
                        (
                            "tool_result",
                            {
                                "tool_use_id": block.tool_use_id,
                                "content": _clip(_tool_result_text(block.content)),
                                "is_error": bool(block.is_error),
                            },
                        )
                    )
                elif isinstance(block, TextBlock):
                    events.append(("user", {"text": _clip(block.text)}))
        elif isinstance(message.content, str):
            events.append(("user", {"text": _clip(message.content)}))
        return events
    if isinstance(message, ResultMessage):
        usage = message.usage or {}
        return [
            (
                "result",
                {
                    "subtype": message.subtype,
                    "is_error": message.is_error,
                    "result": _clip(message.result or ""),
                    "errors": message.errors or [],
                    "cost_usd": message.total_cost_usd,
                    "input_tokens": usage.get("input_tokens"),
                    "output_tokens": usage.get("output_tokens"),
                    "turns": message.num_turns,
                    "duration_ms": message.duration_ms,
                    "session_id": message.session_id,
                    "terminal_reason": message.terminal_reason,
                },
            )
        ]
    return []


class ClaudeExecutor:
    """Runs one agent turn with `ClaudeSDKClient` (which supports interrupt)."""

    async def run(self, request: AgentRequest, emit: Emit, ask_permission: AskPermission, control: RunControl) -> AgentOutcome:
        outcome = AgentOutcome(session_id=request.resume_session_id)
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

        async def can_use_tool(tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext):
            decision = await ask_permission(tool_name, tool_input, context.tool_use_id)
            if decision.allow:
                return PermissionResultAllow()
            return PermissionResultDeny(message=decision.message or "The user denied this tool call.")

        env = {
            **request.env,
            "KANBAN_AGENT_CLI": request.cli_path,
            "KANBAN_AGENT_PID_FILE": request.pid_file,
            "KANBAN_AGENT_NICE": str(request.nice),
            "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
        }
        system_prompt: dict[str, str] = {"type": "preset", "preset": "claude_code"}
        if request.system_prompt_append:
            system_prompt["append"] = request.system_prompt_append
        in_process, external = split_mcp_servers(request.mcp_servers)
        config_dir = (request.mcp_config_dir or tempfile.mkdtemp(prefix="kanban-mcp-")) if external else None
        extra_args: dict[str, str | None] = {"mcp-config": mcp_config_file(config_dir)} if config_dir else {}
        options = ClaudeAgentOptions(
            cwd=request.cwd,
            cli_path=request.launcher_path,
            permission_mode=request.permission_mode,  # type: ignore[arg-type]
            can_use_tool=can_use_tool,
            mcp_servers=in_process,  # type: ignore[arg-type]
            extra_args=extra_args,
            allowed_tools=request.allowed_tools,
            resume=request.resume_session_id,
            model=request.model,
            max_turns=request.max_turns,
            max_budget_usd=request.max_budget_usd,
            env=env,
            stderr=stderr_tail.append,
            system_prompt=system_prompt,  # type: ignore[arg-type]
            setting_sources=["project"],
        )
        control.pid_file = request.pid_file
        client = ClaudeSDKClient(options)
        control._interrupt = client.interrupt
        api_error: str | None = None
        try:
            if config_dir:
                write_mcp_config(config_dir, external)
            await client.connect()
            await client.query(request.prompt)
            async for message in client.receive_response():
                if isinstance(message, AssistantMessage) and message.error:
                    api_error = message.error
                if isinstance(message, SystemMessage) and message.subtype == "init":
                    outcome.session_id = message.data.get("session_id") or outcome.session_id
                for event_type, payload in events_for(message):
                    await emit(event_type, payload)
                if isinstance(message, ResultMessage):
                    usage = message.usage or {}
                    outcome.session_id = message.session_id or outcome.session_id
                    outcome.is_error = message.is_error
                    outcome.result = message.result
                    outcome.cost_usd = message.total_cost_usd
                    outcome.input_tokens = usage.get("input_tokens")
                    outcome.output_tokens = usage.get("output_tokens")
                    outcome.turns = message.num_turns
                    outcome.duration_ms = message.duration_ms
                    outcome.interrupted = control.interrupt_requested or message.terminal_reason in (
                        "aborted_streaming",
                        "aborted_tools",
                    )
                    if message.is_error:
                        outcome.error = "; ".join(message.errors or []) or message.result or f"The agent stopped with {message.subtype}"
                        if api_error == "authentication_failed":
                            outcome.error = (
                                f"Anthropic refused the credentials ({outcome.error}). Check ANTHROPIC_API_KEY "
                                "(or the `claude login` of the user running the server)."
                            )
            if outcome.turns is None and not outcome.error:
                outcome.is_error = True
                outcome.error = "The agent ended without a final result." + _stderr_hint(stderr_tail)
        except ClaudeSDKError as exc:
            outcome.is_error = True
            outcome.error = _describe_failure(exc, stderr_tail)
        except Exception as exc:  # the SDK raises plain Exception for control timeouts
            outcome.is_error = True
            outcome.error = f"The agent failed: {exc}" + _stderr_hint(stderr_tail)
        finally:
            control._interrupt = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 12)
            kill_process_group(request.pid_file, cli_path=request.cli_path, forget=True)  # what the agent left running
            remove_mcp_config(config_dir)
        return outcome


def _stderr_hint(stderr_tail: deque[str]) -> str:
    text = "\n".join(line.rstrip() for line in stderr_tail if line.strip())
    return f"\nLast output of the Claude CLI:\n{text}" if text else ""


def _describe_failure(exc: ClaudeSDKError, stderr_tail: deque[str]) -> str:
    name = type(exc).__name__
    if name == "CLINotFoundError":
        return f"The Claude Code CLI was not found ({exc}). Set KANBAN_CLAUDE_CLI to its path."
    if name == "ResultError":
        errors = getattr(exc, "errors", None) or []
        detail = "; ".join(errors) or str(getattr(exc, "result", "") or exc)
        return f"The agent stopped with an error: {detail}" + _stderr_hint(stderr_tail)
    if name == "ProcessError":
        return f"The Claude CLI exited with code {getattr(exc, 'exit_code', '?')}." + _stderr_hint(stderr_tail)
    if name == "CLIJSONDecodeError":
        return "The Claude CLI wrote output that is not valid JSON; the run was stopped." + _stderr_hint(stderr_tail)
    return f"The agent failed ({name}): {exc}" + _stderr_hint(stderr_tail)

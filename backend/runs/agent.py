"""The Claude agent executor: the only module that talks to the Claude Agent SDK.

The orchestrator hands it an `AgentRequest` and two callbacks (`emit` for every message,
`ask_permission` for tool requests that need the user's consent) and gets an `AgentOutcome`.
Completion is decided by the SDK's final ResultMessage (or the exception it raises), never
by a timeout.

Process control (the launcher, process groups, the run's files) is `processes.py`: the
executor starts the CLI through the launcher and hands the orchestrator a way to interrupt
it (`RunControl`).

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
import shlex
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
    CLIJSONDecodeError,
    CLINotFoundError,
    PermissionResultAllow,
    PermissionResultDeny,
    ProcessError,
    ResultError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolPermissionContext,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk.types import SystemPromptPreset

from .processes import (
    PID_FILE_VARIABLE,
    RunControl,
    kill_process_group,
    mcp_config_file,
    remove_mcp_config,
    write_mcp_config,
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


def login_command(cli_path: str, agent_home: str | None = None) -> str:
    """The command that logs the agents' CLI in, as the server's user: the CLI the server runs
    (there may be no `claude` on PATH), with the agents' HOME when they have their own."""
    command = f"{shlex.quote(cli_path)} auth login"
    return f"HOME={shlex.quote(agent_home)} {command}" if agent_home else command


def missing_credentials(cli_path: str, agent_home: str | None = None) -> str:
    """Why agents cannot run without credentials, and the two ways that work here."""
    return (
        "No Anthropic credentials: set ANTHROPIC_API_KEY in the environment of the Kanban Orchestrator "
        f"server and restart it, or log in once as the user that runs it with `{login_command(cli_path, agent_home)}`; "
        "then run the task again."
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
    async def run(
        self, request: AgentRequest, emit: Emit, ask_permission: AskPermission, control: RunControl
    ) -> AgentOutcome: ...


def split_mcp_servers(
    servers: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(in-process servers for the SDK, every other server for the config file)."""
    in_process = {name: config for name, config in servers.items() if config.get("type") == "sdk"}
    external = {name: config for name, config in servers.items() if config.get("type") != "sdk"}
    return in_process, external


def _clip(text: str) -> str:
    return (
        text
        if len(text) <= MAX_PAYLOAD_TEXT
        else text[:MAX_PAYLOAD_TEXT] + f"\n… ({len(text) - MAX_PAYLOAD_TEXT} more characters)"
    )


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
        events: list[tuple[str, dict[str, Any]]] = []
        for block in message.content:
            if isinstance(block, TextBlock):
                events.append(("text", {"text": _clip(block.text)}))
            elif isinstance(block, ThinkingBlock):
                events.append(("thinking", {"text": _clip(block.thinking)}))
            elif isinstance(block, ToolUseBlock):
                events.append(("tool_use", {"id": block.id, "name": block.name, "input": block.input}))
            elif isinstance(block, ToolResultBlock):
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

    async def run(
        self, request: AgentRequest, emit: Emit, ask_permission: AskPermission, control: RunControl
    ) -> AgentOutcome:
        outcome = AgentOutcome(session_id=request.resume_session_id)
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        in_process, external = split_mcp_servers(request.mcp_servers)
        config_dir = (request.mcp_config_dir or tempfile.mkdtemp(prefix="kanban-mcp-")) if external else None
        client = ClaudeSDKClient(_options(request, ask_permission, in_process, config_dir, stderr_tail))
        control.attach(client.interrupt, request.pid_file)
        try:
            if config_dir:
                write_mcp_config(config_dir, external)
            await client.connect()
            await client.query(request.prompt)
            await _receive(client, outcome, emit, control)
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
            control.attach(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 12)
            kill_process_group(request.pid_file, cli_path=request.cli_path, forget=True)  # what the agent left running
            remove_mcp_config(config_dir)
        return outcome


def _options(
    request: AgentRequest,
    ask_permission: AskPermission,
    in_process: dict[str, dict[str, Any]],
    config_dir: str | None,
    stderr_tail: deque[str],
) -> ClaudeAgentOptions:
    """The SDK's options: the CLI behind the launcher, the in-process servers on its command
    line, the others in the run's config file."""

    async def can_use_tool(tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext):
        decision = await ask_permission(tool_name, tool_input, context.tool_use_id)
        if decision.allow:
            return PermissionResultAllow()
        return PermissionResultDeny(message=decision.message or "The user denied this tool call.")

    env = {
        **request.env,
        "KANBAN_AGENT_CLI": request.cli_path,
        PID_FILE_VARIABLE: request.pid_file,
        "KANBAN_AGENT_NICE": str(request.nice),
        "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
    }
    system_prompt: SystemPromptPreset = {"type": "preset", "preset": "claude_code"}
    if request.system_prompt_append:
        system_prompt["append"] = request.system_prompt_append
    extra_args: dict[str, str | None] = {"mcp-config": mcp_config_file(config_dir)} if config_dir else {}
    return ClaudeAgentOptions(
        cwd=request.cwd,
        cli_path=request.launcher_path,
        permission_mode=request.permission_mode,  # type: ignore[arg-type]  # a project setting (str), checked by its schema
        can_use_tool=can_use_tool,
        mcp_servers=in_process,  # type: ignore[arg-type]  # the registry's configs of type "sdk" (plain dicts)
        extra_args=extra_args,
        allowed_tools=request.allowed_tools,
        resume=request.resume_session_id,
        model=request.model,
        max_turns=request.max_turns,
        max_budget_usd=request.max_budget_usd,
        env=env,
        stderr=stderr_tail.append,
        system_prompt=system_prompt,
        setting_sources=["project"],
    )


async def _receive(client: ClaudeSDKClient, outcome: AgentOutcome, emit: Emit, control: RunControl) -> None:
    """Every message of the turn as events; the final ResultMessage fills in `outcome`."""
    api_error: str | None = None
    async for message in client.receive_response():
        if isinstance(message, AssistantMessage) and message.error:
            api_error = message.error
        if isinstance(message, SystemMessage) and message.subtype == "init":
            outcome.session_id = message.data.get("session_id") or outcome.session_id
        for event_type, payload in events_for(message):
            await emit(event_type, payload)
        if isinstance(message, ResultMessage):
            _take_result(outcome, message, api_error, control)


def _take_result(outcome: AgentOutcome, message: ResultMessage, api_error: str | None, control: RunControl) -> None:
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


def _stderr_hint(stderr_tail: deque[str]) -> str:
    text = "\n".join(line.rstrip() for line in stderr_tail if line.strip())
    return f"\nLast output of the Claude CLI:\n{text}" if text else ""


def _describe_failure(exc: ClaudeSDKError, stderr_tail: deque[str]) -> str:
    if isinstance(exc, CLINotFoundError):
        return f"The Claude Code CLI was not found ({exc}). Set KANBAN_CLAUDE_CLI to its path."
    if isinstance(exc, ResultError):  # a ProcessError whose last frame was an error result
        detail = "; ".join(exc.errors or []) or str(exc.result or exc)
        return f"The agent stopped with an error: {detail}" + _stderr_hint(stderr_tail)
    if isinstance(exc, ProcessError):
        return f"The Claude CLI exited with code {exc.exit_code}." + _stderr_hint(stderr_tail)
    if isinstance(exc, CLIJSONDecodeError):
        return "The Claude CLI wrote output that is not valid JSON; the run was stopped." + _stderr_hint(stderr_tail)
    return f"The agent failed ({type(exc).__name__}): {exc}" + _stderr_hint(stderr_tail)

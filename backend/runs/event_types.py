"""Every type of event in a run's log. The descriptions here are the reference in docs/api.md."""

from __future__ import annotations

import enum


class RunEventType(enum.StrEnum):
    """What a run event is; its payload depends on it."""

    init = "init"
    system = "system"
    text = "text"
    thinking = "thinking"
    tool_use = "tool_use"
    tool_result = "tool_result"
    user = "user"
    approval = "approval"
    result = "result"
    error = "error"
    status = "status"
    check = "check"


RUN_EVENT_DESCRIPTIONS: dict[RunEventType, str] = {
    RunEventType.init: "The agent session started: `{session_id, model, cwd, tools, mcp_servers, permission_mode, "
    "claude_code_version}`.",
    RunEventType.system: "Another notice of the agent's runtime: `{subtype}`.",
    RunEventType.text: "Text the model wrote: `{text}`.",
    RunEventType.thinking: "The model's thinking: `{text}`.",
    RunEventType.tool_use: "The model calls a tool: `{id, name, input}`.",
    RunEventType.tool_result: "A tool's answer: `{tool_use_id, content, is_error}`.",
    RunEventType.user: "A user-side message of the session that is not a tool's answer: `{text}`.",
    RunEventType.approval: "A tool request waits for the user's answer, or was answered: the approval.",
    RunEventType.result: "The agent finished: `{subtype, is_error, result, errors, cost_usd, session_cost_usd, "
    "input_tokens, output_tokens, turns, duration_ms, session_id, terminal_reason}` (`cost_usd` is the run's own, "
    "`session_cost_usd` the session's total).",
    RunEventType.error: "The run or the model API failed: `{message}`.",
    RunEventType.check: "A workflow check ran in the task's worktree: `{command, status, exit_code, output, "
    "truncated, duration_ms, attempt, max_attempts}`; `status` is running (it started), passed, failed or timed_out.",
    RunEventType.status: "The run's state changed (started, resumed, ended): `{status}`, and on a start "
    "`attempt`, `start` and the `worker` and `host` that started it.",
}

RUN_EVENTS_DOC = "\n".join(f"- `{name.value}`: {text}" for name, text in RUN_EVENT_DESCRIPTIONS.items())

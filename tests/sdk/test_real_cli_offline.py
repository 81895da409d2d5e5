"""The real bundled Claude Code CLI, run offline against the scripted fake Messages API, and
the stand-in CLI's fault modes, both through ``claude_agent_sdk.ClaudeSDKClient``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    CLIJSONDecodeError,
    PermissionResultAllow,
    ProcessError,
    ResultError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from tests.fixtures.echo_mcp_server import ECHO_MCP_SERVER
from tests.fixtures.fake_anthropic import (
    BUNDLED_CLI,
    FAKE_CLI,
    FakeAnthropic,
    Turn,
)

needs_cli = pytest.mark.skipif(not os.access(BUNDLED_CLI, os.X_OK), reason="bundled Claude Code CLI not available")


async def allow_all(tool_name: str, tool_input: dict[str, Any], context: Any) -> PermissionResultAllow:
    return PermissionResultAllow()


def _echo_stderr(line: str) -> None:  # the CLI's stderr, shown by pytest when a test fails
    sys.stderr.write(line + "\n")


def real_options(fake: FakeAnthropic, cwd: Path, *, env: dict[str, str] | None = None, **kw: Any) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(
        cli_path=BUNDLED_CLI,
        cwd=str(cwd),
        env=env if env is not None else fake.env(),
        permission_mode="acceptEdits",
        can_use_tool=allow_all,
        stderr=_echo_stderr,
        **kw,
    )


async def run_turn(client: ClaudeSDKClient, prompt: str, timeout: float = 30) -> list[Any]:
    async with asyncio.timeout(timeout):
        await client.query(prompt)
        return [m async for m in client.receive_response()]


async def run_once(options: ClaudeAgentOptions, prompt: str, timeout: float = 30) -> list[Any]:
    async with ClaudeSDKClient(options) as client:
        return await run_turn(client, prompt, timeout)


def blocks(messages: list[Any], kind: type) -> list[Any]:
    return [
        b
        for m in messages
        if isinstance(m, (AssistantMessage, UserMessage)) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, kind)
    ]


# --------------------------------------------------------------------------- the real CLI


@needs_cli
async def test_scripted_write_and_bash(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.push(
        Turn.tool_use("Write", {"file_path": "hello.txt", "content": "hi"}, thinking="Plan: write the file."),
        Turn.tool_use("Bash", {"command": "echo ok > out.txt"}),
        Turn.text("Done: wrote hello.txt"),
    )
    messages = await run_once(real_options(fake_anthropic, tmp_path), "Write hello.txt please")

    assert (tmp_path / "hello.txt").read_text() == "hi"
    assert (tmp_path / "out.txt").read_text().strip() == "ok"
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert result.is_error is False
    assert result.subtype == "success"
    assert result.num_turns == 3
    assert result.total_cost_usd and result.total_cost_usd > 0
    assert result.result == "Done: wrote hello.txt"
    assert [b.name for b in blocks(messages, ToolUseBlock)] == ["Write", "Bash"]
    assert all(not b.is_error for b in blocks(messages, ToolResultBlock))

    main = fake_anthropic.main_requests()
    assert len(main) == 3 and not fake_anthropic.side_requests()
    assert "Write hello.txt please" in main[0].user_texts()
    assert [r.get("is_error", False) for r in main[-1].tool_results()] == [False, False]
    assert fake_anthropic.remaining() == 0


@needs_cli
async def test_resume_sends_earlier_conversation(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.push(Turn.text("The answer is 42."), Turn.text("You asked about the answer."))
    first = await run_once(real_options(fake_anthropic, tmp_path), "What is the answer?")
    session_id = first[-1].session_id
    assert first[-1].is_error is False

    second = await run_once(real_options(fake_anthropic, tmp_path, resume=session_id), "What did I ask?")
    assert second[-1].is_error is False
    assert second[-1].result == "You asked about the answer."
    assert second[-1].session_id == session_id

    resumed = fake_anthropic.main_requests()[-1]
    assert resumed.session_id == session_id
    roles_texts = [(m["role"], t) for m in resumed.messages for t in _texts(m)]
    assert ("user", "What is the answer?") in roles_texts
    assert ("assistant", "The answer is 42.") in roles_texts
    assert roles_texts[-1] == ("user", "What did I ask?")


def _texts(message: dict[str, Any]) -> list[str]:
    c = message.get("content")
    if isinstance(c, str):
        return [c]
    return [b.get("text", "") for b in c or [] if isinstance(b, dict) and b.get("type") == "text"]


@needs_cli
@pytest.mark.parametrize("route", ["direct", "tool_search"])
async def test_mcp_stdio_tool(fake_anthropic: FakeAnthropic, tmp_path: Path, route: str) -> None:
    name = "mcp__echo__echo"
    fake_anthropic.push(Turn.mcp_auto("echo", "echo", {"text": "ping"}), Turn.text("echoed"))
    options = real_options(
        fake_anthropic,
        tmp_path,
        env=fake_anthropic.env(tool_search=False if route == "direct" else None),
        mcp_servers={"echo": {"command": sys.executable, "args": [ECHO_MCP_SERVER]}},
    )
    messages = await run_once(options, "Echo ping")

    assert messages[-1].is_error is False
    uses = blocks(messages, ToolUseBlock)
    results = {b.tool_use_id: b for b in blocks(messages, ToolResultBlock)}
    mcp_use = next(u for u in uses if u.name == name)
    assert "echo: ping" in str(results[mcp_use.id].content)
    assert not results[mcp_use.id].is_error

    first = fake_anthropic.main_requests()[0]
    if route == "direct":
        assert name in first.tool_names and name not in first.deferred_tools()
        assert [u.name for u in uses] == [name]
    else:  # deferred: only the name is announced, ToolSearch loads the schema
        assert name not in first.tool_names and name in first.deferred_tools()
        assert [u.name for u in uses] == ["ToolSearch", name]
        assert name in fake_anthropic.main_requests()[1].tool_names


@needs_cli
async def test_interrupt_during_hang_turn(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    hang = Turn.hang()
    fake_anthropic.push(hang, Turn.text("after the interrupt"))
    async with ClaudeSDKClient(real_options(fake_anthropic, tmp_path)) as client:
        await client.query("Take your time")
        assert await asyncio.to_thread(hang.wait_started, 20)
        started = time.monotonic()
        await client.interrupt()
        async with asyncio.timeout(10):
            messages = [m async for m in client.receive_response()]
        assert time.monotonic() - started < 3
        result = messages[-1]
        assert isinstance(result, ResultMessage)
        assert result.is_error is True and result.subtype == "error_during_execution"
        assert any(isinstance(b, TextBlock) and "interrupted" in b.text for b in blocks(messages, TextBlock))

        # the same client and session carry on
        again = await run_turn(client, "Continue")
        assert again[-1].is_error is False and again[-1].result == "after the interrupt"
        assert again[-1].session_id == result.session_id


@needs_cli
async def test_concurrent_runs_use_their_own_scripts(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    keys = ["[run-a]", "[run-b]", "[run-c]"]
    for k in keys:
        fake_anthropic.add_script(
            k, [Turn.tool_use("Bash", {"command": f"echo {k[1:-1]} > {k[1:-1]}.txt"}), Turn.text(f"finished {k}")]
        )

    async def one(k: str) -> list[Any]:
        d = tmp_path / k[1:-1]
        d.mkdir()
        return await run_once(real_options(fake_anthropic, d), f"Do the task {k}")

    results = await asyncio.gather(*(one(k) for k in keys))
    for k, messages in zip(keys, results):
        assert messages[-1].result == f"finished {k}"
        assert (tmp_path / k[1:-1] / f"{k[1:-1]}.txt").read_text().strip() == k[1:-1]
        assert len(fake_anthropic.main_requests(key=k)) == 2
        assert fake_anthropic.remaining(k) == 0


@needs_cli
async def test_side_requests_do_not_consume_the_script(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.push(Turn.text("scripted reply"))
    env = fake_anthropic.env(CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="")  # re-enable title generation
    async with ClaudeSDKClient(real_options(fake_anthropic, tmp_path, env=env)) as client:
        messages = await run_turn(client, "Rename the widget module")
        assert fake_anthropic.wait_for(lambda rs: any(r.kind == "side" for r in rs), timeout=10)
    assert messages[-1].result == "scripted reply"
    side = fake_anthropic.side_requests()[0]
    assert "Rename the widget module" in side.all_text()  # the session-title request
    assert side.tool_names == []
    assert len(fake_anthropic.main_requests()) == 1


@needs_cli
async def test_many_messages_stream_quickly(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.push(Turn.text_blocks(500))
    started = time.monotonic()
    messages = await run_once(real_options(fake_anthropic, tmp_path), "Stream a lot")
    elapsed = time.monotonic() - started
    assert sum(isinstance(m, AssistantMessage) for m in messages) == 500
    assert messages[-1].is_error is False
    assert elapsed < 20


@needs_cli
async def test_api_error_turn_ends_the_run_with_an_error(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.push(Turn.error(529, "overloaded_error", "Overloaded"))
    messages = await run_once(real_options(fake_anthropic, tmp_path, env=fake_anthropic.env(max_retries=0)), "Hi")
    result = messages[-1]
    assert result.is_error is True  # note: subtype is still "success"
    assert any(isinstance(m, AssistantMessage) and m.error for m in messages)


@needs_cli
async def test_api_outage_mid_turn_is_retried(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    hang = Turn.hang()
    fake_anthropic.push(hang, Turn.text("back again"))
    options = real_options(fake_anthropic, tmp_path, env=fake_anthropic.env(max_retries=3))
    async with ClaudeSDKClient(options) as client:
        await client.query("Hi")
        assert await asyncio.to_thread(hang.wait_started, 20)
        fake_anthropic.close()  # drop the streaming connection, refuse new ones
        await asyncio.sleep(0.3)
        fake_anthropic.start()  # same port again
        async with asyncio.timeout(20):
            messages = [m async for m in client.receive_response()]
    assert messages[-1].is_error is False and messages[-1].result == "back again"
    assert any(isinstance(m, SystemMessage) and m.subtype == "api_retry" for m in messages)


# --------------------------------------------------------------------------- the fake API alone


def _post(fake: FakeAnthropic, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    req = urllib.request.Request(
        fake.base_url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


MAIN_BODY = {
    "model": "m",
    "max_tokens": 10,
    "tools": [{"name": "Bash"}],
    "messages": [{"role": "user", "content": "hi [k]"}],
}


def test_server_starts_and_stops_repeatedly() -> None:
    for _ in range(20):
        with FakeAnthropic(script=[Turn.text("x")]) as fake:
            status, body = _post(fake, "/v1/messages", MAIN_BODY)
            assert status == 200 and json.loads(body)["content"] == [{"type": "text", "text": "x"}]


def test_non_streaming_keys_callables_and_endpoints() -> None:
    with FakeAnthropic(
        default=Turn.text("fallback"), scripts={"[k]": [lambda req: Turn.text(f"saw {len(req.messages)}")]}
    ) as fake:
        status, body = _post(fake, "/v1/messages?beta=true", MAIN_BODY)
        message = json.loads(body)
        assert status == 200 and message["content"][0]["text"] == "saw 1" and message["usage"]["output_tokens"] > 0
        status, body = _post(fake, "/v1/messages", MAIN_BODY)  # script exhausted
        assert json.loads(body)["content"][0]["text"] == "fallback"
        status, body = _post(fake, "/v1/messages/count_tokens?beta=true", MAIN_BODY)
        assert status == 200 and json.loads(body)["input_tokens"] > 0
        title = {
            "model": "m",
            "max_tokens": 10,
            "tools": [],
            "messages": [{"role": "user", "content": "x"}],
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {"type": "object", "properties": {"title": {"type": "string"}}},
                }
            },
        }
        status, body = _post(fake, "/v1/messages", title)
        assert json.loads(json.loads(body)["content"][0]["text"]) == {"title": "Scripted conversation"}
        assert [r.kind for r in fake.requests] == ["main", "main", "count_tokens", "side"]
        assert [r.key for r in fake.main_requests()] == ["[k]", "[k]"]
        fake.push(lambda req: 1 / 0)  # a broken script item: HTTP 500, error kept for the test
        status, _ = _post(fake, "/v1/messages", {**MAIN_BODY, "messages": [{"role": "user", "content": "unkeyed"}]})
        assert status == 500 and isinstance(fake.errors[0], ZeroDivisionError)


def test_hang_turn_released_by_timeout_or_stop() -> None:
    with FakeAnthropic(script=[Turn.hang(0.3, then=Turn.text("late"))]) as fake:
        t = time.monotonic()
        status, body = _post(fake, "/v1/messages", MAIN_BODY)
        assert json.loads(body)["content"][0]["text"] == "late" and time.monotonic() - t >= 0.3
    hang = Turn.hang()
    fake = FakeAnthropic(script=[hang]).start()
    out: list[Any] = []
    th = threading.Thread(target=lambda: out.append(_safe_post(fake)))
    th.start()
    assert hang.wait_started(5)
    fake.stop()  # drops the connection of the hanging request
    th.join(5)
    assert not th.is_alive()


def _safe_post(fake: FakeAnthropic) -> Any:
    try:
        return _post(fake, "/v1/messages", MAIN_BODY)
    except Exception as e:  # connection dropped
        return e


# --------------------------------------------------------------------------- the stand-in CLI


def fake_cli_options(tmp_path: Path, mode: str, stderr: list[str] | None = None) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(
        cli_path=FAKE_CLI,
        cwd=str(tmp_path),
        env={"FAKE_CLI_MODE": mode},
        stderr=(stderr.append if stderr is not None else None),
    )


async def test_fake_cli_ok(tmp_path: Path) -> None:
    messages = await run_once(fake_cli_options(tmp_path, "ok"), "hi", timeout=10)
    assert isinstance(messages[0], SystemMessage) and messages[0].subtype == "init"
    assert isinstance(messages[-1], ResultMessage) and messages[-1].is_error is False and messages[-1].result


async def test_fake_cli_error_result(tmp_path: Path) -> None:
    messages = await run_once(fake_cli_options(tmp_path, "error_result"), "hi", timeout=10)
    assert messages[-1].is_error is True and messages[-1].subtype == "success"
    with pytest.raises(ResultError):  # query(): the CLI exits 1 after an error result
        async with asyncio.timeout(10):
            async for _ in query(prompt="hi", options=fake_cli_options(tmp_path, "error_result")):
                pass


async def test_fake_cli_crash_mid_turn(tmp_path: Path) -> None:
    seen: list[Any] = []
    with pytest.raises(ProcessError) as exc:
        async with asyncio.timeout(10), ClaudeSDKClient(fake_cli_options(tmp_path, "crash_mid_turn")) as client:
            await client.query("hi")
            async for m in client.receive_response():
                seen.append(m)
    assert exc.value.exit_code == -9
    assert any(isinstance(m, AssistantMessage) for m in seen)


async def test_fake_cli_garbage(tmp_path: Path) -> None:
    with pytest.raises(CLIJSONDecodeError):
        await run_once(fake_cli_options(tmp_path, "garbage"), "hi", timeout=10)


async def test_fake_cli_exit_nonzero(tmp_path: Path) -> None:
    stderr: list[str] = []
    with pytest.raises(ProcessError) as exc:
        await run_once(fake_cli_options(tmp_path, "exit_nonzero", stderr), "hi", timeout=10)
    assert exc.value.exit_code == 2
    assert any("fatal error before init" in line for line in stderr)


async def test_fake_cli_hang_then_interrupt(tmp_path: Path) -> None:
    async with ClaudeSDKClient(fake_cli_options(tmp_path, "hang")) as client:
        await client.query("hi")
        async with asyncio.timeout(10):
            async for m in client.receive_messages():
                if isinstance(m, AssistantMessage):
                    break
            await client.interrupt()
            messages = [m async for m in client.receive_response()]
    assert isinstance(messages[-1], ResultMessage)
    assert messages[-1].is_error is True and messages[-1].subtype == "error_during_execution"

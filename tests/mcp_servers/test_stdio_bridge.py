"""`kanban mcp` as a bridge to the running board's /mcp, with a real MCP client over stdio and a
real board; the in-process server when the board is down or the environment asks for more."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from mcp.shared.exceptions import MCPError

from mcp_servers.kanban_server import CORE_TOOLS, FULL_TOOLS
from tests.backend.factories import create_project, create_task
from tests.mcp_servers.test_kanban_server import KANBAN, REPO, call, error_of, stop

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
SDK = (
    "mcp",
    "mcp_types",
    "fastmcp",
    "pydantic",
    "pydantic_core",
    "mcp_servers.kanban_server",
    "backend.config",
    "rich",
    "click",
)


def clean_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KANBAN_", "FASTMCP_"))}
    return {**base, **env}


def lines(*messages: dict) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def kanban_mcp_client(api_url: str, log_file: Path, **env: str) -> Client:
    """`kanban mcp` as Claude Code starts it, its stderr going to `log_file`; it ends with the client."""
    transport = StdioTransport(
        command=KANBAN,
        args=["mcp"],
        env=clean_env(KANBAN_API_URL=api_url, **env),
        cwd=REPO,
        log_file=log_file,
        keep_alive=False,
    )
    return Client(transport)


class Board:
    """A board on a fixed port that can be stopped and started again (same database)."""

    def __init__(self, tmp_path: Path, port: int | None = None, **overrides) -> None:
        from tests.conftest import free_port

        self.tmp_path = tmp_path
        self.port = port or free_port()
        self.overrides = overrides
        self.server = None

    async def __aenter__(self) -> Board:
        from tests.conftest import make_settings

        self.settings, self.drop = await asyncio.to_thread(
            make_settings,
            "sqlite",
            self.tmp_path,
            port=self.port,
            run_agents=False,
            sse_heartbeat_seconds=1,
            **self.overrides,
        )
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
        self.drop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from backend.main import create_app
        from tests.conftest import LiveServer

        self.server = LiveServer(create_app(self.settings), self.port)
        await self.server.__aenter__()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.__aexit__(None, None, None)
            self.server = None


@pytest.fixture
async def board(tmp_path: Path):
    async with Board(tmp_path) as board:
        yield board


@pytest.fixture
async def in_progress(board: Board) -> tuple[dict, dict]:
    """A project and a task of it in progress (no agent runs: it stays there)."""
    async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
        project = await create_project(http)
        return project, await create_task(http, project["id"], status="in_progress")


async def test_the_board_answers_through_the_bridge(board: Board, tmp_path: Path):
    async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
        project = await create_project(http)
    log = tmp_path / "stderr.txt"
    async with kanban_mcp_client(board.url, log) as client:
        assert [tool.name for tool in await client.list_tools()] == list(CORE_TOOLS)
        assert [p["name"] for p in await call(client, "list_projects")] == [project["name"]]
        made = await call(client, "create_task", title="Through the bridge", project=project["key"])
        assert made["short_id"].startswith(project["key"] + "-")
        # The board's refusals are the tool's answer, the session goes on.
        assert "No task 'NOPE-1'" in await error_of(client, "get_task", task="NOPE-1")
        assert "status must be one of" in await error_of(client, "move_task", task=made["short_id"], status="doing")
        assert "must be true or false" in await error_of(
            client, "create_task", title="x", project=project["key"], run="yes"
        )
        assert [t["title"] for t in await call(client, "list_tasks", project=project["key"])] == ["Through the bridge"]
        resource = await client.read_resource(f"kanban://projects/{project['id']}/board")
        assert "Through the bridge" in resource[0].text
    assert log.read_text() == ""  # quiet: Claude Code shows every stderr line as an error


async def test_debug_log_shows_the_messages_going_to_the_board_and_the_session_ended(board: Board, tmp_path: Path):
    log = tmp_path / "stderr.txt"
    async with kanban_mcp_client(board.url, log, KANBAN_LOG_LEVEL="debug") as client:
        await call(client, "list_projects")
    for _ in range(50):  # the client gives the process two seconds to exit
        if f"DELETE {board.url}/mcp" in (text := log.read_text()):
            break
        await asyncio.sleep(0.1)
    assert f"DELETE {board.url}/mcp" in text, text  # stdin closed: the board's session is ended
    assert f"POST {board.url}/mcp" in text and "to the board: tools/call" in text
    assert "/api/" not in text  # the tools ran in the board, not here


async def test_the_token_goes_to_the_board(tmp_path: Path):
    async with Board(tmp_path, api_token="t0ken") as board:
        log = tmp_path / "stderr.txt"
        async with kanban_mcp_client(board.url, log, KANBAN_API_TOKEN="t0ken", KANBAN_LOG_LEVEL="debug") as client:
            assert await call(client, "list_projects") == []
        assert f"POST {board.url}/mcp" in log.read_text()
        assert "t0ken" not in log.read_text()
        with pytest.raises(MCPError, match="401"):
            async with kanban_mcp_client(board.url, log, KANBAN_API_TOKEN="wrong") as client:
                pass
        assert "wrong" not in log.read_text()


async def test_calls_run_concurrently(board: Board, in_progress: tuple[dict, dict], tmp_path: Path):
    project, task = in_progress
    async with kanban_mcp_client(board.url, tmp_path / "stderr.txt") as client:
        waiting = asyncio.create_task(call(client, "wait_for_task", task=task["short_id"], timeout=60))
        await asyncio.sleep(0.5)
        # Answered while wait_for_task still waits.
        assert [p["id"] for p in await asyncio.wait_for(call(client, "list_projects"), 20)] == [project["id"]]
        assert not waiting.done()
        async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
            assert (await http.post(f"/api/tasks/{task['id']}/move", json={"status": "done"})).status_code == 200
        waited = await asyncio.wait_for(waiting, 30)
    assert (waited["status"], waited["timed_out"]) == ("done", False)


async def test_a_restarted_board_gets_a_new_session(board: Board, tmp_path: Path):
    async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
        project = await create_project(http)
    log = tmp_path / "stderr.txt"
    async with kanban_mcp_client(board.url, log, KANBAN_LOG_LEVEL="info") as client:
        assert await call(client, "list_projects")
        await board.stop()
        message = await error_of(client, "list_projects")  # while it is down
        assert "unreachable" in message and "kanban serve" in message, message
        started = asyncio.get_running_loop().time()  # a wait the board never got is not repeated
        assert "unreachable" in await error_of(client, "wait_for_task", task="KAN-1", timeout=60)
        assert asyncio.get_running_loop().time() - started < 10
        await board.start()  # it knows nothing of the session now
        assert [p["id"] for p in await call(client, "list_projects")] == [project["id"]]
        assert [tool.name for tool in await client.list_tools()] == list(CORE_TOOLS)
    assert "opened a new one" in log.read_text()


async def test_wait_for_task_survives_a_board_restart_through_the_bridge(
    board: Board, in_progress: tuple[dict, dict], tmp_path: Path
):
    _, task = in_progress
    async with kanban_mcp_client(board.url, tmp_path / "stderr.txt") as client:
        waiting = asyncio.create_task(call(client, "wait_for_task", task=task["short_id"], timeout=60))
        await asyncio.sleep(1)  # waiting in the board
        await board.stop()  # the call's answer is cut off
        await asyncio.sleep(1)
        assert not waiting.done(), waiting.result()
        await board.start()
        await asyncio.sleep(1)
        assert not waiting.done(), waiting.result()
        async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
            assert (
                await http.post(f"/api/tasks/{task['id']}/move", json={"status": "needs_review"})
            ).status_code == 200
        waited = await asyncio.wait_for(waiting, 30)
    assert (waited["status"], waited["timed_out"]) == ("needs_review", False)


async def test_board_down_at_start_serves_the_tools_in_process(tmp_path: Path):
    from tests.conftest import free_port

    port = free_port()  # nothing listens there yet
    async with kanban_mcp_client(f"http://127.0.0.1:{port}", tmp_path / "stderr.txt") as client:
        assert [tool.name for tool in await client.list_tools()] == list(CORE_TOOLS)
        message = await error_of(client, "list_projects")
        assert "unreachable" in message and "kanban serve" in message, message
        async with Board(tmp_path, port):  # the board comes up later: the calls reach it
            assert await call(client, "list_projects") == []
    assert (tmp_path / "stderr.txt").read_text() == ""


async def test_a_board_that_does_not_answer_at_start_gets_the_in_process_server(tmp_path: Path):
    connections = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the client gives up

    hung = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{hung.sockets[0].getsockname()[1]}"
    try:
        async with kanban_mcp_client(url, tmp_path / "stderr.txt") as client:
            assert [tool.name for tool in await client.list_tools()] == list(CORE_TOOLS)
            assert "did not answer within" in await error_of(client, "list_projects")
    finally:
        hung.close()
        for writer in connections:
            writer.close()
    assert connections, "the bridge never connected"


async def test_what_the_board_does_not_serve_is_served_in_process(board: Board, tmp_path: Path):
    async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
        project = await create_project(http)
        parent = await create_task(http, project["id"], title="The run's task")
    log = tmp_path / "stderr.txt"
    async with kanban_mcp_client(board.url, log, KANBAN_MCP_TOOLS="full", KANBAN_LOG_LEVEL="info") as client:
        assert [tool.name for tool in await client.list_tools()] == list(FULL_TOOLS)
    assert f"POST {board.url}/mcp" not in log.read_text()
    run_env = {"KANBAN_PROJECT_ID": str(project["id"]), "KANBAN_TASK_ID": str(parent["id"])}
    async with kanban_mcp_client(board.url, log, **run_env) as client:
        made = await call(client, "create_task", title="A subtask")  # the run's project and task
    assert made["parent_id"] == parent["id"] and made["project_id"] == project["id"]


async def exchange(argv: list[str], api_url: str, payload: bytes, answers: int, stderr: Path) -> list[dict]:
    """Start `argv`, write `payload` at once, read `answers` lines, close stdin: the answers.
    Its stderr goes to the file `stderr`."""
    with stderr.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=REPO, env=clean_env(KANBAN_API_URL=api_url),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=errors,
        )  # fmt: skip
    try:
        process.stdin.write(payload)
        await process.stdin.drain()
        read = [json.loads(await asyncio.wait_for(process.stdout.readline(), 60)) for _ in range(answers)]
        process.stdin.close()
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return read


async def test_messages_read_with_the_first_are_served_in_process_too(tmp_path: Path):
    """The client's first lines arrive in one read; the in-process server gets them all."""
    stderr = tmp_path / "stderr.txt"
    answers = await exchange(
        [KANBAN, "mcp"], "http://127.0.0.1:9", lines(INITIALIZE, INITIALIZED, TOOLS_LIST), 2, stderr
    )
    assert [a["id"] for a in answers] == [1, 2]
    assert [t["name"] for t in answers[1]["result"]["tools"]] == list(CORE_TOOLS)
    assert stderr.read_text() == ""


async def test_the_bridge_answers_before_importing_the_mcp_sdk(live_server, tmp_path: Path):
    """What `kanban mcp` imports until it has answered initialize and tools/list: the standard
    library and httpx, none of the MCP SDK (most of the in-process server's start-up)."""
    argv = [sys.executable, "-X", "importtime", KANBAN, "mcp"]
    payload = lines(INITIALIZE, INITIALIZED, TOOLS_LIST) + b"not json\n"
    answers = await exchange(argv, live_server.url, payload, 3, tmp_path / "stderr.txt")
    by_id = {answer["id"]: answer for answer in answers}
    assert [t["name"] for t in by_id[2]["result"]["tools"]] == list(CORE_TOOLS)
    assert by_id[None]["error"]["code"] == -32700  # the line that is not JSON
    report = (tmp_path / "stderr.txt").read_text().splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in report if line.startswith("import time:")}
    assert "mcp_servers.stdio_bridge" in imported and "httpx" in imported
    assert not sorted(name for name in imported if name.split(".")[0] in SDK or name in SDK)
    assert [line for line in report if not line.startswith("import time:")] == []


async def _bridged_kanban_mcp(url: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        KANBAN, "mcp", cwd=REPO, env=clean_env(KANBAN_API_URL=url),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    process.stdin.write(lines(INITIALIZE, INITIALIZED, TOOLS_LIST))
    await process.stdin.drain()
    for expected in (1, 2):
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 60))["id"] == expected
    return process


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "stdin closed"])
async def test_the_bridge_stops_cleanly(live_server, how):
    code, stderr = await stop(await _bridged_kanban_mcp(live_server.url), how)
    assert code == (130 if how == "SIGINT" else 0), (code, stderr)
    assert stderr == "", stderr

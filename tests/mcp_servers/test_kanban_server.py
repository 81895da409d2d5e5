"""The board's MCP server with a real MCP client, over stdio (subprocess) and HTTP (/mcp)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_servers.kanban_server import CORE_TOOLS, FULL_TOOLS, KanbanAPI, build_server
from mcp_servers.knowledge_tools import KNOWLEDGE_TOOLS
from tests.backend.factories import create_project, create_task
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stdio_client(api_url: str, **env: str) -> Client:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    return Client(
        StdioTransport(
            command=sys.executable,
            args=["-m", "mcp_servers.kanban_server"],
            env={**clean, "KANBAN_API_URL": api_url, "FASTMCP_SHOW_SERVER_BANNER": "false", **env},
            cwd=REPO,
        )
    )


@pytest.fixture(params=["stdio", "http"])
def mcp_client(request, live_server):
    if request.param == "stdio":
        return stdio_client(live_server.url, KANBAN_MCP_TOOLS="full")
    return Client(f"{live_server.url}/mcp")


async def call(client: Client, tool: str, **arguments):
    result = await client.call_tool(tool, arguments)
    return result.data if result.data is not None else json.loads(result.content[0].text)


async def error_of(client: Client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, f"{tool} should have failed"
    return result.content[0].text


async def test_tools_over_both_transports(mcp_client, live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    async with mcp_client as client:
        names = {tool.name for tool in await client.list_tools()}
        assert set(CORE_TOOLS) <= names

        projects = await call(client, "list_projects")
        assert any(p["id"] == project["id"] for p in projects)
        made = await call(client, "create_task", title="From MCP", description="desc", project=project["name"])
        assert made["short_id"].startswith(project["key"] + "-") and made["status"] == "todo"
        second = await call(
            client,
            "create_task",
            title="Child",
            project=str(project["id"]),
            parent=made["short_id"],
            status="needs_review",
        )
        assert second["parent_id"] == made["id"]

        listed = await call(client, "list_tasks", project=project["key"], status="todo", query="from")
        assert [t["short_id"] for t in listed] == [made["short_id"]]
        got = await call(client, "get_task", task=made["short_id"])
        assert got["title"] == "From MCP" and got["run"] is None
        updated = await call(
            client, "update_task", task=str(made["id"]), title="Renamed", labels="a, b", result="It worked"
        )
        assert (updated["title"], updated["labels"], updated["result"]) == ("Renamed", ["a", "b"], "It worked")
        moved = await call(client, "move_task", task=made["short_id"], status="needs_review", before=second["short_id"])
        assert moved["status"] == "needs_review"
        result = await call(client, "get_task_result", task=made["short_id"])
        assert result["result"] == "It worked" and result["status"] == "needs_review"
        waited = await call(client, "wait_for_task", task=made["short_id"], timeout=5)
        assert waited["status"] == "needs_review" and waited["timed_out"] is False

        resource = await client.read_resource(f"kanban://projects/{project['id']}/board")
        assert "Renamed" in resource[0].text and "## Review" in resource[0].text

        # Error paths come back as tool errors with a message, the server keeps working.
        assert "No task 'NOPE-1'" in await error_of(client, "get_task", task="NOPE-1")
        assert "Task 99999999 not found" in await error_of(client, "get_task", task="99999999")
        assert "status must be one of" in await error_of(client, "move_task", task=made["short_id"], status="doing")
        assert "No project 'ghost'" in await error_of(client, "create_task", title="x", project="ghost")
        assert "title" in await error_of(client, "create_task", title="", project=project["name"])
        assert "Name the project" in await error_of(client, "create_task", title="x")
        assert (
            "no active run" in (await error_of(client, "cancel_run", task=made["short_id"]))
            if "cancel_run" in names
            else True
        )
        assert await call(client, "list_projects")


async def test_backend_unreachable_is_a_tool_error():
    async with stdio_client("http://127.0.0.1:9") as client:
        message = await error_of(client, "list_projects")
    assert "unreachable" in message and "KANBAN_API_URL" in message


async def test_schemas_have_no_enums_and_the_core_profile_stays_small(capsys):
    for profile, expected in (("core", CORE_TOOLS), ("full", FULL_TOOLS)):
        async with Client(build_server(KanbanAPI("http://127.0.0.1:9"), tools=profile)) as client:
            tools = await client.list_tools()
        assert [t.name for t in tools] == list(expected)
        listing = json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools])
        assert '"enum"' not in listing
        # Tokens measured as the characters of the tools/list JSON (name, description, input and
        # output schemas, as a client receives them) divided by 4, the usual rate for English
        # and JSON with Claude's tokenizer.
        tokens = len(listing) // 4
        with capsys.disabled():
            print(f"\nkanban MCP profile {profile}: {len(tools)} tools, ~{tokens} tokens of tool schemas")
        if profile == "core":
            assert set(KNOWLEDGE_TOOLS) <= {t.name for t in tools}  # the lean profile includes them
            assert tokens < 2_500
    async with Client(build_server(KanbanAPI("http://127.0.0.1:9"), tools="get_task,run_task")) as client:
        assert [t.name for t in await client.list_tools()] == ["get_task", "run_task"]


async def test_mcp_endpoint_needs_the_token(tmp_path):
    from backend.main import create_app
    from tests.conftest import LiveServer, free_port, make_settings

    port = free_port()
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, api_token="t0ken", port=port)
    async with LiveServer(create_app(settings), port) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post("/mcp", json={})).status_code == 401
        async with Client(f"{server.url}/mcp", auth="t0ken") as client:
            assert await call(client, "list_projects") == []
    drop()


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch):
    for name, value in fake_anthropic.env(max_retries=0, tool_search=False).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


async def test_two_way_flow_create_run_wait_result(live_server, agent_env: FakeAnthropic):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    async with Client(f"{live_server.url}/mcp") as client:
        marker = "[two-way-flow]"
        agent_env.add_script(
            marker,
            [Turn.tool_use("Write", {"file_path": "notes.md", "content": "# Notes\n"}), Turn.text("Added notes.md")],
        )
        made = await call(
            client,
            "create_task",
            title="Write notes",
            description=f"Please {marker}",
            project=project["name"],
            run=True,
        )
        assert made["run"]["status"] == "queued" and made["run"]["attempt"] == 1
        waited = await call(client, "wait_for_task", task=made["short_id"], timeout=120)
        assert waited["status"] == "needs_review", waited
        result = await call(client, "get_task_result", task=made["short_id"])
    assert result["result"] == "Added notes.md"
    assert result["run"]["status"] == "succeeded" and result["run"]["attempt"] == 1
    assert result["run"]["run_id"] == made["run"]["run_id"]
    assert result["run"]["diff"] == {"files": 1, "additions": 1, "deletions": 0}
    assert result["run"]["cost_usd"] > 0


async def test_an_agent_splits_its_task_through_the_kanban_tools(live_server, agent_env: FakeAnthropic):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        task = await create_task(http, project["id"], title="Big job")
        marker = f"[{task['short_id']}]"
        agent_env.add_script(
            marker,
            [
                Turn.mcp("kanban", "create_task", {"title": "Part one", "description": "split off"}),
                Turn.mcp("kanban", "update_task", {"result": "Split into Part one"}),
                Turn.text("Done splitting"),
            ],
        )
        run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
        for _ in range(600):
            current = (await http.get(f"/api/runs/{run['id']}")).json()
            if current["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        assert current["status"] == "succeeded", current["error"]
        children = (await http.get("/api/tasks", params={"parent_id": task["id"]})).json()["items"]
        assert [(c["title"], c["created_by_run_id"]) for c in children] == [("Part one", run["id"])]
        events = (await http.get(f"/api/runs/{run['id']}/events", params={"limit": 500})).json()["items"]
        tool_uses = [e["payload"]["name"] for e in events if e["type"] == "tool_use"]
        assert "mcp__kanban__create_task" in tool_uses
        assert (await http.get(f"/api/tasks/{task['id']}")).json()["result"] == "Split into Part one"


async def test_well_known_paths_answer_404_json_not_the_board_page(tmp_path):
    """An MCP client that gets a 401 looks for OAuth metadata under /.well-known/; the board's
    page (the single-page app's fallback for unknown paths) is not JSON and broke its parser."""
    from backend.config import Settings
    from backend.main import create_app

    build = tmp_path / "build"
    build.mkdir()
    (build / "index.html").write_text("<!doctype html><title>board</title>")
    app = create_app(Settings(data_dir=tmp_path / "data", api_token="t0ken", frontend_dir=build))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert (await http.post("/mcp", json={})).status_code == 401
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            for method in ("GET", "HEAD"):
                response = await http.request(method, path)
                assert response.status_code == 404, (method, path)
                assert response.headers["content-type"] == "application/json"
            detail = (await http.get(path)).json()["detail"]
            assert "Authorization: Bearer" in detail and "t0ken" not in detail
        page = await http.get("/projects/1")  # the board's own routes still get the page
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")


KANBAN = str(Path(sys.executable).with_name("kanban"))


def kanban_mcp_client(api_url: str, log_file: Path, **env: str) -> Client:
    """`kanban mcp` as Claude Code starts it, its stderr going to `log_file`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KANBAN_", "FASTMCP_"))}
    return Client(
        StdioTransport(
            command=KANBAN, args=["mcp"], env={**clean, "KANBAN_API_URL": api_url, **env}, cwd=REPO, log_file=log_file
        )
    )


async def test_stdio_server_is_quiet_reports_its_version_and_takes_strict_booleans(live_server, tmp_path):
    from backend import __version__

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    log = tmp_path / "stderr.txt"
    async with kanban_mcp_client(live_server.url, log) as client:
        assert client.server_info.version == __version__
        assert await call(client, "list_projects")
        assert "No task" in await error_of(client, "get_task", task="NOPE-1")
        for bad in ("yes", "1", 1, "on", None):
            message = await error_of(client, "create_task", title="Strict", project=project["name"], run=bad)
            assert "must be true or false" in message, (bad, message)
        made = await call(client, "create_task", title="Strict", project=project["name"], run="false")
        assert "run" not in made
        listed = await call(client, "list_tasks", project=project["name"], query="Strict")
        assert [t["id"] for t in listed] == [made["id"]]  # nothing was created by the refused calls
    assert log.read_text() == ""  # Claude Code shows every stderr line of the server as an error

    async with kanban_mcp_client(live_server.url, log, KANBAN_LOG_LEVEL="debug") as client:
        await call(client, "list_projects")
    assert "kanban mcp: DEBUG" in log.read_text()


async def _initialized_kanban_mcp() -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KANBAN_", "FASTMCP_"))}
    process = await asyncio.create_subprocess_exec(
        KANBAN,
        "mcp",
        cwd=REPO,
        env={**clean, "KANBAN_API_URL": "http://127.0.0.1:9"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    process.stdin.write((json.dumps(initialize) + "\n").encode())
    await process.stdin.drain()
    answer = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
    assert answer["id"] == 1 and "result" in answer
    return process


async def stop(process: asyncio.subprocess.Process, how: str) -> tuple[int, str]:
    """Stop `kanban mcp` with a signal or by closing its stdin: its exit code and stderr."""
    if how == "stdin closed":
        process.stdin.close()
    else:
        process.send_signal(getattr(signal, how))
    try:
        code = await asyncio.wait_for(process.wait(), 5)  # the process keeps its stdin open
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return code, (await process.stderr.read()).decode()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "stdin closed"])
async def test_stdio_server_stops_cleanly(how):
    code, stderr = await stop(await _initialized_kanban_mcp(), how)
    assert code in (0, 130), (code, stderr)
    assert "Traceback" not in stderr and stderr == "", stderr


async def test_wait_for_task_survives_a_board_restart(tmp_path):
    from backend.main import create_app
    from tests.conftest import LiveServer, free_port, make_settings

    port = free_port()
    settings, drop = await asyncio.to_thread(
        make_settings, "sqlite", tmp_path, port=port, run_agents=False, sse_heartbeat_seconds=1
    )
    board = LiveServer(create_app(settings), port)
    await board.__aenter__()
    try:
        async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
            project = await create_project(http)
            task = await create_task(http, project["id"], status="in_progress")
        async with Client(build_server(KanbanAPI(board.url))) as client:
            waiting = asyncio.create_task(call(client, "wait_for_task", task=task["short_id"], timeout=60))
            await asyncio.sleep(1)  # subscribed
            await board.__aexit__(None, None, None)  # drops the event stream mid-wait
            await asyncio.sleep(1)  # the board is down for a while
            assert not waiting.done(), waiting.result()
            board = LiveServer(create_app(settings), port)
            await board.__aenter__()
            await asyncio.sleep(1)
            async with httpx.AsyncClient(base_url=board.url, timeout=30) as http:
                response = await http.post(f"/api/tasks/{task['id']}/move", json={"status": "needs_review"})
                assert response.status_code == 200, response.text
            waited = await asyncio.wait_for(waiting, 30)
    finally:
        await board.__aexit__(None, None, None)
        drop()
    assert (waited["status"], waited["timed_out"]) == ("needs_review", False)


async def test_wait_for_task_honours_its_timeout_while_the_board_is_down(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        task = await create_task(http, project["id"], status="in_progress")

    class Outage(httpx.AsyncBaseTransport):
        """The real board for plain calls until the stream is asked for, then nothing answers."""

        def __init__(self) -> None:
            self.real = httpx.AsyncHTTPTransport()
            self.down = False

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/events":
                self.down = True
            if self.down and not request.url.path.startswith(f"/api/tasks/{task['id']}"):
                raise httpx.ConnectError("connection refused", request=request)
            return await self.real.handle_async_request(request)

    async with Client(build_server(KanbanAPI(live_server.url, transport=Outage()))) as client:
        started = asyncio.get_running_loop().time()
        waited = await call(client, "wait_for_task", task=task["short_id"], timeout=2)
        elapsed = asyncio.get_running_loop().time() - started
    assert waited["timed_out"] is True and waited["status"] == "in_progress"
    assert 2 <= elapsed < 5


async def test_a_hung_board_is_reported_within_seconds():
    """A server that accepts connections and never answers."""
    connections = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the client gives up

    hung = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    try:
        async with stdio_client(f"http://127.0.0.1:{port}") as client:
            started = asyncio.get_running_loop().time()
            message = await error_of(client, "list_projects")
            elapsed = asyncio.get_running_loop().time() - started
    finally:
        hung.close()
        for writer in connections:
            writer.close()
    assert connections, "the client never connected"
    assert "did not answer within" in message and "kanban serve" in message, message
    assert elapsed < 10, elapsed


def test_kanban_mcp_imports_only_what_serving_the_tools_needs():
    """Claude Code gives a stdio server about two seconds before its first turn; `make bench
    BENCH_ARGS=mcp` measures the start-up, this keeps the board's own weight out of it when
    the board is down and the tools are served in-process (test_stdio_bridge.py checks what the
    bridge to a running board imports)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KANBAN_", "FASTMCP_"))}
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-X", "importtime", KANBAN, "mcp"],
        input=json.dumps(initialize).encode() + b"\n",
        capture_output=True,
        cwd=REPO,
        env={**clean, "KANBAN_API_URL": "http://127.0.0.1:9"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines() if line.startswith("import time:")
    }
    assert "mcp_servers.kanban_server" in imported
    board = (
        "backend.config",
        "backend.main",
        "backend.db",
        "mcp_client",
        "sqlalchemy",
        "fastapi",
        "claude_agent_sdk",
        "alembic",
    )
    assert not sorted(name for name in imported if name.startswith(board))


async def test_dependencies_through_the_tools(mcp_client, live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    async with mcp_client as client:
        first = await call(client, "create_task", title="First", project=project["key"])
        second = await call(client, "create_task", title="Second", project=project["key"])
        third = await call(
            client,
            "create_task",
            title="Third",
            project=project["key"],
            blocked_by=f"{first['short_id']}, {second['id']}",
            start_when_unblocked=True,
        )
        assert third["blocked"] is True and third["start_when_unblocked"] is True
        assert third["blocked_by"] == [f"{first['short_id']} is in To Do", f"{second['short_id']} is in To Do"]

        cycle = await error_of(client, "update_task", task=first["short_id"], blocked_by=third["short_id"])
        assert f"{first['short_id']} → {third['short_id']} → {first['short_id']}" in cycle
        listed = await call(client, "list_tasks", project=project["key"], query="Third")
        assert listed[0]["blocked_by"] == third["blocked_by"]
        assert "is blocked" in await error_of(client, "run_task", task=third["short_id"])

        paused = await call(client, "update_task", task=third["short_id"], start_when_unblocked=False)
        assert "start_when_unblocked" not in paused
        await call(client, "move_task", task=first["short_id"], status="done")
        got = await call(client, "get_task", task=third["short_id"])
        assert got["blocked_by"] == [f"{first['short_id']} (done)", f"{second['short_id']} is in To Do"]
        cleared = await call(client, "update_task", task=third["short_id"], blocked_by="none")
        assert "blocked_by" not in cleared and "blocked" not in cleared
        assert "must be true or false" in await error_of(
            client, "update_task", task=third["short_id"], start_when_unblocked="yes"
        )


async def test_start_workflow_then_wait_for_its_card_returns_the_final_result(live_server, agent_env: FakeAnthropic):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    folder = Path(project["workspace_path"]) / ".kanban" / "workflows"
    folder.mkdir(parents=True)
    (folder / "two-steps.yaml").write_text(
        "name: two-steps\ntitle: Two steps\ninputs:\n  topic:\n    type: string\nsteps:\n"
        "  - id: draft\n    title: Draft\n    prompt: '[mcp-wf-draft] Draft about {{topic}}'\n    review: auto\n"
        "  - id: final\n    title: Final\n    needs: [draft]\n    review: auto\n"
        "    prompt: '[mcp-wf-final] Finish: {{steps.draft.result}}'\n"
    )
    agent_env.add_script("[mcp-wf-draft]", [Turn.text("a draft about owls")])
    agent_env.add_script("[mcp-wf-final]", [Turn.text("The final answer about owls")])
    async with Client(f"{live_server.url}/mcp") as client:
        listed = await call(client, "list_workflows", project=project["key"])
        (two_steps,) = [t for t in listed if t["name"] == "two-steps"]
        assert two_steps["steps"] == "draft → final" and two_steps["inputs"] == ["topic: string*"]
        assert {"research", "feature", "prototype", "bugfix"} <= {t["name"] for t in listed}
        wrong = await error_of(client, "start_workflow", template="two-steps", inputs={}, project=project["key"])
        assert "topic" in wrong
        started = await call(
            client, "start_workflow", template="two-steps", inputs={"topic": "owls"}, project=project["key"]
        )
        assert started["status"] == "in_progress" and len(started["steps"]) == 2
        waited = await call(client, "wait_for_task", task=started["short_id"], timeout=120)
    assert waited["status"] == "done" and not waited["timed_out"], waited
    assert waited["result"] == "The final answer about owls"
    final_prompt = next(r for r in agent_env.main_requests() if "[mcp-wf-final]" in r.all_text()).all_text()
    assert "Finish: a draft about owls" in final_prompt

"""The repository's `.mcp.json` as shipped, with the real bundled Claude Code CLI (`claude -p`)
run offline against the fake Messages API, from a subfolder of a repository laid out like
this one (the file copied, `.venv/bin/kanban` linked to the installed command)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mcp_servers.kanban_server import CORE_TOOLS
from tests.backend.factories import create_project
from tests.fixtures.fake_anthropic import BUNDLED_CLI, FakeAnthropic, Turn

REPO = Path(__file__).resolve().parents[2]
KANBAN = Path(sys.executable).with_name("kanban")
KANBAN_TOOLS = {f"mcp__kanban__{name}" for name in CORE_TOOLS}
RUNS = 10

pytestmark = [
    pytest.mark.skipif(not os.access(BUNDLED_CLI, os.X_OK), reason="bundled Claude Code CLI not available"),
    pytest.mark.skipif(not os.access(KANBAN, os.X_OK), reason=f"no installed kanban command at {KANBAN}"),
]


@pytest.fixture
def subfolder(tmp_path: Path) -> Path:
    """A git repository with the shipped `.mcp.json` and a `.venv/bin/kanban`; a folder deep in it."""
    repo = tmp_path / "checkout"
    (repo / ".venv" / "bin").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(REPO / ".mcp.json", repo / ".mcp.json")
    (repo / ".venv" / "bin" / "kanban").symlink_to(KANBAN)
    deep = repo / "frontend" / "src" / "lib"
    deep.mkdir(parents=True)
    return deep


def claude_p(fake: FakeAnthropic, cwd: Path, prompt: str, *extra_args: str, **env: str) -> dict:
    """`claude -p PROMPT` in `cwd`; its JSON result."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    completed = subprocess.run(
        [BUNDLED_CLI, "-p", prompt, "--output-format", "json", *extra_args],
        cwd=cwd,
        env={**base, **fake.env(tool_search=False, max_retries=0), **env},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


async def test_kanban_tools_are_there_on_the_first_turn_from_a_subfolder(
    fake_anthropic: FakeAnthropic, subfolder: Path, tmp_path: Path, capsys
):
    """With the board running, as in use: `kanban mcp` is then a bridge to the board's /mcp
    (tests/mcp_servers/test_stdio_bridge.py covers the in-process fallback without a board)."""
    from backend.main import create_app
    from tests.conftest import LiveServer, free_port, make_settings

    markers = [f"[mcp-json-{i}]" for i in range(RUNS)]
    for marker in markers:
        fake_anthropic.add_script(marker, [Turn.text("ok")])

    def one(marker: str, api_url: str) -> float:
        started = time.monotonic()
        result = claude_p(fake_anthropic, subfolder, f"What can you do? {marker}", KANBAN_API_URL=api_url)
        assert result["is_error"] is False, result
        return time.monotonic() - started

    port = free_port()
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, port=port, run_agents=False)
    async with LiveServer(create_app(settings), port) as server:
        # One after the other: each CLI and its server get the machine's cores as they would in use.
        started = time.monotonic()
        durations = [await asyncio.to_thread(one, marker, server.url) for marker in markers]
        elapsed = time.monotonic() - started
    drop()
    missing = {}
    for marker in markers:
        first = fake_anthropic.main_requests(key=marker)[0]
        offered = {name for name in first.tool_names if name.startswith("mcp__kanban__")}
        if offered != KANBAN_TOOLS:
            missing[marker] = sorted(KANBAN_TOOLS - offered)
    with capsys.disabled():
        print(
            f"\n{RUNS} × claude -p from a subfolder, one after the other: {elapsed:.1f} s (each {min(durations):.1f}–{max(durations):.1f} s)"
        )
    assert not missing, f"{len(missing)} of {RUNS} first turns without the kanban tools: {sorted(missing)}"


async def test_kanban_api_url_from_the_environment_reaches_the_server(
    fake_anthropic: FakeAnthropic, subfolder: Path, tmp_path: Path
):
    """`.mcp.json` sets no KANBAN_API_URL: the one in Claude Code's environment takes effect."""
    from backend.main import create_app
    from tests.conftest import LiveServer, free_port, make_settings

    port = free_port()
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, port=port)
    async with LiveServer(create_app(settings), port) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            project = await create_project(http)
        marker = "[mcp-json-env]"
        fake_anthropic.add_script(marker, [Turn.mcp("kanban", "list_projects", {}), Turn.text("listed")])
        result = await asyncio.to_thread(
            claude_p,
            fake_anthropic,
            subfolder,
            f"Which projects are on the board? {marker}",
            "--allowedTools",
            "mcp__kanban__list_projects",
            KANBAN_API_URL=server.url,
        )
    drop()
    assert result["is_error"] is False, result
    last = fake_anthropic.main_requests(key=marker)[-1]
    (answer,) = last.tool_results()
    text = last.tool_result_text(answer)
    assert not answer.get("is_error"), text
    assert project["name"] in text

"""Agent runs end to end: the real Claude Code CLI against the fake Messages API, real git."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from backend.runs.schemas import RunEventRead
from tests.backend.factories import create_project, create_task
from tests.backend.sse import SSEReader
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch):
    """Point the server's agents at the fake API (the orchestrator passes the environment on)."""
    for name, value in fake_anthropic.env(max_retries=0).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


def git(path: str, *args: str) -> str:
    return subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, check=True).stdout.strip()


async def wait_for_status(client: httpx.AsyncClient, task_id: int, statuses: set[str], timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        runs = (await client.get(f"/api/tasks/{task_id}/runs")).json()
        if runs and runs[0]["status"] in statuses:
            return (await client.get(f"/api/runs/{runs[0]['id']}")).json()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run did not reach {statuses}: {runs[:1]}")
        await asyncio.sleep(0.1)


async def all_events(client: httpx.AsyncClient, run_id: int) -> list[dict]:
    events, after = [], 0
    while True:
        page = (await client.get(f"/api/runs/{run_id}/events", params={"after_seq": after, "limit": 50})).json()
        events += page["items"]
        if page["next_after_seq"] is None:
            return events
        after = page["next_after_seq"]


async def test_run_review_request_changes_and_approve(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Write a greeting", description="Create hello.txt")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [
            Turn.tool_use("Write", {"file_path": "hello.txt", "content": "hello\n"}),
            Turn.tool_use("Bash", {"command": "echo ok > out.txt"}),
            Turn.text("Wrote hello.txt and out.txt"),
        ],
    )
    response = await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": f"Marker {marker}"})
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "queued" and run["reason"] == "start" and run["attempt"] == 1
    refused = await client.post(f"/api/tasks/{task['id']}/runs", json={})
    assert refused.status_code == 409 and "(attempt 1, " in refused.json()["detail"]

    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    assert run["cost_usd"] > 0 and run["turns"] == 3
    assert run["input_tokens"] > 0 and run["output_tokens"] > 0
    assert run["branch"].startswith(f"kanban/{task['short_id'].lower()}-write-a-greeting")

    board = (await client.get(f"/api/projects/{project['id']}/board")).json()
    (card,) = [card for column in board["columns"] for card in column["tasks"] if card["id"] == task["id"]]
    assert card["run"]["id"] == run["id"] and card["run"]["status"] == "succeeded"
    assert card["run"]["cost_usd"] == run["cost_usd"]
    assert run["has_changes"] is True and card["run"]["has_changes"] is True
    task_now = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert task_now["status"] == "needs_review"
    assert task_now["result"] == "Wrote hello.txt and out.txt"

    repo = project["workspace_path"]
    assert git(repo, "log", "-1", "--format=%s", run["branch"]) == "kanban: Write a greeting (attempt 1)"
    assert git(repo, "show", f"{run['branch']}:hello.txt") == "hello"

    diff = (await client.get(f"/api/tasks/{task['id']}/diff")).json()
    assert {f["path"]: f["status"] for f in diff["files"]} == {"hello.txt": "added", "out.txt": "added"}
    assert diff["stats"]["additions"] == 2

    events = await all_events(client, run["id"])
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    types = [e["type"] for e in events]
    assert "init" in types and types.count("tool_use") == 2 and types.count("tool_result") == 2
    assert types.index("init") < types.index("tool_use") < types.index("result")
    assert events[-1]["type"] == "status" and events[-1]["payload"]["status"] == "succeeded"

    # Request changes: a new run resumes the same Claude session with the feedback.
    agent_env.add_script(
        run["session_id"],
        [
            Turn.tool_use("Write", {"file_path": "hello.txt", "content": "hello world\n"}),
            Turn.text("Now greets the world"),
        ],
    )
    response = await client.post(f"/api/tasks/{task['id']}/request-changes", json={"feedback": "Greet the world"})
    assert response.status_code == 202, response.text
    second = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert second["status"] == "succeeded", second["error"]
    assert second["attempt"] == 2 and second["session_id"] == run["session_id"]
    assert second["reason"] == "changes_requested"
    assert (await client.get(f"/api/runs/{second['id']}")).json()["prompt"] == "Greet the world"
    resumed = [r for r in agent_env.main_requests() if "Greet the world" in r.all_text()]
    assert resumed and "Write a greeting" in resumed[0].all_text()  # the earlier conversation came along
    assert git(repo, "show", f"{run['branch']}:hello.txt") == "hello world"

    # Approve: merged into the base branch, task done, worktree gone, branch kept. A slow
    # merge (a git hook that takes its time on the base branch's update) holds up no writer.
    merging = Path(repo) / ".git" / "merging"
    hook = Path(git(repo, "rev-parse", "--git-common-dir"))
    hook = (hook if hook.is_absolute() else Path(repo) / hook) / "hooks" / "reference-transaction"
    hook.write_text(f'#!/bin/sh\nif [ "$1" = prepared ]; then touch "{merging}"; sleep 3; fi\n')
    hook.chmod(0o755)
    approving = asyncio.create_task(client.post(f"/api/tasks/{task['id']}/approve"))
    async with asyncio.timeout(30):
        while not merging.exists():
            await asyncio.sleep(0.05)
    began = asyncio.get_running_loop().time()
    await create_task(client, project["id"], title="Written while the merge runs")
    assert asyncio.get_running_loop().time() - began < 2.5 and not approving.done()
    response = await approving
    hook.unlink()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    assert git(repo, "show", f"{project['base_branch']}:hello.txt") == "hello world"
    assert git(repo, "branch", "--list", run["branch"]) != ""
    assert not any(run["branch"] in line for line in git(repo, "worktree", "list").splitlines())


async def test_a_run_that_changed_nothing_has_nothing_to_merge(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Look around", description="[nothing-to-merge]")
    agent_env.add_script("[nothing-to-merge]", [Turn.text("Everything is already as it should be.")])
    queued = (await client.post(f"/api/tasks/{task['id']}/runs", json={})).json()
    assert queued["has_changes"] is False
    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    assert run["head_commit"] == run["base_commit"] and run["has_changes"] is False
    board = (await client.get(f"/api/projects/{project['id']}/board")).json()
    (card,) = [card for column in board["columns"] for card in column["tasks"] if card["id"] == task["id"]]
    assert card["status"] == "needs_review" and card["run"]["has_changes"] is False
    assert (await client.get(f"/api/tasks/{task['id']}/diff")).json()["files"] == []

    repo = project["workspace_path"]
    base_before = git(repo, "rev-parse", project["base_branch"])
    response = await client.post(f"/api/tasks/{task['id']}/approve")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    assert git(repo, "rev-parse", project["base_branch"]) == base_before


async def test_approval_answered_through_the_api(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Needs approval")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [Turn.tool_use("Bash", {"command": "python3 -c \"open('made.txt','w').write('x')\""}), Turn.text("Ran python")],
    )
    run = (await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    run = await wait_for_status(client, task["id"], {"waiting_approval", "succeeded", "failed"})
    assert run["status"] == "waiting_approval", run
    approval = run["pending_approvals"][0]
    assert approval["tool_name"] == "Bash"
    response = await client.post(f"/api/approvals/{approval['id']}", json={"decision": "always_allow"})
    assert response.status_code == 200, response.text
    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    assert "Bash" in (await client.get(f"/api/projects/{project['id']}")).json()["allowed_tools"]
    assert (await client.post(f"/api/approvals/{approval['id']}", json={"decision": "deny"})).status_code == 409


async def test_cancel_stops_the_agent_within_five_seconds(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Long job")
    marker = f"[{task['short_id']}]"
    hang = Turn.hang(120)
    sleeper = f"sleep 300.{uuid.uuid4().int % 10**6:06d}"  # this test's own: other programs sleep too
    agent_env.add_script(marker, [Turn.tool_use("Bash", {"command": f"{sleeper} & echo started"}), hang])
    run = (await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    await asyncio.to_thread(hang.wait_started, 60)
    started = asyncio.get_running_loop().time()
    response = await client.post(f"/api/runs/{run['id']}/cancel")
    assert response.status_code == 200
    run = await wait_for_status(client, task["id"], {"cancelled", "failed", "succeeded"}, timeout=10)
    assert run["status"] == "cancelled"
    assert asyncio.get_running_loop().time() - started < 5
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "todo"
    # Nothing the agent started survives: not the CLI, not its `sleep 300`.
    await asyncio.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-x", "-f", sleeper], capture_output=True, text=True).stdout.split()
    assert leftovers == [], leftovers


async def test_missing_credentials_fail_fast_with_a_clear_message(client, monkeypatch, tmp_path):
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CONFIG_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    project = await create_project(client)
    task = await create_task(client, project["id"])
    await client.post(f"/api/tasks/{task['id']}/runs")
    run = await wait_for_status(client, task["id"], {"failed", "succeeded"}, timeout=20)
    assert run["status"] == "failed"
    assert "ANTHROPIC_API_KEY" in run["error"]
    assert "/_bundled/claude auth login`" in run["error"]  # the CLI the board runs: no `claude` on PATH needed
    card = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert card["status"] == "todo"
    status = (await client.get("/api/agents/status")).json()
    assert status["runs_agents"] and not status["can_run"] and status["problem"] == run["error"]
    assert status["login_command"].endswith("/_bundled/claude auth login")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-shown")
    status = (await client.get("/api/agents/status")).json()
    assert status["can_run"] and status["problem"] is None and "sk-test" not in str(status)


async def test_run_stream_replays_from_last_event_id(live_server, agent_env: FakeAnthropic):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        task = await create_task(http, project["id"], title="Streamed")
        marker = f"[{task['short_id']}]"
        agent_env.add_script(marker, [Turn.text("All done")])
        run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
        async with http.stream("GET", f"/api/runs/{run['id']}/stream") as response:
            reader = SSEReader(response)
            seen = []
            while True:
                event = await asyncio.wait_for(reader.next(), 60)
                if event.event == "end":
                    break
                seen.append(int(event.id))
                # Each message's data is what the OpenAPI document says: a RunEventRead.
                item = RunEventRead.model_validate_json(event.data)
                assert (item.seq, item.type.value) == (int(event.id), event.event)
        assert seen == list(range(1, len(seen) + 1))
        started = time.monotonic()
        async with http.stream("GET", f"/api/runs/{run['id']}/stream", headers={"Last-Event-ID": "2"}) as response:
            reader = SSEReader(response)
            replay = []
            while (event := await asyncio.wait_for(reader.next(), 10)).event != "end":
                replay.append(int(event.id))
        assert replay == seen[2:]
        # A finished run's replay ends at once, not after the followers' one-second poll.
        assert time.monotonic() - started < 0.8

"""A run's cost is its own, also when it continues a session; the task shows its total.

The real Claude CLI against the fake Messages API, which reports the same usage for every
reply: the CLI prices each reply alike, so a run's cost is proportional to its replies. On
resume the CLI reports the session's total cost (its token counts are the run's own)."""

from __future__ import annotations

import pytest

from tests.backend import test_runs
from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import all_events, wait_for_status
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

agent_env = test_runs.agent_env  # the fixture: agents pointed at the fake Messages API
USAGE = {"input_tokens": 1000, "output_tokens": 100}


async def test_each_run_costs_its_own_replies_and_the_task_sums_them(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Cost per run")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [
            Turn.tool_use("Write", {"file_path": "a.txt", "content": "a\n"}, usage=USAGE),
            Turn.tool_use("Bash", {"command": "echo b > b.txt"}, usage=USAGE),
            Turn.text("First version", usage=USAGE),
        ],
    )
    await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})
    first = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert first["status"] == "succeeded", first["error"]
    reply = first["cost_usd"] / 3
    assert reply > 0 and first["task_cost_usd"] == pytest.approx(first["cost_usd"])

    runs = [first]
    for feedback, turns in (
        (
            "Change a",
            [
                Turn.tool_use("Write", {"file_path": "a.txt", "content": "A\n"}, usage=USAGE),
                Turn.text("Changed", usage=USAGE),
            ],
        ),
        ("Once more", [Turn.text("Nothing to do", usage=USAGE)]),
    ):
        agent_env.add_script(first["session_id"], turns)
        response = await client.post(f"/api/tasks/{task['id']}/request-changes", json={"feedback": feedback})
        assert response.status_code == 202, response.text
        run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
        assert run["status"] == "succeeded", run["error"]
        assert run["session_id"] == first["session_id"]
        runs.append(run)

    second, third = runs[1], runs[2]
    assert second["cost_usd"] == pytest.approx(2 * reply)  # not attempt 1 + attempt 2
    assert third["cost_usd"] == pytest.approx(reply)
    assert [r["input_tokens"] for r in runs] == [3000, 2000, 1000]  # tokens were the run's own already
    assert third["task_cost_usd"] == pytest.approx(6 * reply)

    # The task's runs list: each run's own cost, and the task's total on the newest.
    listed = (await client.get(f"/api/tasks/{task['id']}/runs")).json()
    assert [r["cost_usd"] for r in listed] == pytest.approx([reply, 2 * reply, 3 * reply])
    assert [r["task_cost_usd"] for r in listed] == pytest.approx([6 * reply, 5 * reply, 3 * reply])
    board = (await client.get(f"/api/projects/{project['id']}/board")).json()
    (card,) = [card for column in board["columns"] for card in column["tasks"] if card["id"] == task["id"]]
    assert card["run"]["task_cost_usd"] == pytest.approx(6 * reply)  # the card and the run bar show it

    # The log's result says the same as the run; it keeps the session's total apart.
    result = next(e for e in await all_events(client, second["id"]) if e["type"] == "result")
    assert result["payload"]["cost_usd"] == pytest.approx(2 * reply)
    assert result["payload"]["session_cost_usd"] == pytest.approx(5 * reply)

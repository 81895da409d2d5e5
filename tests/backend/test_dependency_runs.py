"""A dependent's run with the real Claude Code CLI against the fake Messages API and a real git
repository: it starts by itself once its predecessor is approved, from a base branch that has
the predecessor's commits, and its prompt carries the predecessor's result, branch and commit."""

from __future__ import annotations

import os

from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import agent_env, git, wait_for_status
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

__all__ = ["agent_env"]  # the fixture, used by name


async def test_dependent_starts_from_the_predecessors_merged_work(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    first = await create_task(client, project["id"], title="Lay the foundation", description="[dep-first]")
    second = await create_task(
        client,
        project["id"],
        title="Build on it",
        description="[dep-second]",
        blocked_by=[first["id"]],
        start_when_unblocked=True,
    )
    agent_env.add_script(
        "[dep-first]",
        [
            Turn.tool_use("Write", {"file_path": "foundation.txt", "content": "laid\n"}),
            Turn.text("Laid foundation.txt"),
        ],
    )
    agent_env.add_script("[dep-second]", [Turn.text("Built on the foundation")])

    assert (await client.post(f"/api/tasks/{second['id']}/runs", json={})).status_code == 409  # blocked
    assert (await client.post(f"/api/tasks/{first['id']}/runs", json={})).status_code == 202
    run = await wait_for_status(client, first["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    assert (await client.get(f"/api/tasks/{second['id']}/runs")).json() == []  # in Review: not done yet

    response = await client.post(f"/api/tasks/{first['id']}/approve")
    assert response.status_code == 200, response.text
    repo = project["workspace_path"]
    merged = git(repo, "rev-parse", project["base_branch"])

    dependent = await wait_for_status(client, second["id"], {"succeeded", "failed"})
    assert dependent["status"] == "succeeded", dependent["error"]
    runs = (await client.get(f"/api/tasks/{second['id']}/runs")).json()
    assert len(runs) == 1
    # Its worktree branched from the base branch after the merge: the predecessor's file is there.
    porcelain = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    (worktree,) = [e.split("\n")[0].removeprefix("worktree ") for e in porcelain if dependent["branch"] in e]
    with open(os.path.join(worktree, "foundation.txt")) as handle:
        assert handle.read() == "laid\n"
    assert dependent["base_commit"] == merged
    assert git(repo, "merge-base", "--is-ancestor", run["head_commit"], dependent["branch"]) == ""

    (request,) = [r for r in agent_env.main_requests() if "[dep-second]" in r.all_text()][:1]
    text = request.all_text()
    assert f"{first['short_id']}: Lay the foundation" in text
    assert "Laid foundation.txt" in text  # the predecessor's result
    assert run["branch"] in text and run["head_commit"][:12] in text

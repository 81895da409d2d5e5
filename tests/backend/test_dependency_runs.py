"""A dependent's run with the real Claude Code CLI against the fake Messages API and a real git
repository: it starts by itself once its predecessor is approved, from a base branch that has
the predecessor's commits, and its prompt carries the predecessor's result, branch and commit.
A predecessor moved to Done by hand (not merged) still gives the dependent its commits."""

from __future__ import annotations

import os

from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import agent_env, git, wait_for_status
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

__all__ = ["agent_env"]  # the fixture, used by name


async def predecessor_that_wrote(
    client, agent_env: FakeAnthropic, project: dict, tag: str, path: str, content: str, **dependent: object
) -> tuple[dict, dict]:
    """Task `[<tag>-first]` whose agent writes `path` and its dependent `[<tag>-second]` (with
    `dependent`'s fields). Neither has run yet."""
    first = await create_task(client, project["id"], title=f"Write {path}", description=f"[{tag}-first]")
    second = await create_task(
        client,
        project["id"],
        title=f"Build on {path}",
        description=f"[{tag}-second]",
        blocked_by=[first["id"]],
        **dependent,
    )
    agent_env.add_script(
        f"[{tag}-first]", [Turn.tool_use("Write", {"file_path": path, "content": content}), Turn.text(f"Wrote {path}")]
    )
    return first, second


async def finished_run(client, task: dict) -> dict:
    """Start the task's run and wait for it to succeed."""
    assert (await client.post(f"/api/tasks/{task['id']}/runs", json={})).status_code == 202
    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    return run


async def test_dependent_starts_from_the_predecessors_merged_work(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    first, second = await predecessor_that_wrote(
        client, agent_env, project, "dep", "foundation.txt", "laid\n", start_when_unblocked=True
    )
    agent_env.add_script("[dep-second]", [Turn.text("Built on the foundation")])

    assert (await client.post(f"/api/tasks/{second['id']}/runs", json={})).status_code == 409  # blocked
    run = await finished_run(client, first)
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
    with open(os.path.join(worktree_of(repo, dependent["branch"]), "foundation.txt")) as handle:
        assert handle.read() == "laid\n"
    assert dependent["base_commit"] == merged
    assert git(repo, "rev-parse", dependent["branch"]) == merged  # merged already: nothing more merged in
    assert git(repo, "merge-base", "--is-ancestor", run["head_commit"], dependent["branch"]) == ""

    (request,) = [r for r in agent_env.main_requests() if "[dep-second]" in r.all_text()][:1]
    text = request.all_text()
    assert f"{first['short_id']}: Write foundation.txt" in text
    assert "Wrote foundation.txt" in text  # the predecessor's result
    assert run["branch"] in text and run["head_commit"][:12] in text


def worktree_of(repo: str, branch: str) -> str:
    porcelain = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    (worktree,) = [e.split("\n")[0].removeprefix("worktree ") for e in porcelain if f"branch refs/heads/{branch}" in e]
    return worktree


async def test_a_predecessor_moved_to_done_by_hand_still_gives_its_commits(client, agent_env: FakeAnthropic):
    """Done by hand merges nothing into the base branch; the dependent's new branch starts from
    the base branch with the predecessor's unmerged commits merged in, so it has its work."""
    project = await create_project(client)
    first, second = await predecessor_that_wrote(
        client, agent_env, project, "dep-hand", "schema.sql", "create table t;\n", start_when_unblocked=True
    )
    agent_env.add_script(
        "[dep-hand-second]",
        [Turn.tool_use("Write", {"file_path": "query.sql", "content": "select 1;\n"}), Turn.text("Used it")],
    )
    run = await finished_run(client, first)
    repo, base = project["workspace_path"], project["base_branch"]
    base_before = git(repo, "rev-parse", base)

    # Dragged from Review to Done: nothing is merged into the base branch.
    assert (await client.post(f"/api/tasks/{first['id']}/move", json={"status": "done"})).status_code == 200
    dependent = await wait_for_status(client, second["id"], {"succeeded", "failed"})
    assert dependent["status"] == "succeeded", dependent["error"]
    assert git(repo, "rev-parse", base) == base_before
    with open(os.path.join(worktree_of(repo, dependent["branch"]), "schema.sql")) as handle:
        assert handle.read() == "create table t;\n"
    assert git(repo, "merge-base", "--is-ancestor", run["head_commit"], dependent["branch"]) == ""
    assert dependent["base_commit"] == base_before  # its diff shows what approving it merges

    # Approving the dependent brings both tasks' work into the base branch.
    assert (await client.post(f"/api/tasks/{second['id']}/approve")).status_code == 200
    assert git(repo, "show", f"{base}:schema.sql") == "create table t;"
    assert git(repo, "show", f"{base}:query.sql") == "select 1;"


async def test_a_predecessor_whose_unmerged_work_conflicts_fails_the_run_naming_it(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    repo, base = project["workspace_path"], project["base_branch"]
    first, second = await predecessor_that_wrote(client, agent_env, project, "dep-clash", "greeting.txt", "hello\n")
    await finished_run(client, first)
    assert (await client.post(f"/api/tasks/{first['id']}/move", json={"status": "done"})).status_code == 200
    # Meanwhile the base branch got another greeting.
    with open(os.path.join(repo, "greeting.txt"), "w") as handle:
        handle.write("good morning\n")
    git(repo, "add", "greeting.txt")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "Greet differently")

    assert (await client.post(f"/api/tasks/{second['id']}/runs", json={})).status_code == 202
    dependent = await wait_for_status(client, second["id"], {"succeeded", "failed"})
    assert dependent["status"] == "failed"
    assert f"{first['short_id']}" in dependent["error"] and "greeting.txt" in dependent["error"]
    assert "conflicts" in dependent["error"]
    assert git(repo, "show", f"{base}:greeting.txt") == "good morning"  # the base branch is as it was
    assert not [r for r in agent_env.main_requests() if "[dep-clash-second]" in r.all_text()]  # no agent ran

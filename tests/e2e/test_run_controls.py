"""Run controls in a real browser, with the real Claude Code CLI against the fake Messages API:
a card dropped on Running starts its run (or goes back, saying why), a run that changed nothing
is marked done without a merge, the approved card stays in sight beside the panel, and deleting
a project removes its worktrees when asked."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.runs.agent import CREDENTIAL_VARIABLES
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

from .board_page import card, drag_to_column, expect_column, toast
from .conftest import Server, _start_server, make_git_repository
from .test_runs import RUN_TIMEOUT, expect_in_column, git

RUNS = r"/api/tasks/\d+/runs$"


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic) -> Iterator[Server]:
    """A server whose agents talk to the module's fake Messages API (no retries)."""
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-run-controls"), extra_env=fake_api.env(max_retries=0))


def open_board(new_page, server: Server, project: dict, **viewport: int) -> Page:
    page = new_page()
    if viewport:
        page.set_viewport_size({"width": viewport["width"], "height": viewport["height"]})
    page.goto(f"{server.url}/?project={project['id']}")
    expect(page.get_by_test_id("current-project")).to_have_text(project["name"])
    return page


def test_a_card_dropped_on_running_starts_its_run_and_the_project_goes_with_its_worktree(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    project = agent_server.create_project("Drop Runner", tmp_path / "drop-runner")
    task = agent_server.create_task(project["id"], "Write the drop file")
    fake_api.add_script(
        f"{task['short_id']}: Write the drop file",
        [Turn.tool_use("Write", {"file_path": "drop.txt", "content": "dropped\n"}), Turn.text("Wrote drop.txt")],
    )
    page = open_board(new_page, agent_server, project)
    running = page.locator('[data-testid="column"][data-status="in_progress"]')
    expect(running.get_by_test_id("column-empty")).to_have_text("Drop a task here to run its agent.")

    response = drag_to_column(page, "Write the drop file", "in_progress", answers=RUNS)
    assert response.status == 202, response.text()
    run = response.json()
    assert run["task_id"] == task["id"]
    expect_column(page, "in_progress", ["Write the drop file"])
    expect_in_column(page, "needs_review", "Write the drop file")
    expect(card(page, "Write the drop file").get_by_test_id("run-badge")).to_have_attribute(
        "data-run-status", "succeeded"
    )
    (finished,) = agent_server.api("GET", f"/api/tasks/{task['id']}/runs")
    assert finished["id"] == run["id"] and finished["has_changes"] is True
    assert git(project["workspace_path"], "show", f"{finished['branch']}:drop.txt") == "dropped\n"

    # The work is there to merge: Review offers Approve, not "nothing to merge".
    card(page, "Write the drop file").click()
    expect(page.get_by_test_id("approve")).to_have_text("Approve")
    page.keyboard.press("Escape")

    # Delete the project: the preview counts the task, its run and its worktree; remove it.
    page.get_by_test_id("project-switcher").click()
    page.get_by_test_id("project-settings").click()
    page.get_by_test_id("project-delete").click()
    confirm = page.get_by_test_id("delete-project-dialog")
    expect(confirm.get_by_test_id("deletion-tasks")).to_have_text("1 task, with 1 agent run and their logs")
    worktrees = confirm.get_by_test_id("deletion-worktrees")
    expect(worktrees).to_contain_text("1 worktree on disk")
    expect(confirm.get_by_test_id("keep-worktrees")).to_be_checked()
    paths = agent_server.api("GET", f"/api/projects/{project['id']}/deletion")["worktrees"]
    assert len(paths) == 1 and os.path.isdir(paths[0])
    expect(worktrees).to_contain_text(paths[0])
    confirm.get_by_test_id("remove-worktrees").check()
    confirm.get_by_test_id("confirm-delete-project").click()
    expect(confirm).to_be_hidden()
    expect(page).not_to_have_url(re.compile(rf"project={project['id']}(&|$)"))
    assert agent_server.request("GET", f"/api/projects/{project['id']}")[0] == 404
    assert not os.path.exists(paths[0])
    assert finished["branch"] in git(project["workspace_path"], "branch", "--list", finished["branch"])
    assert page.errors == []


def test_a_blocked_card_dropped_on_running_goes_back_with_the_reason(agent_server: Server, new_page, tmp_path: Path):
    project = agent_server.create_project("Drop Blocked", tmp_path / "drop-blocked")
    first = agent_server.create_task(project["id"], "Lay the groundwork")
    second = agent_server.create_task(project["id"], "Build on the groundwork", blocked_by=[first["id"]])
    page = open_board(new_page, agent_server, project)

    response = drag_to_column(page, "Build on the groundwork", "in_progress", answers=RUNS)
    assert response.status == 409
    detail = response.json()["detail"]
    assert f"{first['short_id']} is in To Do" in detail
    expect(toast(page).filter(has_text=f"Couldn't start {second['short_id']}")).to_be_visible()
    expect(toast(page).filter(has_text=detail)).to_be_visible()
    expect_column(page, "todo", ["Lay the groundwork", "Build on the groundwork"])
    expect_column(page, "in_progress", [])
    assert agent_server.api("GET", f"/api/tasks/{second['id']}/runs") == []
    assert agent_server.api("GET", f"/api/tasks/{second['id']}")["status"] == "todo"
    assert page.errors == []


def test_a_run_that_changed_nothing_is_marked_done_and_stays_in_sight_at_1400px(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    project = agent_server.create_project("Nothing To Merge", tmp_path / "nothing-to-merge")
    task = agent_server.create_task(project["id"], "Check the readme")
    fake_api.add_script(f"{task['short_id']}: Check the readme", [Turn.text("The readme is fine as it is.")])
    base_before = git(project["workspace_path"], "rev-parse", "main")
    page = open_board(new_page, agent_server, project, width=1400, height=900)

    card(page, "Check the readme").click()
    sidebar = page.get_by_test_id("task-sidebar")
    expect(sidebar).to_be_visible()
    sidebar.get_by_test_id("sidebar-run").click()
    expect_in_column(page, "needs_review", "Check the readme")
    approve = sidebar.get_by_test_id("approve")
    expect(approve).to_have_text("Nothing to merge — Mark done", timeout=RUN_TIMEOUT)

    # Beside the open panel the Done column starts past the board's visible edge.
    board = page.get_by_test_id("board").bounding_box()
    done = page.locator('[data-testid="column"][data-status="done"]').bounding_box()
    assert board and done and done["x"] + done["width"] / 2 > board["x"] + board["width"]

    approve.click()
    expect(toast(page).filter(has_text=f"{task['short_id']} is done (nothing to merge)")).to_be_visible()
    expect_column(page, "done", ["Check the readme"])
    moved = card(page, "Check the readme")
    expect(moved).to_be_in_viewport(ratio=0.95)
    sidebar_box = sidebar.bounding_box()
    page.wait_for_function(
        "([sel, left]) => document.querySelector(sel).getBoundingClientRect().right <= left",
        arg=['[data-testid="column"][data-status="done"] [data-testid="task-card"]', sidebar_box["x"]],
    )
    assert git(project["workspace_path"], "rev-parse", "main") == base_before
    assert agent_server.api("GET", f"/api/tasks/{task['id']}")["status"] == "done"
    assert page.errors == []


@pytest.fixture(scope="module")
def no_credentials_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose agents would find no credentials: no variable, an empty HOME for the CLI."""
    tmp = tmp_path_factory.mktemp("kanban-e2e-no-credentials")
    home = tmp / "agent-home"
    home.mkdir()
    env = {name: "" for name in CREDENTIAL_VARIABLES} | {"CLAUDE_CONFIG_DIR": "", "KANBAN_AGENT_HOME": str(home)}
    yield from _start_server(tmp, extra_env=env)


def test_without_credentials_a_dropped_card_goes_back_with_the_fix(
    no_credentials_server: Server, new_page, tmp_path: Path
):
    server = no_credentials_server
    status = server.api("GET", "/api/agents/status")
    assert status["can_run"] is False and status["problem"]
    project = server.create_project("No Credentials", make_git_repository(tmp_path / "no-credentials"))
    task = server.create_task(project["id"], "Try to run me")
    page = open_board(new_page, server, project)

    response = drag_to_column(page, "Try to run me", "in_progress", answers=r"/api/agents/status$")
    assert response.status == 200
    expect(toast(page).filter(has_text=f"Couldn't start {task['short_id']}")).to_be_visible()
    expect(toast(page).filter(has_text="No Anthropic credentials")).to_be_visible()
    expect_column(page, "todo", ["Try to run me"])
    expect_column(page, "in_progress", [])
    assert server.api("GET", f"/api/tasks/{task['id']}/runs") == []
    assert page.errors == []

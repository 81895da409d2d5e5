"""Workflows in a real browser: the built-in "Build a feature" template started from the board,
its step cards linked by dependencies, the workflow's card and its graph following the steps
live while the real Claude Code CLI works against the scripted fake Messages API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

from .board_page import card, cards, toast
from .conftest import SCREENSHOTS, Server, _start_server

RUN_TIMEOUT = 90_000  # ms: the CLI starts in ~1-3 s, slower on a busy machine
FEATURE = "A dark mode toggle [e2e-workflow]"


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic) -> Iterator[Server]:
    """A server whose agents talk to the fake API (no retries: a scripting mistake fails fast)."""
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-workflows"), extra_env=fake_api.env(max_retries=0))


def test_feature_workflow_from_the_board(agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path):
    project = agent_server.create_project("Workflows", tmp_path / "workflows")
    # The plan step's agent (its prompt names its card "Plan: <feature>") plans while the test
    # watches, then answers with the plan.
    plan = Turn.hang(120, then=Turn.text("1. Add a `theme` setting.\n2. A toggle in the header."))
    fake_api.add_script(f"Plan: {FEATURE}", [plan])
    page = new_page(f"{agent_server.url}/?project={project['id']}")

    # New from template: the built-in templates with their steps; the feature form.
    page.get_by_test_id("new-workflow").click()
    dialog = page.get_by_test_id("workflow-dialog")
    expect(dialog).to_be_visible()
    feature = dialog.locator('[data-testid="template-option"][data-template="feature"]')
    expect(feature).to_contain_text("Build a feature")
    expect(feature.get_by_test_id("template-origin")).to_have_text("Built-in")
    expect(feature.get_by_test_id("template-steps").locator("li")).to_have_count(3)
    feature.click()
    expect(feature).to_have_attribute("aria-checked", "true")
    test_command = dialog.get_by_test_id("workflow-input-test_command")
    expect(test_command).to_have_value("make test")  # the default, prefilled

    # A required input left empty is named at its field; nothing is sent.
    dialog.get_by_test_id("workflow-submit").click()
    field = dialog.locator('[data-testid="workflow-field"][data-input="feature"]')
    expect(field.get_by_test_id("workflow-input-error")).to_have_text("Required")
    assert agent_server.api("GET", f"/api/workflows?project_id={project['id']}") == []

    dialog.get_by_test_id("workflow-input-feature").fill(FEATURE)
    expect(field.get_by_test_id("workflow-input-error")).to_have_count(0)
    test_command.fill("true")
    dialog.get_by_test_id("workflow-submit").click()
    expect(dialog).to_be_hidden()
    expect(toast(page).first).to_contain_text("Started Build a feature")

    # The cards arrive through the live events: the workflow's card in Running, a card per step.
    (workflow,) = agent_server.api("GET", f"/api/workflows?project_id={project['id']}")
    assert workflow["inputs"] == {"feature": FEATURE, "test_command": "true"}
    steps = {step["step_id"]: step for step in workflow["steps"]}
    parent = card(page, workflow["title"])
    expect(parent).to_be_visible()
    expect(cards(page, "in_progress").filter(has_text=workflow["title"])).to_have_count(1)
    expect(parent.get_by_test_id("workflow-progress-count")).to_have_text("0/3 steps")
    approve = card(page, f"Approve the plan: {FEATURE}")
    implement = card(page, f"Implement: {FEATURE}")
    expect(approve.get_by_test_id("blocked-badge")).to_have_text(f"Blocked by {steps['plan']['short_id']}")
    expect(implement.get_by_test_id("blocked-badge")).to_have_text(f"Blocked by {steps['approve-plan']['short_id']}")
    expect(approve.get_by_test_id("step-kind")).to_have_attribute("data-kind", "approval")
    expect(implement.get_by_test_id("step-kind")).to_have_attribute("data-kind", "agent")

    # The workflow's card opens to its graph: a node per step, the plan's agent at work.
    parent.click()
    sidebar = page.get_by_test_id("task-sidebar")
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(parent.get_attribute("data-short-id") or "")
    sidebar.get_by_test_id("tab-workflow").click()
    nodes = sidebar.get_by_test_id("workflow-node")
    expect(nodes).to_have_count(3)
    node = {step_id: sidebar.locator(f'[data-testid="workflow-node"][data-step="{step_id}"]') for step_id in steps}
    expect(node["plan"]).to_have_attribute("data-state", "running", timeout=RUN_TIMEOUT)
    expect(node["approve-plan"]).to_have_attribute("data-state", "blocked")
    expect(node["implement"]).to_contain_text(steps["implement"]["short_id"])
    expect(parent.get_by_test_id("workflow-phase")).to_have_text("Running")
    assert plan.wait_started(60), "the plan step's agent never asked for its turn"

    # The plan is done (reviewed automatically); the approval waits in Review for a person.
    plan.release()
    expect(parent.get_by_test_id("workflow-progress-count")).to_have_text("1/3 steps", timeout=RUN_TIMEOUT)
    expect(parent.get_by_test_id("workflow-phase")).to_have_text("Needs you")
    expect(parent.get_by_test_id("workflow-progress")).to_have_attribute("data-phase", "needs_you")
    expect(node["plan"]).to_have_attribute("data-state", "done", timeout=RUN_TIMEOUT)
    expect(node["approve-plan"]).to_have_attribute("data-state", "needs_you")
    expect(node["approve-plan"]).to_contain_text("waits for a person in Review")
    expect(sidebar.get_by_test_id("workflow-phase")).to_have_text("Needs you")
    expect(cards(page, "needs_review").filter(has_text=f"Approve the plan: {FEATURE}")).to_have_count(1)
    expect(approve.get_by_test_id("blocked-badge")).to_have_count(0)
    expect(toast(page)).to_have_count(0, timeout=15_000)  # the screenshot without the toast
    page.wait_for_timeout(400)  # the progress bars' transition
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "workflow.png"))

    # A node opens its step's card, which names its workflow and links back to it.
    node["approve-plan"].click()
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(steps["approve-plan"]["short_id"])
    step_line = sidebar.get_by_test_id("step-of-workflow")
    expect(step_line).to_contain_text("Step approve-plan of workflow")
    expect(step_line).to_contain_text(workflow["title"])
    expect(sidebar.get_by_test_id("approve")).to_be_visible()
    expect(sidebar.get_by_test_id("sidebar-run")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"task={steps['approve-plan']['task_id']}"))
    sidebar.get_by_test_id("step-workflow-link").click()
    expect(page).to_have_url(re.compile(rf"task={workflow['parent_task_id']}"))
    sidebar.get_by_test_id("tab-workflow").click()
    expect(nodes).to_have_count(3)

    # Cancel: nothing more starts, the workflow's card goes back to To Do.
    sidebar.get_by_test_id("cancel-workflow").click()
    page.get_by_test_id("cancel-workflow-confirm").click()
    expect(toast(page).filter(has_text="Cancelled")).to_be_visible()
    expect(sidebar.get_by_test_id("workflow-phase")).to_have_text("Cancelled")
    expect(sidebar.get_by_test_id("cancel-workflow")).to_have_count(0)
    expect(cards(page, "todo").filter(has_text=workflow["title"])).to_have_count(1)
    assert agent_server.api("GET", f"/api/workflows/{workflow['id']}")["status"] == "cancelled"
    assert page.errors == []

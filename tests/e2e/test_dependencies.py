"""Task dependencies in a real browser: link in the sidebar, the badge, a cycle refused, and
the badge gone once the predecessor is moved to Done (live)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from .board_page import card, toast
from .conftest import Server


def test_blocked_badge_follows_the_predecessor(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Deps", tmp_path / "deps")
    first = server.create_task(project["id"], "Lay the foundation")
    second = server.create_task(project["id"], "Build the walls")
    page = new_page(f"{server.url}/?project={project['id']}")

    card(page, "Build the walls").click()
    sidebar = page.get_by_test_id("task-sidebar")
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(second["short_id"])
    sidebar.get_by_test_id("dependency-select").click()
    page.get_by_role("option", name=re.compile("Lay the foundation")).click()
    row = sidebar.get_by_test_id("blocker-row")
    expect(row).to_contain_text(first["short_id"])
    expect(row.get_by_test_id("blocker-state")).to_have_text(f"{first['short_id']} is in To Do")
    sidebar.get_by_test_id("start-when-unblocked").check()

    badge = card(page, "Build the walls").get_by_test_id("blocked-badge")
    expect(badge).to_have_text(f"Blocked by {first['short_id']}")
    expect(badge).to_have_attribute("title", f"{first['short_id']} is in To Do")
    card(page, "Build the walls").hover()
    run = card(page, "Build the walls").get_by_test_id("run-button")
    expect(run).to_be_disabled()
    expect(run).to_have_attribute("title", re.compile(f"Blocked: {first['short_id']} is in To Do"))
    saved = server.api("GET", f"/api/tasks/{second['id']}")
    assert [b["task_id"] for b in saved["blocked_by"]] == [first["id"]]
    assert saved["start_when_unblocked"] is True
    server.api("PATCH", f"/api/tasks/{second['id']}", {"version": saved["version"], "start_when_unblocked": False})

    # The other way round would be a cycle: the API's message is shown as it is.
    card(page, "Lay the foundation").click()
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(first["short_id"])
    sidebar.get_by_test_id("dependency-select").click()
    page.get_by_role("option", name=re.compile("Build the walls")).click()
    expect(toast(page)).to_contain_text(f"{first['short_id']} → {second['short_id']} → {first['short_id']}")
    assert server.api("GET", f"/api/tasks/{first['id']}")["blocked_by"] == []

    # The predecessor is moved to Done behind the page's back: the badge goes, live.
    server.api("POST", f"/api/tasks/{first['id']}/move", {"status": "done"})
    expect(badge).to_have_count(0)
    card(page, "Build the walls").click()
    expect(sidebar.get_by_test_id("blocker-state")).to_have_text("done")

    # A new task made blocked in the form.
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("n")
    dialog = page.get_by_test_id("task-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("task-title-input").fill("Put on the roof")
    dialog.get_by_test_id("dependency-select").click()
    page.get_by_role("option", name=re.compile("Build the walls")).click()
    expect(dialog.get_by_test_id("blocker-state")).to_have_text(f"{second['short_id']} is in To Do")
    dialog.get_by_test_id("task-submit").click()
    expect(dialog).to_be_hidden()
    expect(card(page, "Put on the roof").get_by_test_id("blocked-badge")).to_have_text(
        f"Blocked by {second['short_id']}"
    )
    assert page.errors == []

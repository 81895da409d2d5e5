"""The board in a real browser against the real server."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import expect

from .board_page import (
    card,
    cards,
    column,
    create_project_via_ui,
    create_task_via_keyboard,
    drag_onto_card,
    drag_to_column,
    expect_column,
    toast,
)
from .conftest import SCREENSHOTS, Server


def test_first_run_create_project_and_tasks_then_drag_survives_reload(server: Server, new_page, workspace: Path):
    page = new_page(server.url)
    if not server.api("GET", "/api/projects"):
        # A brand-new install: the empty state says what to do.
        expect(page.get_by_test_id("empty-projects")).to_contain_text("Create your first project")
        expect(page.get_by_test_id("empty-projects")).to_contain_text("folder")
        page.get_by_test_id("create-first-project").click()
    else:
        page.get_by_test_id("project-switcher").click()
        page.get_by_test_id("new-project").click()

    create_project_via_ui(page, "First run", str(workspace))
    expect(page).to_have_url(re.compile(r"\?project=\d+"))
    project_id = int(re.search(r"project=(\d+)", page.url).group(1))
    for status in ("todo", "in_progress", "needs_review", "done"):
        expect(column(page, status).get_by_test_id("column-empty")).to_be_visible()

    for title in ("Write the spec", "Build the thing", "Ship it"):
        create_task_via_keyboard(page, title)
    expect_column(page, "todo", ["Write the spec", "Build the thing", "Ship it"])
    expect(column(page, "todo").get_by_test_id("column-count")).to_have_text("3")
    expect(card(page, "Write the spec")).to_contain_text(re.compile(r"[A-Z]+-\d+"))

    # Across columns: "Build the thing" to Done.
    response = drag_to_column(page, "Build the thing", "done")
    assert response.status == 200, response.text()
    expect_column(page, "done", ["Build the thing"])
    expect_column(page, "todo", ["Write the spec", "Ship it"])
    expect(column(page, "done").get_by_test_id("column-count")).to_have_text("1")

    # Within a column: "Ship it" above "Write the spec".
    response = drag_onto_card(page, "Ship it", "Write the spec")
    assert response.status == 200, response.text()
    expect_column(page, "todo", ["Ship it", "Write the spec"])

    page.reload()
    expect_column(page, "todo", ["Ship it", "Write the spec"])
    expect_column(page, "done", ["Build the thing"])
    assert server.board(project_id)["todo"] == ["Ship it", "Write the spec"]
    assert server.board(project_id)["done"] == ["Build the thing"]
    assert page.errors == []


def test_another_browser_sees_changes_live(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Live", tmp_path / "live")
    url = f"{server.url}/?project={project['id']}"
    alice = new_page(url)
    bob = new_page(url)
    for page in (alice, bob):
        expect(page.get_by_test_id("connection-live")).to_be_visible()

    # Created in Alice's browser, appears in Bob's without a reload.
    create_task_via_keyboard(alice, "Made by Alice")
    started = time.monotonic()
    expect(card(bob, "Made by Alice")).to_be_visible(timeout=3000)
    assert time.monotonic() - started < 3

    # Created through the REST API: appears in both.
    task = server.create_task(project["id"], "Made by a script", labels=["api"], priority="high")
    for page in (alice, bob):
        expect(card(page, "Made by a script")).to_be_visible(timeout=3000)
        expect(card(page, "Made by a script")).to_contain_text(task["short_id"])
        expect(card(page, "Made by a script")).to_contain_text("api")

    # Moved by Alice (drag), Bob sees the column change.
    drag_to_column(alice, "Made by Alice", "needs_review")
    expect_column(bob, "needs_review", ["Made by Alice"])

    # Edited and deleted through the API.
    server.api("PATCH", f"/api/tasks/{task['id']}", {"version": task["version"], "title": "Renamed by a script"})
    for page in (alice, bob):
        expect(card(page, "Renamed by a script")).to_be_visible(timeout=3000)
    server.api("DELETE", f"/api/tasks/{task['id']}")
    for page in (alice, bob):
        expect(card(page, "Renamed by a script")).to_have_count(0, timeout=3000)
    assert alice.errors == [] and bob.errors == []


def test_refused_move_rolls_back_with_the_reason(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Conflicts", tmp_path / "conflicts")
    task = server.create_task(project["id"], "Contested task")
    server.create_task(project["id"], "Bystander")
    page = new_page(f"{server.url}/?project={project['id']}")
    expect_column(page, "todo", ["Contested task", "Bystander"])

    # Someone else changes the task at the last moment, behind the page's back: the page's
    # move carries a stale version and the server answers 409.
    def change_it_first(route):
        server.api("PATCH", f"/api/tasks/{task['id']}", {"version": task["version"], "priority": "urgent"})
        route.continue_()

    page.route(re.compile(r"/api/tasks/\d+/move$"), change_it_first)
    response = drag_to_column(page, "Contested task", "done")
    assert response.status == 409
    detail = response.json()["detail"]

    expect(toast(page).filter(has_text=f"Couldn't move {task['short_id']}")).to_be_visible()
    expect(toast(page).filter(has_text=detail)).to_be_visible()
    expect_column(page, "done", [])
    expect_column(page, "todo", ["Contested task", "Bystander"])
    # ...and it shows the other person's change.
    expect(card(page, "Contested task").locator('[data-priority="urgent"]')).to_be_visible()

    page.unroute(re.compile(r"/api/tasks/\d+/move$"))
    page.reload()
    expect_column(page, "todo", ["Contested task", "Bystander"])
    # With the fresh version the same move now works.
    assert drag_to_column(page, "Contested task", "done").status == 200
    expect_column(page, "done", ["Contested task"])
    assert page.errors == []


def test_sidebar_dialogs_search_and_url(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Details", tmp_path / "details")
    parent = server.create_task(project["id"], "Parent task")
    task = server.create_task(
        project["id"],
        "Needs details",
        description="## Plan\n\n- **first** step\n\n<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>",
        labels=["backend"],
    )
    page = new_page(f"{server.url}/?project={project['id']}")

    card(page, "Needs details").click()
    expect(page).to_have_url(re.compile(rf"task={task['id']}"))
    sidebar = page.get_by_test_id("task-sidebar")
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(task["short_id"])
    expect(sidebar.locator(".markdown strong")).to_have_text("first")
    expect(sidebar.locator(".markdown script")).to_have_count(0)
    assert page.title() != "pwned"

    # Edit fields in the Details tab.
    title = sidebar.get_by_test_id("detail-title")
    title.fill("Needs more details")
    title.press("Enter")
    expect(card(page, "Needs more details")).to_be_visible()
    sidebar.get_by_test_id("priority-select").click()
    page.get_by_role("option", name="High").click()
    expect(card(page, "Needs more details").locator('[data-priority="high"]')).to_be_visible()
    sidebar.get_by_test_id("parent-select").click()
    page.get_by_role("option", name=re.compile("Parent task")).click()
    expect(card(page, "Needs more details")).to_contain_text(parent["short_id"])
    labels = sidebar.get_by_test_id("labels-input")
    labels.fill("urgent-fix")
    labels.press("Enter")
    expect(card(page, "Needs more details")).to_contain_text("urgent-fix")
    saved = server.api("GET", f"/api/tasks/{task['id']}")
    assert saved["title"] == "Needs more details"
    assert saved["priority"] == "high"
    assert saved["parent_id"] == parent["id"]
    assert saved["labels"] == ["backend", "urgent-fix"]

    # The sidebar is resizable and remembers its width.
    handle = page.get_by_test_id("sidebar-resize")
    before = sidebar.bounding_box()["width"]
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] - 120, box["y"] + 200, steps=8)
    page.mouse.up()
    widened = sidebar.bounding_box()["width"]
    assert widened > before + 80

    # Reload: same board, same open task, same width.
    page.reload()
    expect(sidebar.get_by_test_id("sidebar-short-id")).to_have_text(task["short_id"])
    assert abs(sidebar.bounding_box()["width"] - widened) < 2

    # Esc closes the sidebar.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"task="))

    # "/" focuses the search; the server filters; the URL keeps it.
    page.keyboard.press("/")
    expect(page.get_by_test_id("search")).to_be_focused()
    page.keyboard.type("parent", delay=300)  # slower than the debounce: the URL updates while typing
    expect(page).to_have_url(re.compile(r"q=parent"))
    expect(page.get_by_test_id("search")).to_have_value("parent")
    expect(cards(page, "todo")).to_have_count(1)
    expect(card(page, "Parent task")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("search")).to_have_value("parent")
    expect(cards(page, "todo")).to_have_count(1)
    page.get_by_test_id("search").fill("")
    expect(cards(page, "todo")).to_have_count(2)

    # Edit through the dialog, then delete with confirmation.
    card(page, "Needs more details").click()
    page.get_by_role("button", name="Edit task").click()
    dialog = page.get_by_test_id("task-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # closes the dialog only
    expect(dialog).to_be_hidden()
    expect(sidebar).to_be_visible()
    page.get_by_role("button", name="Edit task").click()
    dialog.get_by_test_id("task-title-input").fill("Edited in the dialog")
    dialog.get_by_test_id("task-submit").click()
    expect(dialog).to_be_hidden()
    expect(card(page, "Edited in the dialog")).to_be_visible()
    sidebar.get_by_test_id("sidebar-delete").click()
    page.get_by_test_id("confirm-delete").click()
    expect(card(page, "Edited in the dialog")).to_have_count(0)
    expect(sidebar).to_be_hidden()
    status, _ = server.request("GET", f"/api/tasks/{task['id']}")
    assert status == 404
    assert page.errors == []


def test_screenshot_of_a_populated_board(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Acme Web", tmp_path / "acme", key="ACME")
    pid = project["id"]
    seed = [
        ("Add a dark mode toggle to settings", "todo", "medium", ["ui"]),
        ("Paginate the task list endpoint", "todo", "high", ["api", "backend"]),
        ("Write the onboarding guide", "todo", "low", ["docs"]),
        ("Retry failed agent runs with backoff", "in_progress", "urgent", ["agents"]),
        ("Stream agent logs to the task panel", "in_progress", "high", ["agents", "ui"]),
        ("Fix flaky reconnect in the event stream", "needs_review", "medium", ["bug"]),
        ("Upgrade the database driver", "done", "none", ["backend"]),
        ("Set up CI for the frontend build", "done", "low", ["ci"]),
    ]
    created = {}
    for title, status, priority, labels in seed:
        created[title] = server.create_task(pid, title, status=status, priority=priority, labels=labels)
    server.create_task(
        pid,
        "Split the agent runner into steps",
        parent_id=created["Retry failed agent runs with backoff"]["id"],
        status="todo",
        labels=["agents"],
    )
    review = created["Fix flaky reconnect in the event stream"]
    review = server.api(
        "PATCH",
        f"/api/tasks/{review['id']}",
        {
            "version": review["version"],
            "description": "The board's live stream sometimes stays down after the laptop wakes up.\n\n"
            "**Expected:** it reconnects and replays missed events from `Last-Event-ID`.",
            "result": "Recreate the `EventSource` when it is closed and pass `last_event_id`.\n\n"
            "- added a backoff (1 s → 15 s)\n- refetch the board after a manual reconnect",
        },
    )
    page = new_page()
    page.set_viewport_size({"width": 1680, "height": 940})
    # The test server's agents usually have no credentials (nothing here runs one); the README
    # shows the board of a machine where they can run, so the browser is told so.
    status = server.api("GET", "/api/agents/status")
    page.route(
        "**/api/agents/status",
        lambda route: route.fulfill(json={**status, "can_run": True, "problem": None}),
    )
    page.goto(f"{server.url}/?project={pid}&task={review['id']}")
    expect(cards(page, "todo")).to_have_count(4)
    expect(page.get_by_test_id("result-section").locator(".markdown")).to_be_visible()
    expect(page.get_by_test_id("connection-live")).to_be_visible()
    expect(page.get_by_test_id("filter-bar")).to_be_visible()
    expect(page.get_by_test_id("credentials-banner")).to_have_count(0)
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board.png"))
    assert (SCREENSHOTS / "board.png").stat().st_size > 10_000


def test_connection_indicator_when_the_stream_is_down(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Flaky network", tmp_path / "flaky")
    page = new_page()
    events = re.compile(r"/api/events\?")
    page.route(events, lambda route: route.abort("connectionrefused"))
    page.goto(f"{server.url}/?project={project['id']}")
    expect(page.get_by_test_id("connection-down")).to_be_visible(timeout=5000)
    expect(page.get_by_test_id("connection-down")).to_contain_text("reconnecting")

    # The board still works over plain requests meanwhile.
    create_task_via_keyboard(page, "Made while offline")

    page.unroute(events)
    expect(page.get_by_test_id("connection-live")).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("connection-down")).to_have_count(0)
    server.create_task(project["id"], "Arrived after reconnecting")
    expect(card(page, "Arrived after reconnecting")).to_be_visible(timeout=3000)
    assert page.errors == []


def test_keyboard_drag_between_and_within_columns(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Keyboard", tmp_path / "keyboard")
    for title, status in (("Alpha", "todo"), ("Bravo", "todo"), ("Charlie", "needs_review"), ("Delta", "needs_review")):
        server.create_task(project["id"], title, status=status)
    page = new_page(f"{server.url}/?project={project['id']}")
    expect_column(page, "needs_review", ["Charlie", "Delta"])
    moves: list[str] = []
    page.on(
        "request",
        lambda request: (
            moves.append(request.url) if request.url.endswith(("/move", "/runs", "/agents/status")) else None
        ),
    )

    # Space lifts the focused card, Tab carries it to the next column, arrows move it, Space drops.
    # It passes through Running without a request: a run would start only if it were dropped there.
    card(page, "Bravo").locator("xpath=..").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect_column(page, "in_progress", ["Bravo"])
    with page.expect_response(re.compile(r"/api/tasks/\d+/move$")) as first:
        page.keyboard.press("Tab")
    assert first.value.status == 200
    assert len(moves) == 1
    with page.expect_response(re.compile(r"/api/tasks/\d+/move$")) as second:
        page.keyboard.press("ArrowDown")
    assert second.value.status == 200
    page.keyboard.press("Space")
    expect_column(page, "needs_review", ["Charlie", "Bravo", "Delta"])
    expect_column(page, "todo", ["Alpha"])
    expect_column(page, "in_progress", [])

    # Escape while the card is over Running puts it back: no run starts, nothing moves.
    card(page, "Alpha").locator("xpath=..").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect_column(page, "in_progress", ["Alpha"])
    page.keyboard.press("Escape")
    expect_column(page, "in_progress", [])
    expect_column(page, "todo", ["Alpha"])
    assert len(moves) == 2 and all(url.endswith("/move") for url in moves)

    # Enter opens the focused card.
    card(page, "Alpha").locator("xpath=..").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("task-sidebar")).to_be_visible()

    page.reload()
    expect_column(page, "needs_review", ["Charlie", "Bravo", "Delta"])
    assert server.board(project["id"])["needs_review"] == ["Charlie", "Bravo", "Delta"]
    assert page.errors == []


def test_a_plain_folder_can_become_a_git_repository(server: Server, new_page, tmp_path: Path):
    folder = tmp_path / "plain-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello\n")
    page = new_page(server.url)
    if server.api("GET", "/api/projects"):
        page.get_by_test_id("project-switcher").click()
        page.get_by_test_id("new-project").click()
    else:
        page.get_by_test_id("create-first-project").click()
    page.get_by_test_id("project-name").fill("From a plain folder")
    page.get_by_test_id("project-path").fill(str(folder))
    page.get_by_test_id("project-submit").click()
    folder_error = page.locator('[data-testid="field-error"][data-field="workspace_path"]')
    expect(folder_error).to_contain_text("not a git repository")
    page.get_by_test_id("project-init-git").check()
    page.get_by_test_id("project-submit").click()
    expect(page.get_by_test_id("project-dialog")).to_be_hidden()
    expect(page.get_by_test_id("current-project")).to_have_text("From a plain folder")
    assert (folder / ".git").is_dir()
    assert page.errors == []

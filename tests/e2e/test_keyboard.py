"""The keyboard in a real browser: the command palette, the shortcuts list, moving between cards,
and the tab order of the New task dialog."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from .board_page import card, expect_column
from .conftest import Server


def focus_page(page: Page) -> None:
    page.locator("body").click(position={"x": 5, "y": 300})  # the page, not an input or a card


def focused_card_title(page: Page) -> str:
    return page.evaluate(
        "document.activeElement?.closest('[data-card-id]')?.querySelector('[data-testid=task-title]')?.textContent?.trim() ?? ''"
    )


def test_palette_opens_a_task_by_its_short_id(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Palette", tmp_path / "palette", key="PAL")
    other = server.create_project("Elsewhere", tmp_path / "elsewhere", key="ELS")
    tasks = [server.create_task(project["id"], title) for title in ("Write the spec", "Build the thing", "Ship it")]
    for n in range(4, 13):  # PAL-10, PAL-11, PAL-12 also start with "PAL-1"
        tasks.append(server.create_task(project["id"], f"Filler {n}"))
    page = new_page(f"{server.url}/?project={project['id']}")
    expect(card(page, "Ship it")).to_be_visible()
    palette = page.get_by_test_id("command-palette")

    # Ctrl+K (Linux: not ⌘), the id typed, Enter: the task's panel opens.
    focus_page(page)
    page.keyboard.press("Control+k")
    expect(palette).to_be_visible()
    expect(page.get_by_test_id("palette-input")).to_be_focused()
    page.keyboard.type(tasks[0]["short_id"])
    items = palette.get_by_test_id("palette-item")
    expect(items.first).to_have_attribute("data-entry", f"task:{tasks[0]['id']}")
    expect(items.first).to_have_attribute("aria-selected", "true")
    expect(palette.locator('[data-entry^="task:"]')).to_have_count(4)  # PAL-1, then PAL-10 … PAL-12
    page.keyboard.press("Enter")
    expect(palette).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"task={tasks[0]['id']}"))
    expect(page.get_by_test_id("sidebar-short-id")).to_have_text(tasks[0]["short_id"])

    # Words of a title, from the header's button; the open task is listed first when nothing is typed.
    page.get_by_test_id("open-palette").click()
    expect(palette).to_be_visible()
    expect(items.first).to_have_attribute("data-entry", f"task:{tasks[0]['id']}")
    # The open task's agent actions are there when its buttons are (a To Do task can run, not be approved).
    expect(palette.locator('[data-entry="action:run"]')).to_be_visible()
    expect(palette.locator('[data-entry="action:approve"]')).to_have_count(0)
    page.keyboard.type("build thing")
    expect(items.first).to_have_attribute("data-entry", f"task:{tasks[1]['id']}")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("sidebar-short-id")).to_have_text(tasks[1]["short_id"])

    # Nothing matches: says so; Escape closes; Ctrl+K works from the search box too.
    page.get_by_test_id("search").focus()
    page.keyboard.press("Control+k")
    page.keyboard.type("no such thing at all qq")
    expect(palette).to_contain_text("Nothing matches")
    page.keyboard.press("Escape")
    expect(palette).to_be_hidden()
    expect(page.get_by_test_id("task-sidebar")).to_be_visible()  # Escape closed the palette only

    # Commands: New task opens the dialog.
    page.keyboard.press("Control+k")
    page.keyboard.type("new task")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("task-dialog")).to_be_visible()
    expect(page.get_by_test_id("task-title-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("task-dialog")).to_be_hidden()

    # Switch project, then go to another page and back to the board.
    focus_page(page)
    page.keyboard.press("Control+k")
    page.keyboard.type("elsewhere")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"project={other['id']}$"))
    expect(page.get_by_test_id("current-project")).to_have_text("Elsewhere")
    page.keyboard.press("Control+k")
    page.keyboard.type("go to plugins")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/plugins\?project={other['id']}"))
    page.keyboard.press("Control+k")
    page.keyboard.type("go to board")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/\?project={other['id']}$"))
    expect(page.get_by_test_id("current-project")).to_have_text("Elsewhere")
    assert page.errors == []


def test_j_k_move_between_cards_and_enter_opens_one(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Cards", tmp_path / "cards")
    for title, status in (("Alpha", "todo"), ("Bravo", "todo"), ("Charlie", "todo"), ("Delta", "needs_review")):
        server.create_task(project["id"], title, status=status)
    page = new_page(f"{server.url}/?project={project['id']}")
    expect_column(page, "todo", ["Alpha", "Bravo", "Charlie"])
    sidebar = page.get_by_test_id("task-sidebar")

    # j lands on the first card, j again on the second; Enter opens it.
    focus_page(page)
    page.keyboard.press("j")
    assert focused_card_title(page) == "Alpha"
    page.keyboard.press("j")
    assert focused_card_title(page) == "Bravo"
    page.keyboard.press("Enter")
    expect(sidebar).to_be_visible()
    expect(sidebar.get_by_test_id("detail-title")).to_have_value("Bravo")

    # The focus ring is on the focused card.
    focused = page.locator("[data-card-id]:focus-visible")
    expect(focused).to_have_count(1)
    expect(focused).to_contain_text("Bravo")

    # k, the arrows, and h/l between columns (the empty In Progress column is skipped).
    page.keyboard.press("k")
    assert focused_card_title(page) == "Alpha"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # stays on the last card
    assert focused_card_title(page) == "Charlie"
    page.keyboard.press("l")
    assert focused_card_title(page) == "Delta"
    page.keyboard.press("ArrowLeft")
    assert focused_card_title(page) == "Alpha"

    # Escape closes the panel; the focus stays on the board.
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    page.keyboard.press("l")
    assert focused_card_title(page) == "Delta"

    # Never while typing: j in the search box is a letter.
    page.keyboard.press("/")
    expect(page.get_by_test_id("search")).to_be_focused()
    page.keyboard.type("jk")
    expect(page.get_by_test_id("search")).to_have_value("jk")
    expect(page.get_by_test_id("search")).to_be_focused()
    assert page.errors == []


def test_question_mark_shows_the_shortcuts(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Shortcuts", tmp_path / "shortcuts")
    page = new_page(f"{server.url}/?project={project['id']}")
    expect(page.get_by_test_id("new-task")).to_be_visible()
    dialog = page.get_by_test_id("shortcuts-dialog")

    focus_page(page)
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Command palette")
    expect(dialog).to_contain_text("Ctrl+K")  # this browser runs on Linux
    expect(dialog).not_to_contain_text("⌘")
    expect(dialog.get_by_test_id("shortcut")).to_have_count(13)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Typed into a field, ? is a character.
    page.get_by_test_id("search").click()
    page.keyboard.type("?")
    expect(page.get_by_test_id("search")).to_have_value("?")
    expect(dialog).to_be_hidden()

    # From the palette too.
    page.keyboard.press("Control+k")
    page.keyboard.type("keyboard shortcuts")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    assert page.errors == []


def test_tab_from_the_title_goes_to_the_description(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Tab order", tmp_path / "tab-order")
    page = new_page(f"{server.url}/?project={project['id']}")
    expect(page.get_by_test_id("new-task")).to_be_visible()

    focus_page(page)
    page.keyboard.press("n")
    dialog = page.get_by_test_id("task-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("task-submit")).to_contain_text("Ctrl+↵")
    expect(dialog.get_by_test_id("task-submit")).not_to_contain_text("⌘")
    page.keyboard.type("Described by keyboard")
    page.keyboard.press("Tab")
    expect(dialog.get_by_test_id("description-input")).to_be_focused()
    page.keyboard.type("Typed after **Tab**.")
    page.keyboard.press("Tab")
    expect(dialog.get_by_test_id("description-write")).to_be_focused()  # the editor's switch comes after the text
    page.keyboard.press("Control+Enter")
    expect(dialog).to_be_hidden()
    expect(card(page, "Described by keyboard")).to_be_visible()

    saved = server.api("GET", f"/api/projects/{project['id']}/board")
    (task,) = [t for column in saved["columns"] for t in column["tasks"]]
    assert server.api("GET", f"/api/tasks/{task['id']}")["description"] == "Typed after **Tab**."
    assert page.errors == []

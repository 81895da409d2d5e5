"""Page actions that drive the board the way a person does (mouse, keyboard), for the browser tests."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

STATUSES = ("todo", "in_progress", "needs_review", "done")


def column(page: Page, status: str) -> Locator:
    return page.locator(f'[data-testid="column"][data-status="{status}"]')


def cards(page: Page, status: str) -> Locator:
    return column(page, status).locator('[data-testid="task-card"]')


def card(page: Page, title: str) -> Locator:
    return page.locator('[data-testid="task-card"]', has_text=title)


def column_titles(page: Page, status: str) -> list[str]:
    return [t.strip() for t in cards(page, status).locator('[data-testid="task-title"]').all_inner_texts()]


def expect_column(page: Page, status: str, titles: list[str]) -> None:
    """The column shows exactly these titles, in this order (waits for live updates)."""
    expect(cards(page, status).locator('[data-testid="task-title"]')).to_have_text(titles)


def create_project_via_ui(page: Page, name: str, workspace: str, base_branch: str = "main") -> None:
    page.get_by_test_id("project-name").fill(name)
    page.get_by_test_id("project-path").fill(workspace)
    page.get_by_test_id("project-branch").fill(base_branch)
    page.get_by_test_id("project-submit").click()
    expect(page.get_by_test_id("project-dialog")).to_be_hidden()
    expect(page.get_by_test_id("current-project")).to_have_text(name)


def create_task_via_keyboard(page: Page, title: str) -> None:
    page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not an input
    page.keyboard.press("n")
    dialog = page.get_by_test_id("task-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("task-title-input").fill(title)
    page.keyboard.press("Control+Enter")
    expect(dialog).to_be_hidden()
    expect(card(page, title)).to_be_visible()


def drag_to_point(page: Page, source: Locator, x: float, y: float) -> None:
    """Drag with real mouse events, in small steps, as svelte-dnd-action expects."""
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    assert box, "source not visible"
    start_x, start_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x + 6, start_y + 6, steps=3)
    page.mouse.move(x, y, steps=25)
    page.wait_for_timeout(250)
    page.mouse.move(x, y + 1, steps=2)
    page.wait_for_timeout(150)
    page.mouse.up()


def drag_to_column(page: Page, title: str, status: str, answers: str = r"/api/tasks/\d+/move$") -> Any:
    """Drag a card to the end of a column; returns the response of the request that matches
    `answers` (the move; a drop on Running starts a run instead, or asks whether agents can run)."""
    zone = column(page, status).get_by_test_id("column-list").bounding_box()
    assert zone, "column not visible"
    target_cards = cards(page, status)
    count = target_cards.count()
    if count:
        last = target_cards.nth(count - 1).bounding_box()
        assert last
        y = last["y"] + last["height"] + 40
    else:
        y = zone["y"] + 40
    x = zone["x"] + zone["width"] / 2
    with page.expect_response(re.compile(answers)) as response:
        drag_to_point(page, card(page, title), x, y)
    return response.value


def drag_onto_card(page: Page, title: str, target_title: str) -> Any:
    """Drag a card over another card (it takes that card's place); returns the move API response."""
    box = card(page, target_title).bounding_box()
    assert box
    with page.expect_response(re.compile(r"/api/tasks/\d+/move$")) as response:
        drag_to_point(page, card(page, title), box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return response.value


def toast(page: Page) -> Locator:
    return page.locator("[data-sonner-toast]")

"""A server started with KANBAN_API_TOKEN: the page asks for the token once, then everything
works, the live stream included; the Host rules accept the loopback names."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from .board_page import card, create_task_via_keyboard
from .conftest import Server


def test_page_asks_for_the_token_then_works_live(token_server: Server, new_page, tmp_path: Path):
    status, body = token_server.request("GET", "/api/projects", token="")
    assert status == 401, body
    project = token_server.create_project("Guarded", tmp_path / "guarded")
    token_server.create_task(project["id"], "Visible with the token")

    page = new_page(token_server.url)
    dialog = page.get_by_test_id("token-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_test_id("token-submit").click()
    # refused: asked again, saying so
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("refused")

    page.get_by_test_id("token-input").fill(token_server.token)
    page.get_by_test_id("token-submit").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"\?project={project['id']}"))
    expect(card(page, "Visible with the token")).to_be_visible()

    # The EventSource carries the token too: changes arrive live.
    expect(page.get_by_test_id("connection-live")).to_be_visible()
    token_server.create_task(project["id"], "Arrived over the stream")
    expect(card(page, "Arrived over the stream")).to_be_visible(timeout=3000)
    create_task_via_keyboard(page, "Typed with the token")

    # Remembered by this browser: no prompt after a reload.
    page.reload()
    expect(card(page, "Typed with the token")).to_be_visible()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("connection-live")).to_be_visible()
    assert page.errors == []


def test_loopback_host_names_serve_the_page(token_server: Server, new_page, tmp_path: Path):
    project = token_server.create_project("Hosts", tmp_path / "hosts")
    port = token_server.url.rsplit(":", 1)[1]
    page = new_page(f"http://localhost:{port}/?project={project['id']}")
    page.get_by_test_id("token-input").fill(token_server.token)
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("current-project")).to_have_text("Hosts")
    expect(page.get_by_test_id("connection-live")).to_be_visible()
    token_server.create_task(project["id"], "Seen via localhost")
    expect(card(page, "Seen via localhost")).to_be_visible(timeout=3000)
    assert page.errors == []

"""Project settings in a real browser: every field the API takes, its refusals shown at the field,
deleting with the server's preview, and the new-project key preview the server computes."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from .board_page import toast
from .conftest import SCREENSHOTS, Server, make_git_repository


def open_settings(page: Page) -> None:
    page.get_by_test_id("project-switcher").click()
    page.get_by_test_id("project-settings").click()
    expect(page.get_by_test_id("project-dialog")).to_be_visible()


def field_error(page: Page, field: str):
    return page.get_by_test_id("project-dialog").locator(f'[data-testid="field-error"][data-field="{field}"]')


def test_project_settings_persist_and_refusals_show_at_their_field(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Settings Demo", tmp_path / "settings-demo")
    page = new_page(f"{server.url}/?project={project['id']}")
    expect(page.get_by_test_id("current-project")).to_have_text("Settings Demo")
    open_settings(page)
    dialog = page.get_by_test_id("project-dialog")
    expect(dialog.get_by_test_id("project-name")).to_have_value("Settings Demo")
    expect(dialog.get_by_test_id("project-path")).to_have_value(str((tmp_path / "settings-demo").resolve()))
    expect(dialog.get_by_test_id("project-branch")).to_have_value("main")
    expect(dialog.get_by_test_id("project-permission-mode")).to_have_value("acceptEdits")

    # The API's validation message, at the field it is about; nothing is saved.
    dialog.get_by_test_id("project-max-turns").fill("0")
    dialog.get_by_test_id("project-submit").click()
    expect(field_error(page, "max_turns")).to_have_text("Input should be greater than or equal to 1")
    expect(dialog.get_by_test_id("project-max-turns")).to_have_attribute("aria-invalid", "true")
    # A service's refusal ("workspace_path: …") lands at its field too.
    dialog.get_by_test_id("project-max-turns").fill("25")
    dialog.get_by_test_id("project-path").fill(str(tmp_path / "no-such-folder"))
    dialog.get_by_test_id("project-submit").click()
    expect(field_error(page, "workspace_path")).to_contain_text("does not exist on this machine")
    expect(field_error(page, "max_turns")).to_have_count(0)
    assert server.api("GET", f"/api/projects/{project['id']}")["max_turns"] is None

    moved = make_git_repository(tmp_path / "settings-moved")
    dialog.get_by_test_id("project-path").fill(str(moved))
    dialog.get_by_test_id("project-name").fill("Settings Renamed")
    dialog.get_by_test_id("project-key").fill("SET")
    dialog.get_by_test_id("project-permission-mode").select_option("plan")
    dialog.get_by_test_id("project-model").fill("claude-sonnet-4-5")
    dialog.get_by_test_id("project-max-budget").fill("2.5")
    dialog.get_by_test_id("project-allowed-tools").fill("Bash\nWebFetch")
    dialog.get_by_test_id("project-copy-files").fill(".env\nconfig/local.json")
    dialog.get_by_test_id("project-save-results").click()
    dialog.get_by_test_id("project-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("current-project")).to_have_text("Settings Renamed")

    saved = server.api("GET", f"/api/projects/{project['id']}")
    assert {k: saved[k] for k in ("name", "key", "workspace_path", "permission_mode", "agent_model")} == {
        "name": "Settings Renamed",
        "key": "SET",
        "workspace_path": str(moved.resolve()),
        "permission_mode": "plan",
        "agent_model": "claude-sonnet-4-5",
    }
    assert (saved["max_turns"], saved["max_budget_usd"], saved["save_task_results"]) == (25, 2.5, False)
    assert (saved["allowed_tools"], saved["copy_files"]) == (["Bash", "WebFetch"], [".env", "config/local.json"])

    # After a reload the dialog reads what was saved; the command palette opens it as well.
    page.reload()
    expect(page.get_by_test_id("current-project")).to_have_text("Settings Renamed")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+k")
    page.get_by_test_id("palette-input").fill("project settings")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("project-max-turns")).to_have_value("25")
    expect(dialog.get_by_test_id("project-copy-files")).to_have_value(".env\nconfig/local.json")
    expect(dialog.get_by_test_id("project-permission-mode")).to_have_value("plan")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialog.screenshot(path=str(SCREENSHOTS / "project-settings.png"))

    # Clearing a limit sends null; an untouched form sends nothing.
    dialog.get_by_test_id("project-max-turns").fill("")
    dialog.get_by_test_id("project-submit").click()
    expect(dialog).to_be_hidden()
    assert server.api("GET", f"/api/projects/{project['id']}")["max_turns"] is None
    assert page.errors == []


def test_deleting_a_project_names_what_goes_and_switches_to_another(server: Server, new_page, tmp_path: Path):
    keep = server.create_project("Delete Keeper", tmp_path / "keeper")
    doomed = server.create_project("Delete Me", tmp_path / "doomed")
    for title in ("First doomed task", "Second doomed task"):
        server.create_task(doomed["id"], title)
    page = new_page(f"{server.url}/?project={doomed['id']}")
    expect(page.get_by_test_id("current-project")).to_have_text("Delete Me")
    open_settings(page)
    page.get_by_test_id("project-delete").click()
    confirm = page.get_by_test_id("delete-project-dialog")
    expect(confirm).to_contain_text("Delete Delete Me?")
    expect(confirm.get_by_test_id("deletion-tasks")).to_have_text("2 tasks, with 0 agent runs and their logs")
    expect(confirm.get_by_test_id("deletion-preview")).to_contain_text(str((tmp_path / "doomed").resolve()))
    expect(confirm.get_by_test_id("deletion-worktrees")).to_have_count(0)  # no run made one
    confirm.get_by_test_id("confirm-delete-project").click()
    expect(confirm).to_be_hidden()
    expect(toast(page).filter(has_text="Deleted Delete Me")).to_be_visible()
    expect(page).not_to_have_url(re.compile(rf"project={doomed['id']}(&|$)"))
    expect(page.get_by_test_id("current-project")).not_to_have_text("Delete Me")
    assert server.request("GET", f"/api/projects/{doomed['id']}")[0] == 404
    assert server.request("GET", f"/api/projects/{keep['id']}")[0] == 200
    assert (tmp_path / "doomed" / "README.md").is_file()  # the folder is never touched
    page.get_by_test_id("project-switcher").click()
    expect(page.get_by_test_id("project-option").filter(has_text="Delete Me")).to_have_count(0)
    assert page.errors == []


def test_the_new_project_key_preview_is_the_key_the_server_gives(server: Server, new_page, tmp_path: Path):
    server.create_project("Preview Base", tmp_path / "preview-base")
    page = new_page(server.url)
    page.get_by_test_id("project-switcher").click()
    page.get_by_test_id("new-project").click()
    dialog = page.get_by_test_id("project-dialog")
    dialog.get_by_test_id("project-name").fill("Preview Demo App")
    # The first three letters, and a number when another project has them: PRE is taken.
    expect(dialog.get_by_test_id("project-key")).to_have_attribute("placeholder", re.compile(r"^PRE\d+$"))
    preview = dialog.get_by_test_id("project-key").get_attribute("placeholder")
    expect(dialog).to_contain_text(f"Tasks are numbered {preview}-1")
    dialog.get_by_test_id("project-path").fill(str(make_git_repository(tmp_path / "preview-demo")))
    dialog.get_by_test_id("project-branch").fill("main")
    dialog.get_by_test_id("project-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("current-project")).to_have_text("Preview Demo App")
    (created,) = [p for p in server.api("GET", "/api/projects") if p["name"] == "Preview Demo App"]
    assert created["key"] == preview
    expect(page.get_by_test_id("project-switcher")).to_contain_text(preview)
    assert page.errors == []

"""What tells the user that something needs them, in a real browser: filters kept in the URL,
toasts, browser notifications, the tab title's count and the no-credentials banner. Runs use
the real Claude Code CLI against the scripted fake Messages API (tests/fixtures/fake_anthropic.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.fake_anthropic import ISOLATE_VARS, FakeAnthropic, Turn

from .board_page import card, cards, column, drag_onto_card, expect_column, toast
from .conftest import Server, _start_server

RUN_TIMEOUT = 90_000  # ms: the CLI starts in ~1-3 s, slower on a busy machine

# Records every Notification the page constructs (the real API underneath), and lets the test
# say the user looks elsewhere (`__away`): the board then is not "in front" of them.
RECORD_NOTIFICATIONS = """
(() => {
    window.__notifications = [];
    window.__away = false;
    const Real = window.Notification;
    if (Real) {
        class Recorded extends Real {
            constructor(title, options) {
                super(title, options);
                window.__notifications.push({ title, body: (options && options.body) || '', shown: this });
            }
        }
        Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
        Recorded.requestPermission = (...args) => Real.requestPermission(...args);
        window.Notification = Recorded;
    }
    const hasFocus = Document.prototype.hasFocus;
    Document.prototype.hasFocus = function () { return window.__away ? false : hasFocus.call(this); };
})();
"""


def focus_page(page: Page) -> None:
    page.locator("body").click(position={"x": 5, "y": 300})


def focused_card_title(page: Page) -> str:
    return page.evaluate(
        "document.activeElement?.closest('[data-card-id]')?.querySelector('[data-testid=task-title]')?.textContent?.trim() ?? ''"
    )


def shown_titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator('[data-testid="task-card"] [data-testid="task-title"]').all_inner_texts()]


def open_filter(page: Page, kind: str, value: str) -> None:
    """Tick one value in the Filter menu (the menu stays open for more), then close it."""
    page.get_by_test_id("filter-button").click()
    page.locator(f'[data-testid="filter-{kind}"][data-value="{value}"]').click()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("filter-menu")).to_be_hidden()


def test_filters_are_kept_in_the_url_and_across_a_reload(server: Server, new_page, tmp_path: Path):
    project = server.create_project("Filters", tmp_path / "filters", key="FIL")
    server.create_task(project["id"], "Fix the login", labels=["bug"], priority="high")
    server.create_task(project["id"], "Write the docs", labels=["docs"])
    server.create_task(project["id"], "Fix the crash", labels=["Bug", "ui"], priority="low")
    review = server.create_task(project["id"], "Check the release")
    server.api("POST", f"/api/tasks/{review['id']}/move", {"status": "needs_review", "version": review["version"]})
    page = new_page(f"{server.url}/?project={project['id']}")
    expect(card(page, "Check the release")).to_be_visible()
    expect(page.get_by_test_id("needs-me-count")).to_have_text("1")

    # A label (any case), then a priority: both in the URL, the hidden cards counted.
    open_filter(page, "label", "bug")
    expect(page).to_have_url(re.compile(r"[?&]label=bug(&|$)"))
    assert sorted(shown_titles(page)) == ["Fix the crash", "Fix the login"]
    expect(page.get_by_test_id("hidden-count")).to_have_text("2 cards hidden")
    open_filter(page, "priority", "high")
    expect(page).to_have_url(re.compile(r"label=bug&priority=high"))
    expect(page.get_by_test_id("hidden-count")).to_have_text("3 cards hidden")
    assert shown_titles(page) == ["Fix the login"]

    # A reload (or the link shared) shows the same.
    page.reload()
    expect(card(page, "Fix the login")).to_be_visible()
    expect(page.get_by_test_id("hidden-count")).to_have_text("3 cards hidden")
    expect(page.get_by_test_id("filter-chip")).to_have_count(2)
    assert shown_titles(page) == ["Fix the login"]

    # Without the priority, j/k move between the shown cards only ("Write the docs" is between them).
    page.get_by_role("button", name="Remove filter High").click()
    expect(page).not_to_have_url(re.compile("priority="))
    expect(cards(page, "todo")).to_have_count(2)
    focus_page(page)
    page.keyboard.press("j")
    assert focused_card_title(page) == "Fix the login"
    page.keyboard.press("j")
    assert focused_card_title(page) == "Fix the crash"
    page.keyboard.press("j")
    assert focused_card_title(page) == "Fix the crash"
    page.keyboard.press("k")
    assert focused_card_title(page) == "Fix the login"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("task-sidebar")).to_be_visible()
    expect(page).to_have_url(re.compile(r"label=bug.*task=\d+|task=\d+.*label=bug"))
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("task-sidebar")).to_be_hidden()

    # A drag among the shown cards: the hidden card keeps its place after the one it followed.
    response = drag_onto_card(page, "Fix the crash", "Fix the login")
    assert response.ok
    expect_column(page, "todo", ["Fix the crash", "Fix the login"])
    expect(page.get_by_test_id("hidden-count")).to_have_text("2 cards hidden")
    assert server.board(project["id"])["todo"] == ["Fix the crash", "Fix the login", "Write the docs"]

    # With the search text: both apply.
    page.get_by_test_id("search").fill("crash")
    expect(page).to_have_url(re.compile(r"q=crash"))
    expect(cards(page, "todo")).to_have_count(1)
    assert shown_titles(page) == ["Fix the crash"]
    page.get_by_test_id("search").fill("")

    # Clear all, then "needs me": the task in Review, and a column filter shows only its column.
    page.get_by_test_id("clear-filters").click()
    expect(page.get_by_test_id("hidden-count")).to_have_count(0)
    expect_column(page, "todo", ["Fix the crash", "Fix the login", "Write the docs"])
    expect(page.locator('[data-testid="task-card"]')).to_have_count(4)
    page.get_by_test_id("filter-needs-me").click()
    expect(page).to_have_url(re.compile(r"needs=me"))
    expect(page.locator('[data-testid="task-card"]')).to_have_count(1)
    assert shown_titles(page) == ["Check the release"]
    page.get_by_test_id("clear-filters").click()
    open_filter(page, "status", "needs_review")
    expect(page.get_by_test_id("column")).to_have_count(1)
    expect(column(page, "needs_review")).to_be_visible()
    expect(page.get_by_test_id("hidden-count")).to_have_text("3 cards hidden")
    page.reload()
    expect(page.get_by_test_id("column")).to_have_count(1)
    assert page.errors == []


@pytest.fixture(scope="module")
def no_credentials_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no-credentials-home")


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory, no_credentials_home: Path) -> Iterator[Server]:
    """A server whose agents find no credentials: no key in the environment, nothing in HOME."""
    env = {name: "" for name in ISOLATE_VARS}
    env.update({"ANTHROPIC_API_KEY": "", "HOME": str(no_credentials_home)})
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-bare"), extra_env=env)


def test_the_board_says_how_to_give_agents_credentials(
    bare_server: Server, no_credentials_home: Path, new_page, tmp_path: Path
):
    project = bare_server.create_project("Bare", tmp_path / "bare", key="BAR")
    task = bare_server.create_task(project["id"], "Try a run")
    page = new_page(f"{bare_server.url}/?project={project['id']}")
    banner = page.get_by_test_id("credentials-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_test_id("login-command")).to_have_text(re.compile(r"^\S*/_bundled/claude auth login$"))
    expect(banner.get_by_test_id("api-key-variable")).to_have_text("ANTHROPIC_API_KEY")
    status = bare_server.api("GET", "/api/agents/status")
    expect(banner.get_by_test_id("login-command")).to_have_text(status["login_command"])

    # A run fails at once: a toast says why, and opens the task.
    card(page, "Try a run").hover()
    card(page, "Try a run").get_by_test_id("run-button").click()
    failed = toast(page).filter(has_text="BAR-1's run failed")
    expect(failed).to_be_visible(timeout=RUN_TIMEOUT)
    expect(failed).to_contain_text("No Anthropic credentials")
    expect(failed).to_contain_text("ANTHROPIC_API_KEY")
    failed.get_by_role("button", name="Open").click()
    expect(page).to_have_url(re.compile(rf"task={task['id']}"))

    # Logged in meanwhile (the CLI's credentials file): the banner goes once the board looks again.
    (no_credentials_home / ".claude").mkdir(exist_ok=True)
    (no_credentials_home / ".claude" / ".credentials.json").write_text("{}")
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(banner).to_be_hidden()
    assert bare_server.api("GET", "/api/agents/status")["can_run"] is True
    assert page.errors == []


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic) -> Iterator[Server]:
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-attention"), extra_env=fake_api.env(max_retries=0))


def test_an_approval_notifies_the_browser_and_counts_in_the_tab_title(
    agent_server: Server, fake_api: FakeAnthropic, browser, tmp_path: Path
):
    project = agent_server.create_project("Notify", tmp_path / "notify", key="NOT")
    title = "Run a python script"
    task = agent_server.create_task(project["id"], title)
    command = "python3 -c \"open('made.txt','w').write('made')\""
    fake_api.add_script(
        f"{task['short_id']}: {title}", [Turn.tool_use("Bash", {"command": command}), Turn.text("Ran the script.")]
    )

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        context.set_default_timeout(10_000)
        context.grant_permissions(["notifications"], origin=agent_server.url)
        context.add_init_script(RECORD_NOTIFICATIONS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # Opt in on the Settings page (the permission is granted, so the switch turns on).
        page.goto(f"{agent_server.url}/settings?project={project['id']}")
        page.get_by_test_id("browser-notifications-switch").click()
        expect(page.get_by_test_id("browser-notifications-switch")).to_have_attribute("data-state", "checked")
        expect(page.get_by_test_id("browser-notifications-state")).to_contain_text("On")
        page.goto(f"{agent_server.url}/?project={project['id']}")
        expect(card(page, title)).to_be_visible()
        expect(page).to_have_title("Kanban Orchestrator — Notify")

        # The user looks elsewhere; the agent asks to run a shell command.
        page.evaluate("window.__away = true")
        card(page, title).hover()
        card(page, title).get_by_test_id("run-button").click()
        expect(page).to_have_title("(1) Kanban Orchestrator — Notify", timeout=RUN_TIMEOUT)
        page.wait_for_function("window.__notifications.length > 0", timeout=10_000)
        shown = page.evaluate("window.__notifications.map(({title, body}) => ({title, body}))")
        assert shown == [{"title": "NOT-1 needs approval", "body": f"Bash: {command} · {title}"}]
        expect(toast(page).filter(has_text="NOT-1 needs approval")).to_be_visible()

        # Clicking the notification opens the task; its banner answers the approval.
        page.evaluate("window.__away = false; window.__notifications[0].shown.onclick()")
        expect(page).to_have_url(re.compile(rf"task={task['id']}"))
        sidebar = page.get_by_test_id("task-sidebar")
        sidebar.get_by_test_id("tab-log").click()
        sidebar.get_by_test_id("approval-banner").get_by_test_id("approval-allow").click()

        # The run finishes: a toast says it is ready for review (the board is in front: no notification).
        ready = toast(page).filter(has_text="NOT-1 is ready for review")
        expect(ready).to_be_visible(timeout=RUN_TIMEOUT)
        expect(page).to_have_title("(1) Kanban Orchestrator — Notify")
        assert page.evaluate("window.__notifications.length") == 1

        # Approved: nothing needs the user any more. A reload shows no old toast again.
        sidebar.get_by_test_id("approve").click()
        expect(page).to_have_title("Kanban Orchestrator — Notify")
        page.reload()
        expect(card(page, title)).to_be_visible()
        page.wait_for_timeout(500)
        expect(toast(page)).to_have_count(0)
        assert errors == []
    finally:
        context.close()

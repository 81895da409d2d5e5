"""Agent runs in a real browser: the real server runs the real Claude Code CLI, whose model
replies come from a scripted fake Messages API (tests/fixtures/fake_anthropic.py)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

from .board_page import card, cards, create_project_via_ui, create_task_via_keyboard, expect_column
from .conftest import SCREENSHOTS, Server, _start_server, make_git_repository

RUN_TIMEOUT = 90_000  # ms: the CLI starts in ~1-3 s, slower on a busy machine


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic) -> Iterator[Server]:
    """A server whose agents talk to the fake API (no retries: a scripting mistake fails fast)."""
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-runs"), extra_env=fake_api.env(max_retries=0))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def new_project(page: Page, name: str, workspace: Path) -> None:
    first = page.get_by_test_id("create-first-project")
    switcher = page.get_by_test_id("project-switcher")
    expect(first.or_(switcher)).to_be_visible()
    if first.is_visible():
        first.click()
    else:
        switcher.click()
        page.get_by_test_id("new-project").click()
    create_project_via_ui(page, name, str(workspace))
    expect(page).to_have_url(re.compile(r"\?project=\d+"))


def script_for(fake: FakeAnthropic, task_card: Locator, title: str, turns: list) -> None:
    """The agent's replies for this task: its prompt starts with "task KEY-N: <title>"."""
    short_id = task_card.get_attribute("data-short-id")
    assert short_id
    fake.add_script(f"{short_id}: {title}", turns)


def expect_in_column(page: Page, status: str, title: str) -> None:
    """The card lands in that column (an agent run may take a while)."""
    expect(cards(page, status).locator('[data-testid="task-title"]')).to_have_text([title], timeout=RUN_TIMEOUT)


def click_run_on_card(page: Page, title: str) -> None:
    target = card(page, title)
    target.hover()
    run_button = target.get_by_test_id("run-button")
    expect(run_button).to_be_visible()
    run_button.click()


def open_sidebar_tab(page: Page, title: str, tab: str) -> Locator:
    card(page, title).click()
    sidebar = page.get_by_test_id("task-sidebar")
    expect(sidebar).to_be_visible()
    sidebar.get_by_test_id(f"tab-{tab}").click()
    return sidebar


def test_run_streams_the_log_then_review_changes_and_approve(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    repo = make_git_repository(tmp_path / "greeter")
    page = new_page(agent_server.url)
    new_project(page, "Greeter", repo)
    title = "Write a greeting"
    create_task_via_keyboard(page, title)

    # The agent writes a file, then (held until the test lets go) finishes with a text.
    finish = Turn.hang(120, then=Turn.text("Wrote **greeting.txt** with a friendly hello."))
    script_for(
        fake_api,
        card(page, title),
        title,
        [
            Turn.tool_use(
                "Write",
                {"file_path": "greeting.txt", "content": "hello from the agent\n"},
                text="I'll write the greeting.",
            ),
            finish,
        ],
    )

    # Open the task's Agent Log first, then press Run on the card: the log fills in live.
    sidebar = open_sidebar_tab(page, title, "log")
    expect(sidebar.get_by_test_id("agent-log-empty")).to_be_visible()
    click_run_on_card(page, title)
    expect_column(page, "in_progress", [title])
    expect(card(page, title).get_by_test_id("run-spinner")).to_be_visible(timeout=RUN_TIMEOUT)

    log = sidebar.get_by_test_id("agent-log")
    tool = log.locator('[data-testid="log-tool"][data-tool="Write"]')
    expect(tool).to_be_visible(timeout=RUN_TIMEOUT)
    expect(tool).to_contain_text("greeting.txt")
    expect(log.get_by_test_id("log-text").first).to_contain_text("I'll write the greeting.")
    assert finish.wait_started(60), "the agent never asked for its second turn"
    # The call and its result are one row: opening it shows both.
    tool.get_by_test_id("log-tool-toggle").click()
    expect(tool.get_by_test_id("log-tool-input")).to_contain_text("hello from the agent")
    expect(tool.get_by_test_id("log-tool-result")).to_be_visible()
    expect(card(page, title).get_by_test_id("run-badge")).to_have_attribute("data-run-status", "running")

    finish.release()
    expect_in_column(page, "needs_review", title)
    expect(log.locator('[data-kind="result"]')).to_contain_text("Finished", timeout=RUN_TIMEOUT)
    expect(log.get_by_test_id("log-text").last).to_contain_text("friendly hello")
    expect(card(page, title).get_by_test_id("run-cost")).to_have_text(re.compile(r"\$\d+\.\d{4}"))
    expect(sidebar.get_by_test_id("run-bar")).to_contain_text("Agent done")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sidebar.screenshot(path=str(SCREENSHOTS / "agent-log.png"))

    # Changes: the file the agent wrote, with its added line.
    sidebar.get_by_test_id("tab-changes").click()
    changed = sidebar.locator('[data-testid="diff-file"][data-path="greeting.txt"]')
    expect(changed).to_be_visible()
    expect(changed).to_have_attribute("data-status", "added")
    added = changed.locator('[data-testid="diff-line"][data-type="add"]')
    expect(added).to_have_count(1)
    expect(added.get_by_test_id("diff-new-line")).to_have_text("1")
    expect(added).to_contain_text("+hello from the agent")
    expect(sidebar.get_by_test_id("diff-summary")).to_contain_text("1 file changed")

    # Runs: the history shows the one attempt, its cost and turns.
    sidebar.get_by_test_id("tab-runs").click()
    row = sidebar.get_by_test_id("run-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-run-status", "succeeded")
    expect(row).to_contain_text("Attempt 1")
    expect(row).to_contain_text("2 turns")

    # Request changes: the agent continues the same conversation with the feedback.
    fake_api.add_script(
        f"{card(page, title).get_attribute('data-short-id')}: {title}",
        [
            Turn.tool_use("Write", {"file_path": "greeting.txt", "content": "hello world\n"}),
            Turn.text("Now greets the world."),
        ],
    )
    sidebar.get_by_test_id("request-changes").click()
    dialog = page.get_by_test_id("request-changes-dialog")
    expect(dialog.get_by_test_id("request-changes-submit")).to_be_disabled()
    dialog.get_by_test_id("request-changes-input").fill("Greet the whole world")
    dialog.get_by_test_id("request-changes-submit").click()
    expect(dialog).to_be_hidden()
    expect(row.first).to_have_attribute("data-run-status", re.compile("queued|running|succeeded"))
    expect(row).to_have_count(2)
    expect_in_column(page, "needs_review", title)
    expect(row.first).to_have_attribute("data-run-status", "succeeded", timeout=RUN_TIMEOUT)
    expect(row.first).to_contain_text("Attempt 2")
    assert any("Greet the whole world" in r.all_text() for r in fake_api.main_requests())
    sidebar.get_by_test_id("tab-log").click()
    expect(sidebar.get_by_test_id("agent-log-attempt")).to_have_text("Attempt 2")
    expect(log.get_by_test_id("log-text").last).to_contain_text("Now greets the world.")

    # The Agent Log is one conversation: both attempts in order, the feedback as the user's message.
    attempts = log.get_by_test_id("log-attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_have_attribute("data-attempt", "1")
    expect(attempts.nth(0)).to_have_attribute("data-open", "false")
    expect(attempts.nth(1).get_by_test_id("log-attempt-label")).to_contain_text("Attempt 2 · requested changes")
    feedback = log.locator('[data-testid="log-prompt"][data-reason="changes_requested"]')
    expect(feedback).to_contain_text("You requested changes")
    expect(feedback.get_by_test_id("log-prompt-text")).to_have_text("Greet the whole world")
    expect(log.get_by_test_id("log-text").filter(has_text="friendly hello")).to_have_count(0)  # attempt 1 not loaded
    attempts.nth(0).get_by_test_id("log-attempt-label").click()
    expect(attempts.nth(0)).to_have_attribute("data-open", "true")
    first_prompt = log.locator('[data-testid="log-prompt"][data-reason="start"]')
    expect(first_prompt).to_contain_text(f"You are working on task {card(page, title).get_attribute('data-short-id')}")
    expect(log.get_by_test_id("log-text").filter(has_text="friendly hello")).to_be_visible()
    texts = log.locator('[data-testid="log-prompt-text"], [data-testid="log-text"]').all_inner_texts()
    order = [i for i, text in enumerate(texts) if "friendly hello" in text or text == "Greet the whole world"]
    assert len(order) == 2 and "friendly hello" in texts[order[0]], texts  # attempt 1's answer, then the feedback
    # The Runs tab names the same attempts; picking the first one shows it in the conversation.
    sidebar.get_by_test_id("tab-runs").click()
    row.nth(1).click()
    expect(log.get_by_test_id("log-attempt").first).to_be_in_viewport()
    expect(log.locator('[data-testid="log-prompt"][data-reason="start"]')).to_be_visible()

    # Someone changed the same file on main meanwhile: approving shows the conflict, merges nothing.
    (repo / "greeting.txt").write_text("hi from a human\n")
    git(repo, "add", "greeting.txt")
    git(
        repo,
        "-c",
        "user.name=Human",
        "-c",
        "user.email=human@example.invalid",
        "commit",
        "-q",
        "-m",
        "A human greeting",
    )
    sidebar.get_by_test_id("approve").click()
    conflict = page.get_by_test_id("merge-conflict-dialog")
    expect(conflict).to_be_visible()
    expect(conflict.get_by_test_id("conflict-file")).to_have_text(["greeting.txt"])
    conflict.get_by_role("button", name="Close").click()
    expect(conflict).to_be_hidden()
    expect_column(page, "needs_review", [title])
    git(repo, "-c", "user.name=Human", "-c", "user.email=human@example.invalid", "revert", "--no-edit", "HEAD")

    # Approve: merged into main, the card moves to Done.
    sidebar.get_by_test_id("approve").click()
    expect_column(page, "done", [title])
    assert git(repo, "show", "main:greeting.txt") == "hello world\n"
    expect(sidebar.get_by_test_id("run-bar")).not_to_contain_text("Approve")
    assert page.errors == []


def test_an_approval_answered_in_the_sidebar_lets_the_run_finish(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    repo = make_git_repository(tmp_path / "scripted")
    page = new_page(agent_server.url)
    new_project(page, "Scripted", repo)
    title = "Run a python script"
    create_task_via_keyboard(page, title)
    command = "python3 -c \"open('made.txt','w').write('made by python')\""
    script_for(
        fake_api, card(page, title), title, [Turn.tool_use("Bash", {"command": command}), Turn.text("Ran the script.")]
    )

    click_run_on_card(page, title)
    # acceptEdits sends a shell command to the user: the card says so.
    badge = card(page, title).get_by_test_id("run-badge")
    expect(badge).to_have_attribute("data-run-status", "waiting_approval", timeout=RUN_TIMEOUT)
    expect(badge).to_have_text("Needs approval")

    sidebar = open_sidebar_tab(page, title, "log")
    banner = sidebar.get_by_test_id("approval-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_test_id("approval-tool")).to_have_text("Bash")
    expect(banner.get_by_test_id("approval-input")).to_have_text(command)
    # The log shows the same request, answerable there too.
    in_log = sidebar.get_by_test_id("agent-log").get_by_test_id("approval-prompt")
    expect(in_log).to_have_attribute("data-status", "pending")
    expect(in_log.get_by_test_id("approval-allow")).to_be_visible()

    banner.get_by_test_id("approval-allow").click()
    expect(banner).to_have_count(0)
    expect(in_log).to_have_attribute("data-status", "allowed", timeout=RUN_TIMEOUT)
    expect(in_log.get_by_test_id("approval-outcome")).to_have_text("Allowed")
    expect_in_column(page, "needs_review", title)
    expect(sidebar.get_by_test_id("agent-log").locator('[data-testid="log-tool"][data-tool="Bash"]')).to_be_visible()

    sidebar.get_by_test_id("tab-changes").click()
    expect(sidebar.locator('[data-testid="diff-file"][data-path="made.txt"]')).to_be_visible()
    assert (
        git(repo, "show", f"{git(repo, 'branch', '--list', 'kanban/*', '--format=%(refname:short)').strip()}:made.txt")
        == "made by python"
    )
    assert page.errors == []


def test_a_long_log_stays_virtual_follows_the_tail_and_jumps_back(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    repo = make_git_repository(tmp_path / "chatty")
    page = new_page(agent_server.url)
    new_project(page, "Chatty", repo)
    title = "Think out loud"
    create_task_via_keyboard(page, title)
    lines = 5000
    blocks = [{"type": "text", "text": f"Step **{i}**: still thinking about `item {i}`."} for i in range(lines)]
    blocks.append({"type": "tool_use", "name": "Write", "input": {"file_path": "notes.txt", "content": "done\n"}})
    finish = Turn.hang(180, then=Turn.text("All 5000 steps done."))
    script_for(fake_api, card(page, title), title, [Turn.raw(blocks), finish])

    sidebar = open_sidebar_tab(page, title, "log")
    click_run_on_card(page, title)
    log = sidebar.get_by_test_id("agent-log")
    expect(log.locator('[data-testid="log-tool"][data-tool="Write"]')).to_be_visible(timeout=RUN_TIMEOUT)
    assert finish.wait_started(60)
    rows = int(log.get_attribute("data-count") or 0)
    assert rows > lines, rows
    # Thousands of rows, a screenful in the DOM; the newest one in view.
    assert log.get_by_test_id("log-row").count() < 80
    expect(sidebar.get_by_test_id("jump-to-latest")).to_have_count(0)

    # Scrolling up stops following; what arrives meanwhile is counted, not scrolled to.
    log.hover()
    page.mouse.wheel(0, -4000)
    jump = sidebar.get_by_test_id("jump-to-latest")
    expect(jump).to_be_visible()
    finish.release()
    expect(jump).to_contain_text("new)", timeout=RUN_TIMEOUT)
    final = log.get_by_test_id("log-text").filter(has_text="All 5000 steps done.")
    expect(final).to_have_count(0)  # not rendered: out of view
    jump.click()
    expect(jump).to_have_count(0)
    expect(final).to_be_visible()
    expect(log.locator('[data-kind="status"]').last).to_contain_text("Run succeeded", timeout=RUN_TIMEOUT)
    assert log.get_by_test_id("log-row").count() < 80
    assert page.errors == []

"""The Knowledge page in a real browser: create a collection, add a note and a web page (served
by a local HTTP server), watch both become ready, bind a project, search, open a document."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.embedding_model import build_model_dir
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

from .conftest import SCREENSHOTS, Server, _start_server

WORD = f"heliotrope{uuid.uuid4().hex[:6]}"
ARTICLE = f"""<!doctype html>
<html><head><title>Caching at the edge</title></head>
<body>
<nav>Home · Blog · About</nav>
<article>
<h1>Caching at the edge</h1>
<p>Our CDN keeps rendered pages for five minutes. The {WORD} header tells it to skip the cache
for signed-in users, so nobody sees another person's page.</p>
<h2>Purging</h2>
<p>A deploy purges every cached page of the site within thirty seconds; single pages can be purged
from the dashboard, which takes effect at once.</p>
</article>
<footer>© Example</footer>
</body></html>
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ARTICLE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/blog/caching"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def knowledge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("kanban-e2e-knowledge")
    env = {
        "KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS": "true",  # the page is served on this machine
        "KANBAN_KNOWLEDGE_MODEL_PATH": str(build_model_dir(tmp / "model")),  # hybrid search, offline
    }
    yield from _start_server(tmp, extra_env=env)


def test_collect_search_and_read_knowledge(knowledge_server: Server, site: str, new_page, tmp_path: Path):
    server = knowledge_server
    project = server.create_project("Storefront", tmp_path / "storefront")
    name = f"Web ops {uuid.uuid4().hex[:4]}"

    page = new_page(f"{server.url}/?project={project['id']}")
    link = page.get_by_test_id("nav-knowledge")
    expect(link).to_have_attribute("href", f"/knowledge?project={project['id']}")  # once the project has loaded
    link.click()
    expect(page).to_have_url(re.compile(r"/knowledge\?project="))

    # A collection.
    page.get_by_test_id("new-collection").click()
    dialog = page.get_by_test_id("collection-dialog")
    dialog.get_by_test_id("collection-name").fill(name)
    dialog.get_by_test_id("collection-description").fill("How the site is served: CDN, caching, deploys.")
    dialog.get_by_test_id("collection-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("collection-title")).to_have_text(name)

    # A note and a web page; both go through ingestion to ready, live.
    page.get_by_test_id("note-title").fill("Deploy checklist")
    page.get_by_test_id("note-content").fill(
        "# Deploy checklist\n\n1. Run the migrations.\n2. Purge the CDN.\n\n```sh\nmake deploy\n```\n"
    )
    page.get_by_test_id("add-note").click()
    page.get_by_test_id("add-tab-url").click()
    page.get_by_test_id("url-input").fill(site)
    page.get_by_test_id("add-url").click()

    upload = tmp_path / "runbook.md"
    upload.write_text("# On-call runbook\n\nPage the CDN vendor when purges take over a minute.\n")
    page.get_by_test_id("add-tab-file").click()
    page.get_by_test_id("file-input").set_input_files(str(upload))
    page.get_by_test_id("upload-file").click()

    rows = page.get_by_test_id("document-row")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="runbook")).to_have_attribute("data-status", "ready", timeout=60_000)
    note_row = rows.filter(has_text="Deploy checklist")
    url_row = rows.filter(has_text="Caching at the edge")
    expect(note_row).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(url_row).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(page.get_by_test_id("collection").filter(has_text=name)).to_contain_text("3")

    # Bind the project: reads and writes here.
    binding = page.get_by_test_id("binding").filter(has_text="Storefront")
    binding.get_by_test_id("binding-write").click()
    expect(binding.get_by_test_id("binding-write")).to_have_attribute("data-state", "checked")
    expect(binding.get_by_test_id("binding-read")).to_have_attribute("data-state", "checked")
    bindings = server.api("GET", f"/api/projects/{project['id']}/knowledge")
    assert [(b["collection_name"], b["can_write"]) for b in bindings] == [(name, True)]

    # Search: the hit's snippet marks the matched word.
    page.get_by_test_id("knowledge-search").fill(f"{WORD} header")
    page.get_by_test_id("knowledge-search-submit").click()
    hit = page.get_by_test_id("search-hit").first
    expect(hit.get_by_test_id("hit-title")).to_have_text("Caching at the edge")
    expect(hit.locator("mark").first).to_have_text(re.compile(WORD, re.IGNORECASE))
    assert "«" not in hit.get_by_test_id("hit-snippet").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "knowledge.png"))

    # The document: rendered text, where it came from.
    hit.click()
    view = page.get_by_test_id("document-dialog")
    expect(view.get_by_test_id("document-title")).to_have_text("Caching at the edge")
    expect(view.get_by_test_id("document-content")).to_contain_text("skip the cache")
    expect(view.get_by_test_id("document-sources").locator("a")).to_have_attribute("href", site)
    page.keyboard.press("Escape")

    # The note renders its Markdown (the code block stays a code block).
    note_row.get_by_test_id("open-document").click()
    content = view.get_by_test_id("document-content")
    expect(content.locator("pre code")).to_contain_text("make deploy")
    expect(content.locator("li")).to_have_count(2)
    assert page.errors == []


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic) -> Iterator[Server]:
    env = {**fake_api.env(max_retries=0), "KANBAN_KNOWLEDGE_EMBEDDING_MODEL": "off"}
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-knowledge-runs"), extra_env=env)


def wait_for(check, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_task_panel_searches_the_projects_knowledge_and_saves_a_result(
    agent_server: Server, fake_api: FakeAnthropic, new_page, tmp_path: Path
):
    server = agent_server
    project = server.create_project("Billing", tmp_path / "billing")
    kb = server.api("POST", "/api/knowledge/collections", {"name": "Billing notes"})
    server.api("PUT", f"/api/projects/{project['id']}/knowledge/{kb['id']}", {"can_write": True})
    note = server.api(
        "POST",
        f"/api/knowledge/collections/{kb['id']}/notes",
        {
            "title": "Invoice numbering",
            "content": f"Invoices are numbered per year; the {WORD} prefix marks credit notes.",
        },
    )
    wait_for(lambda: server.api("GET", f"/api/knowledge/documents/{note['id']}")["status"] == "ready", "the note")

    task = server.create_task(project["id"], "Fix the invoice PDF")
    fake_api.add_script(
        f"{task['short_id']}: Fix the invoice PDF", [Turn.text("Fixed the invoice PDF: totals round per line.")]
    )
    run = server.api("POST", f"/api/tasks/{task['id']}/runs", {})
    wait_for(lambda: server.api("GET", f"/api/runs/{run['id']}")["status"] == "succeeded", "the run")

    page = new_page(f"{server.url}/?project={project['id']}&task={task['id']}")
    sidebar = page.get_by_test_id("task-sidebar")
    sidebar.get_by_test_id("tab-knowledge").click()
    panel = sidebar.get_by_test_id("task-knowledge")
    expect(panel.get_by_test_id("task-knowledge-scope")).to_contain_text(
        "Reads Billing notes; agents write to Billing notes"
    )
    panel.get_by_test_id("task-knowledge-search").fill(f"{WORD} credit")
    panel.get_by_test_id("task-knowledge-search").press("Enter")
    hit = panel.get_by_test_id("search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark").first).to_have_text(re.compile(WORD, re.IGNORECASE))
    hit.click()
    dialog = page.get_by_test_id("document-dialog")
    expect(dialog.get_by_test_id("document-title")).to_have_text("Invoice numbering")
    page.keyboard.press("Escape")

    # Save to knowledge: the run's result becomes a task_result document of the write collection.
    sidebar.get_by_test_id("tab-details").click()
    sidebar.get_by_test_id("result-section").get_by_test_id("save-to-knowledge").click()
    expect(page.get_by_text("Saved “")).to_be_visible()
    saved = server.api("GET", f"/api/knowledge/collections/{kb['id']}/documents?kind=task_result")
    assert [(d["task_id"], d["run_id"]) for d in saved] == [(task["id"], run["id"])]
    # The same from the run's row in the Runs tab: already there, nothing added.
    sidebar.get_by_test_id("tab-runs").click()
    sidebar.get_by_test_id("runs-tab").get_by_test_id("save-to-knowledge").click()
    expect(page.get_by_text("already in the knowledge base")).to_be_visible()
    assert len(server.api("GET", f"/api/knowledge/collections/{kb['id']}/documents?kind=task_result")) == 1
    assert page.errors == []

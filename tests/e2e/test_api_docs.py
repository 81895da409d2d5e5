"""The API documentation page in Chromium with every request to another host refused: the
board's header links to it, and Swagger UI renders the operations from this server alone."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect

from .conftest import Server


def test_api_docs_render_offline_from_the_header_link(server: Server, new_page):
    page = new_page()
    own = urlsplit(server.url).netloc
    elsewhere: list[str] = []

    def only_this_server(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_this_server)
    page.goto(server.url)
    link = page.get_by_test_id("nav-api")
    expect(link).to_have_attribute("href", "/api/docs")
    with page.context.expect_page() as opened:
        link.click()
    docs = opened.value
    docs.errors = []
    docs.on("pageerror", lambda exc: docs.errors.append(str(exc)))
    # Operations of every part of the API are listed, with their methods and paths.
    expect(docs.locator(".opblock").first).to_be_visible(timeout=15_000)
    expect(docs).to_have_title("Kanban Orchestrator API")
    for path in ("/api/projects", "/api/tasks/{task_id}/runs", "/api/plugins/{plugin_id}/test"):
        expect(docs.locator(f".opblock-summary-path[data-path='{path}']").first).to_be_visible()
    assert docs.locator(".opblock").count() > 20
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("Kanban Orchestrator")
    assert elsewhere == [], elsewhere
    assert docs.errors == [] and page.errors == []

"""/api/docs is Swagger UI served from this server alone (its files come from the frontend
build), reachable without the API token, and the board's header links to it."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx
import pytest

from backend.main import SOURCE_FRONTEND, create_app
from tests.conftest import LiveServer, make_settings

ASSETS = SOURCE_FRONTEND / "api-docs"
TOKEN = "docs-token-value"


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    if not (ASSETS / "swagger-ui-bundle.js").is_file():
        message = f"{ASSETS} is missing: build the frontend first (`make frontend`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)


async def test_the_docs_page_uses_only_files_this_server_serves(client):
    response = await client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = asset_urls(response.text)
    assert len(urls) == 4, urls  # stylesheet, icon, script, the OpenAPI document
    assert all(url.startswith("/api/") for url in urls), urls
    assert not re.search(r"https?://|//[a-z]", response.text), "the page names another host"
    assert '"validatorUrl": null' in response.text
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] == types[Path(url).suffix], (
            url,
            asset.headers["content-type"],
        )
    bundle = await client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 500_000
    assert (await client.get("/api/docs/assets/nothing.js")).status_code == 404


async def test_the_docs_page_says_how_to_build_it_when_its_files_are_missing(tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, frontend_dir=tmp_path / "empty")
    async with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            response = await http.get("/api/docs")
    drop()
    assert response.status_code == 503
    assert "make frontend" in response.text


async def test_the_docs_need_no_token_the_api_does(tmp_path):
    settings, drop = await asyncio.to_thread(make_settings, "sqlite", tmp_path, api_token=TOKEN)
    async with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            for path in ("/api/docs", "/api/docs/assets/swagger-ui.css", "/api/openapi.json"):
                assert (await http.get(path)).status_code == 200, path
            for path in ("/api/projects", "/api/docsx", "/api/openapi.jsonx"):
                assert (await http.get(path)).status_code == 401, path
    drop()

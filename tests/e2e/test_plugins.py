"""The Plugin Manager in a real browser: search local stand-ins for the registries, install an
official-registry entry that starts a real MCP server over stdio, configure it, test it, enable it."""

from __future__ import annotations

import os
import re
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.echo_mcp_server import ECHO_MCP_SERVER
from tests.mcp_client.fake_registries import (
    GLAMA_PATH,
    OFFICIAL_PATH,
    FakeRegistry,
    Reply,
    glama_route,
    glama_server,
    official_entry,
    official_route,
)

from .conftest import SCREENSHOTS, Server, _start_server

ECHO = "io.github.kanban-tests/echo"


def echo_entry() -> dict[str, Any]:
    return official_entry(
        ECHO,
        "1.0.0",
        title="Echo",
        description="Echoes text back; a test server.",
        packages=[
            {
                "registryType": "pypi",
                "identifier": "echo-mcp-server",
                "version": "1.0.0",
                "transport": {"type": "stdio"},
                "environmentVariables": [
                    {
                        "name": "ECHO_TOKEN",
                        "description": "Token the server checks",
                        "isRequired": True,
                        "isSecret": True,
                    },
                    {"name": "GREETING", "description": "How to greet", "default": "hello"},
                ],
            }
        ],
    )


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[FakeRegistry, dict[str, bool]]]:
    """Both registries on one local server; `state["glama_down"]` makes the Glama side fail,
    `state["official_down"]` the official one."""
    fake = FakeRegistry()
    state = {"glama_down": False, "official_down": False}
    glama = glama_route([glama_server(1, name="Echo tools", description="Glama's echo")])
    fake.routes[GLAMA_PATH] = lambda params: (
        Reply(503, {"error": "maintenance"}) if state["glama_down"] else glama(params)
    )
    official = official_route([echo_entry(), official_entry("io.github.kanban-tests/other", packages=[])])
    fake.routes[OFFICIAL_PATH] = lambda params: (
        Reply(503, {"error": "maintenance"}) if state["official_down"] else official(params)
    )
    fake.start()
    yield fake, state
    fake.stop()


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[Server]:
    fake, _ = registry
    tmp = tmp_path_factory.mktemp("kanban-e2e-plugins")
    # The entry is a PyPI package, run with `uvx`. Nothing can be downloaded here, so `uvx` on
    # the server's PATH starts the local FastMCP echo server with this Python instead.
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    uvx = bin_dir / "uvx"
    uvx.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ECHO_MCP_SERVER}"\n')
    uvx.chmod(uvx.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    env = {
        "KANBAN_MCP_REGISTRY_URL": fake.url,
        "KANBAN_GLAMA_URL": fake.url,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    yield from _start_server(tmp, extra_env=env)


def test_find_install_configure_test_and_enable_a_plugin(plugin_server: Server, registry, new_page, tmp_path: Path):
    server = plugin_server
    _, state = registry
    project = server.create_project("Plugin demo", tmp_path / "workspace")
    secret = f"s3cr3t-{uuid.uuid4().hex}"

    page = new_page(f"{server.url}/?project={project['id']}")
    page.get_by_test_id("nav-plugins").click()
    expect(page).to_have_url(re.compile(rf"/plugins\?project={project['id']}$"))
    builtin = page.locator('[data-testid="installed-plugin"][data-name="kanban"]')
    expect(builtin).to_be_visible()
    expect(builtin.get_by_test_id("plugin-uninstall")).to_have_count(0)  # built in: cannot be uninstalled

    # One registry down: its banner shows, the other's results still come.
    state["glama_down"] = True
    page.get_by_test_id("plugin-search").fill("echo")
    page.get_by_test_id("plugin-search-submit").click()
    banner = page.locator('[data-testid="registry-error"][data-registry="glama"]')
    expect(banner).to_have_text(
        "Glama registry returned HTTP 503. Showing results from the Official MCP Registry only."
    )
    result = page.locator(f'[data-testid="search-result"][data-ref="{ECHO}"]')
    expect(result).to_contain_text("Echo")
    expect(result).to_contain_text("Echoes text back")
    expect(result).to_contain_text("pypi")

    # Offline: neither registry answers. One message says so, and nothing claims other results.
    state["official_down"] = True
    page.get_by_test_id("plugin-search").fill("anything offline")
    page.get_by_test_id("plugin-search-submit").click()
    offline = page.get_by_test_id("registry-error")
    expect(offline).to_have_count(1)
    expect(offline).to_have_attribute("data-registry", "all")
    expect(offline).to_contain_text("No registry could be searched")
    expect(offline.get_by_test_id("registry-reason")).to_have_text(
        ["Glama registry returned HTTP 503.", "Official MCP Registry returned HTTP 503."]
    )
    expect(offline).not_to_contain_text("Showing results")
    expect(page.get_by_test_id("no-results")).to_have_count(0)
    state["official_down"] = False
    page.get_by_test_id("plugin-search").fill("echo")

    state["glama_down"] = False
    page.get_by_test_id("source-all").click()
    expect(banner).to_have_count(0)
    expect(page.locator('[data-testid="search-result"][data-ref="owner1/server-1"]')).to_contain_text("tool_1")
    page.get_by_test_id("source-official").click()
    expect(page.locator('[data-testid="search-result"][data-ref="owner1/server-1"]')).to_have_count(0)
    expect(result).to_be_visible()

    # Install: the settings form is built from the entry's schema.
    result.get_by_test_id("install").click()
    dialog = page.get_by_test_id("install-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("plugin-name")).to_have_value("echo")
    expect(dialog.get_by_test_id("install-option")).to_contain_text("uvx echo-mcp-server==1.0.0")
    token_field = dialog.locator('[data-testid="setting-field"][data-name="ECHO_TOKEN"]')
    expect(token_field).to_contain_text("*")  # required
    expect(token_field).to_contain_text("Token the server checks")
    expect(token_field.locator("input")).to_have_attribute("type", "password")
    expect(dialog.locator('[data-testid="setting-field"][data-name="GREETING"] input')).to_have_attribute(
        "placeholder", "default: hello"
    )

    page.get_by_test_id("install-submit").click()  # the required secret is missing
    expect(token_field).to_contain_text("Required")
    token_field.locator("input").fill(secret)
    dialog.locator('[data-testid="setting-field"][data-name="GREETING"] input').fill("hi there")
    page.get_by_test_id("install-submit").click()
    expect(dialog).to_be_hidden()
    expect(result.get_by_test_id("installed-as")).to_contain_text("echo")

    card = page.locator('[data-testid="installed-plugin"][data-name="echo"]')
    expect(card).to_contain_text("Official registry")
    expect(card.get_by_test_id("plugin-runs")).to_contain_text("uvx echo-mcp-server==1.0.0")
    expect(card.get_by_test_id("plugin-values")).to_contain_text("ECHO_TOKEN set")
    expect(card.get_by_test_id("plugin-values")).to_contain_text("hi there")

    # Test connection: the real server lists its tools.
    card.get_by_test_id("plugin-test").click()
    expect(card.get_by_test_id("test-tools")).to_contain_text("echo", timeout=60_000)
    expect(card.get_by_test_id("test-tools")).to_contain_text("env_digest")
    expect(card.get_by_test_id("test-result")).to_have_attribute("data-ok", "true")

    # Enable it for the project.
    switch = card.get_by_test_id("plugin-project-enabled")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    plugin = next(p for p in server.api("GET", "/api/plugins") if p["name"] == "echo")
    assert {"project_id": project["id"], "enabled": True} in plugin["projects"]
    assert plugin["enabled"] is True

    # After a reload: still there, the secret shown only as "set", never its value.
    page.reload()
    card = page.locator('[data-testid="installed-plugin"][data-name="echo"]')
    expect(card.get_by_test_id("test-tools")).to_contain_text("echo")
    expect(card.get_by_test_id("plugin-project-enabled")).to_have_attribute("aria-checked", "true")
    card.get_by_test_id("plugin-settings").click()
    settings = page.get_by_test_id("plugin-settings-dialog")
    token_field = settings.locator('[data-testid="setting-field"][data-name="ECHO_TOKEN"]')
    expect(token_field.get_by_test_id("secret-state")).to_have_text("set")
    expect(token_field.locator("input")).to_have_value("")
    assert secret not in page.content()
    page.keyboard.press("Escape")
    expect(settings).to_be_hidden()

    # Saving without touching the secret keeps it.
    card.get_by_test_id("plugin-settings").click()
    page.locator('[data-testid="setting-field"][data-name="GREETING"] input').fill("good day")
    page.get_by_test_id("settings-save").click()
    expect(card.get_by_test_id("plugin-values")).to_contain_text("good day")
    plugin = next(p for p in server.api("GET", "/api/plugins") if p["name"] == "echo")
    token = next(s for s in plugin["settings"] if s["name"] == "ECHO_TOKEN")
    assert (token["set"], token["secret"], token.get("value")) == (True, True, None)

    page.get_by_test_id("plugin-search").fill("echo")
    page.get_by_test_id("plugin-search-submit").click()
    expect(
        page.locator(f'[data-testid="search-result"][data-ref="{ECHO}"]').get_by_test_id("installed-as")
    ).to_contain_text("echo")
    page.mouse.move(0, 0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "plugins.png"))
    assert secret not in page.content()
    assert page.errors == []

"""Plugins end to end: registry search and install (local fake registries), custom servers,
secrets that never leave the server, connection tests against real MCP servers, and an agent
run (the real Claude CLI against the fake Messages API) that uses an enabled plugin."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from backend.errors import InvalidInput
from backend.models import BoardEvent, Plugin
from backend.plugins import connection_test, run_servers
from backend.plugins import search as plugin_search
from backend.plugins import service as plugin_service
from backend.plugins.secrets import Redactor, SecretBox
from backend.plugins.settings import apply_settings, option_schema
from mcp_client.discovery import DiscoveryClient, InstallOption
from tests.backend.factories import create_project, create_task
from tests.backend.sse import SSEReader
from tests.conftest import LiveServer, free_port
from tests.fixtures.echo_mcp_server import ECHO_MCP_SERVER
from tests.fixtures.echo_mcp_server import mcp as echo_server
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn
from tests.fixtures.leaky_mcp_server import LEAKY_MCP_SERVER, leak_forms
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

WEATHER = "io.github.acme/weather"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def secret_value() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def weather_entry() -> dict[str, Any]:
    return official_entry(
        WEATHER,
        "1.2.0",
        title="Weather",
        packages=[
            {
                "registryType": "npm",
                "identifier": "@acme/weather-mcp",
                "version": "1.2.0",
                "transport": {"type": "stdio"},
                "environmentVariables": [
                    {"name": "WEATHER_API_KEY", "description": "Your API key", "isRequired": True, "isSecret": True},
                    {"name": "UNITS", "default": "metric", "choices": ["metric", "imperial"]},
                ],
            }
        ],
        remotes=[
            {
                "type": "streamable-http",
                "url": "https://weather.example/{region}/mcp",
                "headers": [{"name": "Authorization", "isSecret": True, "isRequired": True}],
                "variables": {"region": {"choices": ["us", "eu"], "default": "us"}},
            }
        ],
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def registries() -> Iterator[tuple[FakeRegistry, FakeRegistry]]:
    glama, official = FakeRegistry(), FakeRegistry()
    glama.routes[GLAMA_PATH] = glama_route([glama_server(i) for i in range(1, 4)])
    official.routes[OFFICIAL_PATH] = official_route(
        [weather_entry(), official_entry("io.github.acme/other", packages=[])]
    )
    glama.start()
    official.start()
    yield glama, official
    glama.stop()
    official.stop()


@pytest.fixture
async def point_registries(app, settings) -> AsyncIterator[Callable[[str, str], DiscoveryClient]]:
    """Point the app's registry search at the given base URLs (through the settings)."""
    made: list[DiscoveryClient] = []
    original = app.state.discovery

    def point(glama_url: str, official_url: str) -> DiscoveryClient:
        client = plugin_search.discovery_for(
            settings.model_copy(update={"glama_url": glama_url, "mcp_registry_url": official_url})
        )
        made.append(client)
        app.state.discovery = client
        return client

    try:
        yield point
    finally:
        app.state.discovery = original
        for client in made:
            await client.aclose()


@pytest.fixture
def unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


class Recorder:
    """Every response body the test saw, to search them for secrets afterwards."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.bodies.append(response.text)
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


async def plugin_events_text(app, after_id: int = 0) -> str:
    async with app.state.database.session() as session:
        rows = (await session.scalars(select(BoardEvent).where(BoardEvent.id > after_id).order_by(BoardEvent.id))).all()
    return "\n".join(f"{row.type} {json.dumps(row.payload)}" for row in rows)


async def stored_plugins_text(app) -> str:
    async with app.state.database.session() as session:
        rows = (await session.execute(text("SELECT * FROM plugins"))).all()
    return "\n".join(repr(tuple(row)) for row in rows)


async def last_event_id(app) -> int:
    async with app.state.database.session() as session:
        return (await session.scalar(select(func.max(BoardEvent.id)))) or 0


async def plugin_count(app) -> int:
    async with app.state.database.session() as session:
        return await session.scalar(select(func.count()).select_from(Plugin))


def assert_nowhere(secret: str, **places: str) -> None:
    for where, blob in places.items():
        assert secret not in blob, f"a secret value leaked into {where}"


async def install(client, **body: Any) -> dict:
    response = await client.post("/api/plugins", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


# --------------------------------------------------------------------------- built-in plugins


async def test_builtin_plugins_are_registered_once_and_protected(client, app):
    plugins = by_name((await client.get("/api/plugins")).json())
    kanban, knowledge, files = plugins["kanban"], plugins["knowledge"], plugins["filesystem"]
    assert kanban["builtin"] and knowledge["builtin"] and files["builtin"]
    assert kanban["source"] == knowledge["source"] == files["source"] == "builtin"
    assert knowledge["args"] == ["-m", "mcp_servers.knowledge_server"]
    assert files["args"][-2:] == ["--root", "<worktree>"]
    assert files["projects"] == []  # given to no project until someone enables it

    async with app.state.database.session(write=True) as session:  # a second start registers nothing new
        await plugin_service.register_builtins(session)
    names = [p["name"] for p in (await client.get("/api/plugins")).json()]
    assert names.count("kanban") == names.count("knowledge") == names.count("filesystem") == 1

    project = await create_project(client)
    for method, path, body, expected in [
        ("DELETE", f"/api/plugins/{kanban['id']}", None, "cannot be uninstalled"),
        ("DELETE", f"/api/plugins/{files['id']}", None, "disable it instead"),
        ("PATCH", f"/api/plugins/{kanban['id']}", {"enabled": False}, "cannot be disabled"),
        ("PATCH", f"/api/plugins/{files['id']}", {"title": "Mine"}, "only `enabled` can change"),
        ("PUT", f"/api/plugins/{kanban['id']}/projects/{project['id']}", {"enabled": False}, "every project"),
        ("DELETE", f"/api/plugins/{knowledge['id']}", None, "cannot be uninstalled"),
        ("PATCH", f"/api/plugins/{knowledge['id']}", {"enabled": False}, "cannot be disabled"),
        ("PUT", f"/api/plugins/{knowledge['id']}/projects/{project['id']}", {"enabled": False}, "every project"),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 409, (method, path, response.text)
        assert expected in response.json()["detail"]

    response = await client.put(f"/api/plugins/{files['id']}/projects/{project['id']}", json={"enabled": True})
    assert response.status_code == 200, response.text
    assert {"project_id": project["id"], "enabled": True} in response.json()["projects"]
    async with app.state.database.session() as session:
        configs = await run_servers.plugins_for_run(session, project["id"], app.state.secrets)
    assert [(c.name, c.builtin) for c in configs] == [("filesystem", True)]

    from mcp_client.registry import RunTarget, servers_for_run

    servers = servers_for_run(RunTarget("http://127.0.0.1:1", None, project["id"], 1, 1, worktree="/tmp/tree"), configs)
    assert set(servers) == {"kanban", "knowledge", "filesystem"}
    assert servers["knowledge"]["type"] == servers["kanban"]["type"] == "sdk"  # in-process, like the board's tools
    assert servers["filesystem"]["args"][-2:] == ["--root", "/tmp/tree"]
    await client.put(f"/api/plugins/{files['id']}/projects/{project['id']}", json={"enabled": False})


async def test_builtin_plugins_pass_their_connection_tests(client):
    plugins = by_name((await client.get("/api/plugins")).json())
    for name, tool in (("filesystem", "read_file"), ("kanban", "create_task"), ("knowledge", "search_knowledge")):
        response = await client.post(f"/api/plugins/{plugins[name]['id']}/test", params={"timeout": 60})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["ok"], (name, result["error"])
        assert tool in {t["name"] for t in result["tools"]}


# --------------------------------------------------------------------------- search and install from registries


async def test_search_both_registries_and_survive_one_failing(client, registries, point_registries, unused_url):
    glama, official = registries
    point_registries(glama.url, official.url)
    response = await client.get("/api/plugins/search", params={"q": "", "source": "all"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["errors"] == {}
    sources = {(item["source"], item["source_ref"]) for item in body["items"]}
    assert ("official", WEATHER) in sources and ("glama", "owner1/server-1") in sources
    weather = next(i for i in body["items"] if i["source_ref"] == WEATHER)
    assert [o["transport"] for o in weather["install_options"]] == ["stdio", "http"]
    assert weather["installed"] == []

    # The official registry is down: Glama's results still come, with the reason for the other.
    point_registries(glama.url, unused_url)
    body = (await client.get("/api/plugins/search", params={"q": "server"})).json()
    assert body["items"] and {i["source"] for i in body["items"]} == {"glama"}
    assert "Official MCP Registry unreachable" in body["errors"]["official"]

    # Malformed JSON from one registry: a clear error for it, the other's results.
    point_registries(glama.url, official.url)
    official.script(OFFICIAL_PATH, Reply(200, "{not json"), Reply(200, "{not json"))
    body = (await client.get("/api/plugins/search", params={"q": "weather-malformed"})).json()
    assert body["errors"]["official"] == "Official MCP Registry returned malformed JSON"
    assert "glama" not in body["errors"]

    response = await client.get("/api/plugins/search", params={"cursor": "garbage"})
    assert response.status_code == 422 and "cursor" in response.json()["detail"]


async def test_install_from_an_official_registry_result_keeps_the_secret_secret(
    client, app, settings, registries, point_registries, caplog
):
    caplog.set_level(logging.DEBUG)
    glama, official = registries
    point_registries(glama.url, official.url)
    secret, header_secret = secret_value(), secret_value()
    http = Recorder(client)
    start = await last_event_id(app)
    count = await plugin_count(app)
    search = (await http.get("/api/plugins/search", params={"q": "weather", "source": "official"})).json()
    assert [i["source_ref"] for i in search["items"]] == [WEATHER]

    # Required settings are checked against the registry's schema; nothing is written without them.
    response = await http.post("/api/plugins", json={"source": "official", "source_ref": WEATHER, "query": "weather"})
    assert response.status_code == 422
    assert "missing required setting(s): WEATHER_API_KEY" in response.json()["detail"]
    response = await http.post(
        "/api/plugins",
        json={"source": "official", "source_ref": WEATHER, "settings": {"WEATHER_API_KEY": secret, "UNITS": "kelvin"}},
    )
    assert response.status_code == 422 and "must be one of metric, imperial" in response.json()["detail"]
    response = await http.post(
        "/api/plugins",
        json={"source": "official", "source_ref": WEATHER, "option": 5, "settings": {"WEATHER_API_KEY": secret}},
    )
    assert response.status_code == 422 and "install option" in response.json()["detail"]
    response = await http.post("/api/plugins", json={"source": "official", "source_ref": "io.github.acme/missing"})
    assert response.status_code == 422 and "not found" in response.json()["detail"]
    assert await plugin_count(app) == count

    name = unique("weather")
    plugin = await install(
        http, source="official", source_ref=WEATHER, query="weather", name=name, settings={"WEATHER_API_KEY": secret}
    )
    assert (plugin["source"], plugin["source_ref"], plugin["transport"]) == ("official", WEATHER, "stdio")
    assert (plugin["title"], plugin["description"]) == ("Weather", f"The {WEATHER} server")
    assert plugin["command"] == "npx" and "@acme/weather-mcp@1.2.0" in plugin["args"]
    settings_read = by_name(plugin["settings"])
    assert settings_read["WEATHER_API_KEY"] == {
        "name": "WEATHER_API_KEY",
        "set": True,
        "secret": True,
        "value": None,
        "required": True,
        "description": "Your API key",
        "target": "env",
    }
    assert (settings_read["UNITS"]["set"], settings_read["UNITS"]["secret"]) == (False, False)
    search = (await http.get("/api/plugins/search", params={"q": "weather", "source": "official"})).json()
    assert search["items"][0]["installed"] == [name]

    # The remote install option: a URL template and a secret header.
    remote = await install(
        http,
        source="official",
        source_ref=WEATHER,
        option=1,
        name=unique("weather-remote"),
        settings={"Authorization": f"Bearer {header_secret}", "region": "eu"},
    )
    assert remote["transport"] == "http" and remote["url"] == "https://weather.example/{region}/mcp"
    assert by_name(remote["settings"])["Authorization"]["secret"] is True
    assert by_name(remote["settings"])["region"] == {
        "name": "region",
        "set": True,
        "secret": False,
        "value": "eu",
        "required": True,
        "description": None,
        "target": "arg",
    }

    # Runs of a project that enabled them get the values, decrypted, in env / headers / the URL.
    project = await create_project(http.client)
    for item in (plugin, remote):
        response = await http.put(f"/api/plugins/{item['id']}/projects/{project['id']}", json={"enabled": True})
        assert response.status_code == 200, response.text
    async with app.state.database.session() as session:
        configs = by_name(
            [c.__dict__ for c in await run_servers.plugins_for_run(session, project["id"], app.state.secrets)]
        )
    assert configs[name]["env"] == {"WEATHER_API_KEY": secret, "UNITS": "metric"}
    assert configs[remote["name"]]["url"] == "https://weather.example/eu/mcp"
    assert configs[remote["name"]]["headers"] == {"Authorization": f"Bearer {header_secret}"}

    # Switched off globally: no project gets it.
    response = await http.patch(f"/api/plugins/{plugin['id']}", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    async with app.state.database.session() as session:
        names = [c.name for c in await run_servers.plugins_for_run(session, project["id"], app.state.secrets)]
    assert names == [remote["name"]]
    await http.get("/api/plugins")

    key_file = settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for value in (secret, header_secret):
        assert_nowhere(
            value,
            responses="\n".join(http.bodies),
            board_events=await plugin_events_text(app, start),
            database=await stored_plugins_text(app),
            logs=caplog.text,
        )


async def test_install_from_glama_needs_a_command_and_its_settings(client, registries, point_registries):
    glama, official = registries
    point_registries(glama.url, official.url)
    base = {"source": "glama", "source_ref": "owner2/server-2", "query": "Server 2"}
    response = await client.post("/api/plugins", json=base)
    assert response.status_code == 422 and "command" in response.json()["detail"]
    response = await client.post("/api/plugins", json={**base, "command": "uvx", "args": ["server-2"]})
    assert response.status_code == 422 and "TOKEN_2" in response.json()["detail"]
    plugin = await install(client, **base, command="uvx", args=["server-2"], settings={"TOKEN_2": secret_value()})
    assert plugin["name"].startswith("server-2")
    assert (plugin["source"], plugin["title"], plugin["command"]) == ("glama", "Server 2", "uvx")
    token = by_name(plugin["settings"])["TOKEN_2"]
    assert (token["set"], token["secret"], token["value"], token["required"], token["target"]) == (
        True,
        True,
        None,
        True,
        "env",
    )


async def test_a_registry_that_answers_garbage_installs_nothing(client, app, registries, point_registries):
    glama, official = registries
    point_registries(glama.url, official.url)
    official.script(OFFICIAL_PATH, *[Reply(200, b"\x00garbage{")] * 8)
    count, start = await plugin_count(app), await last_event_id(app)
    response = await client.post(
        "/api/plugins", json={"source": "official", "source_ref": "io.github.acme/garbled", "settings": {}}
    )
    assert response.status_code == 502
    assert "malformed JSON" in response.json()["detail"] and "Nothing was installed" in response.json()["detail"]
    assert await plugin_count(app) == count
    assert "plugin.installed" not in await plugin_events_text(app, start)


def test_install_options_resolve_to_what_their_servers_need(tmp_path):
    """An install option's settings reach its server: env, headers, {placeholders} in args and
    the URL, schema defaults for what was not given; without a placeholder's value, no run."""
    box = SecretBox(tmp_path / "secret.key")

    def plugin_for(option: InstallOption, values: dict[str, Any]) -> Plugin:
        plugin = Plugin(
            name="gamma",
            source="official",
            transport=option.transport,
            command=option.command,
            args=option.args,
            url=option.url,
            env={},
            headers={},
            settings={},
            settings_schema=option_schema(option),
        )
        plugin.settings = apply_settings(box, plugin, {}, values)
        return plugin

    package = InstallOption(
        transport="stdio",
        label="pypi: gamma-mcp==0.1.0",
        command="uvx",
        args=["gamma-mcp==0.1.0", "{config_path}", "--port", "8080"],
        env=["GAMMA_KEY", "GAMMA_REGION"],
        variables={"config_path": {"isRequired": True, "description": "Config file"}},
        settings_schema={
            "type": "object",
            "properties": {
                "GAMMA_KEY": {"type": "string", "writeOnly": True},
                "GAMMA_REGION": {"type": "string", "default": "eu"},
            },
            "required": ["GAMMA_KEY"],
        },
    )
    plugin = plugin_for(package, {"GAMMA_KEY": "key-123456", "config_path": "/etc/gamma.toml"})
    assert "key-123456" not in json.dumps(plugin.settings)
    config = run_servers.resolve(plugin, box)
    assert config.args == ["gamma-mcp==0.1.0", "/etc/gamma.toml", "--port", "8080"]
    assert (config.env, config.headers) == ({"GAMMA_KEY": "key-123456", "GAMMA_REGION": "eu"}, {})
    plugin.settings = apply_settings(box, plugin, plugin.settings, {"config_path": None})
    with pytest.raises(InvalidInput, match="missing required setting.*config_path"):
        run_servers.resolve(plugin, box)

    remote = InstallOption(
        transport="http",
        label="remote",
        url="https://{region}.weather.example/mcp",
        headers=["Authorization"],
        variables={"region": {"isRequired": False, "default": "us", "choices": ["us", "eu"]}},
    )
    config = run_servers.resolve(plugin_for(remote, {"Authorization": "Bearer t-123456"}), box)
    assert (config.url, config.headers, config.env) == (
        "https://us.weather.example/mcp",
        {"Authorization": "Bearer t-123456"},
        {},
    )
    config = run_servers.resolve(plugin_for(remote, {"Authorization": "Bearer t-123456", "region": "eu"}), box)
    assert config.url == "https://eu.weather.example/mcp"


# --------------------------------------------------------------------------- custom plugins, secrets, connection tests


async def test_custom_stdio_plugin_secrets_projects_test_and_removal(client, app, live_server, caplog):
    caplog.set_level(logging.DEBUG)
    token, marked = secret_value(), secret_value()
    http = Recorder(client)
    start = await last_event_id(app)
    name = unique("echo")
    plugin = await install(
        http,
        name=name,
        title="Echo",
        command=sys.executable,
        args=[ECHO_MCP_SERVER],
        env={"ECHO_TOKEN": token, "PLAIN": "visible", "MARKED": {"value": marked, "secret": True}},
    )
    assert (plugin["source"], plugin["transport"], plugin["enabled"]) == ("custom", "stdio", True)
    assert plugin["env"] == [
        {"name": "ECHO_TOKEN", "set": True, "secret": True, "value": None},
        {"name": "MARKED", "set": True, "secret": True, "value": None},
        {"name": "PLAIN", "set": True, "secret": False, "value": "visible"},
    ]
    assert (await http.post("/api/plugins", json={"name": name, "command": "x"})).status_code == 409

    # A secret left out keeps its value; "" clears one.
    response = await http.patch(
        f"/api/plugins/{plugin['id']}", json={"env": {"PLAIN": "changed"}, "title": "Echo server"}
    )
    assert response.status_code == 200, response.text
    env = by_name(response.json()["env"])
    assert env["PLAIN"]["value"] == "changed" and env["ECHO_TOKEN"]["set"] and env["MARKED"]["set"]
    response = await http.patch(f"/api/plugins/{plugin['id']}", json={"env": {"MARKED": ""}})
    assert "MARKED" not in by_name(response.json()["env"])

    # Enabled for one project only.
    mine, other = await create_project(http.client), await create_project(http.client)
    response = await http.put(f"/api/plugins/{plugin['id']}/projects/{mine['id']}", json={"enabled": True})
    assert response.status_code == 200 and response.json()["projects"] == [{"project_id": mine["id"], "enabled": True}]
    async with app.state.database.session() as session:
        mine_configs = await run_servers.plugins_for_run(session, mine["id"], app.state.secrets)
        other_configs = await run_servers.plugins_for_run(session, other["id"], app.state.secrets)
    assert [c.name for c in mine_configs] == [name] and other_configs == []
    assert mine_configs[0].env == {"ECHO_TOKEN": token, "PLAIN": "changed"}
    assert token not in repr(mine_configs[0])

    # The connection test starts the real server and lists its tools; the result is kept.
    response = await http.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 60})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is True, result["error"]
    assert {t["name"] for t in result["tools"]} == {"echo", "env_digest"}
    listed = by_name((await http.get("/api/plugins")).json())[name]
    assert listed["last_test"]["ok"] is True and listed["last_test"]["tested_at"] == result["tested_at"]

    # The project goes: so does its switch.
    assert (await http.delete(f"/api/projects/{mine['id']}")).status_code == 204
    assert (await http.get(f"/api/plugins/{plugin['id']}")).json()["projects"] == []

    assert (await http.delete(f"/api/plugins/{plugin['id']}")).status_code == 204
    assert (await http.get(f"/api/plugins/{plugin['id']}")).status_code == 404
    events = await plugin_events_text(app, start)
    assert "plugin.installed" in events and "plugin.updated" in events
    assert f'plugin.removed {{"id": {plugin["id"]}, "name": "{name}"}}' in events

    # The live stream's replay carries the same events, without the secrets.
    end = await last_event_id(app)
    replayed: list[str] = []
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as live:
        async with live.stream("GET", "/api/events", params={"last_event_id": str(start)}) as stream:
            reader = SSEReader(stream)
            while True:
                event = await asyncio.wait_for(reader.next(), 10)
                replayed.append(event.data)
                if int(event.id) >= end:
                    break
    assert any('"plugin.removed"' in data for data in replayed)
    for value in (token, marked):
        assert_nowhere(
            value,
            responses="\n".join(http.bodies),
            board_events=events,
            replay="\n".join(replayed),
            logs=caplog.text,
        )


async def test_connection_test_failures_are_clear(client, tmp_path):
    async def tried(**body: Any) -> dict:
        plugin = await install(client, name=unique("broken"), **body)
        response = await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 10})
        assert response.status_code == 200, response.text
        return response.json()

    result = await tried(command="definitely-not-a-command-kanban")
    assert result["ok"] is False and "Command not found" in result["error"]

    secret = secret_value()
    code = "import os, sys; print('fatal: bad token ' + os.environ['SOME_TOKEN'], file=sys.stderr); sys.exit(3)"
    result = await tried(command=sys.executable, args=["-c", code], env={"SOME_TOKEN": secret})
    assert result["ok"] is False
    assert "exited" in result["error"] and "fatal: bad token [secret]" in result["error"]
    assert secret not in json.dumps(result)

    pid_file = tmp_path / "hanging.pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"
    plugin = await install(client, name=unique("hangs"), command=sys.executable, args=["-c", code, str(pid_file)])
    started = asyncio.get_running_loop().time()
    result = (await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 3})).json()
    assert result["ok"] is False and "did not answer within 3 s" in result["error"]
    assert asyncio.get_running_loop().time() - started < 15
    pid = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the hanging server (pid {pid}) was left running")

    result = await tried(url=f"http://127.0.0.1:{free_port()}/mcp")
    assert result["ok"] is False and "could not be reached" in result["error"]


async def test_a_slow_connection_test_holds_up_no_other_writer(client, tmp_path):
    """The route uses the WriteSession, but waits for the server outside the transaction."""
    started = tmp_path / "started"
    code = "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(300)"
    plugin = await install(client, name=unique("slow"), command=sys.executable, args=["-c", code, str(started)])
    loop = asyncio.get_running_loop()
    testing = asyncio.create_task(client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 5}))
    async with asyncio.timeout(10):
        while not started.exists():
            await asyncio.sleep(0.05)
    began = loop.time()
    project = await create_project(client)  # writes (and records an event) meanwhile
    renamed = await client.patch(f"/api/plugins/{plugin['id']}", json={"title": "Slow one"})
    assert renamed.status_code == 200, renamed.text
    assert loop.time() - began < 3 and not testing.done()
    response = await testing
    assert response.status_code == 200 and "did not answer within 5 s" in response.json()["error"]
    stored = (await client.get(f"/api/plugins/{plugin['id']}")).json()
    # The test's write came after the rename and kept it (it read the plugin again).
    assert stored["title"] == "Slow one" and stored["last_test"]["ok"] is False
    assert (await client.get(f"/api/projects/{project['id']}")).status_code == 200


class RequireBearer:
    """ASGI middleware: HTTP requests without the right bearer token get 401."""

    def __init__(self, app, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


async def test_connection_test_over_streamable_http_with_a_secret_header(client, app, caplog):
    caplog.set_level(logging.DEBUG)
    token = secret_value()
    start = await last_event_id(app)
    async with LiveServer(RequireBearer(echo_server.http_app(path="/mcp"), token)) as server:  # type: ignore[arg-type]
        plugin = await install(
            client, name=unique("echo-http"), url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"}
        )
        assert plugin["transport"] == "http"
        # An Authorization header is a secret without being marked one.
        assert plugin["headers"] == [{"name": "Authorization", "set": True, "secret": True, "value": None}]
        response = await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 30})
        result = response.json()
        assert result["ok"] is True, result["error"]
        assert {t["name"] for t in result["tools"]} == {"echo", "env_digest"}

        wrong = secret_value()
        await client.patch(f"/api/plugins/{plugin['id']}", json={"headers": {"Authorization": f"Bearer {wrong}"}})
        result = (await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 30})).json()
        assert result["ok"] is False and "auth refused (HTTP 401)" in result["error"]
        read = (await client.get(f"/api/plugins/{plugin['id']}")).json()
        assert read["headers"] == [{"name": "Authorization", "set": True, "secret": True, "value": None}]
    for value in (token, wrong):
        assert_nowhere(
            value, board_events=await plugin_events_text(app, start), logs=caplog.text, read=json.dumps(read)
        )


async def test_connection_test_over_sse(client):
    async with LiveServer(echo_server.http_app(transport="sse", path="/sse")) as server:  # type: ignore[arg-type]
        plugin = await install(client, name=unique("echo-sse"), transport="sse", url=f"{server.url}/sse")
        result = (await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 30})).json()
    assert result["ok"] is True, result["error"]
    assert {t["name"] for t in result["tools"]} == {"echo", "env_digest"}


# --------------------------------------------------------------------------- bad input


async def snapshot(app) -> dict[str, list]:
    async with app.state.database.session() as session:
        return {
            table: [tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))).all()]
            for table in ("plugins", "plugin_projects", "board_events")
        }


async def test_bad_input_is_a_4xx_with_a_message_and_changes_nothing(client, app):
    plugins = by_name((await client.get("/api/plugins")).json())
    kanban = plugins["kanban"]["id"]
    custom = (await install(client, name=unique("custom"), command="some-server"))["id"]
    project = (await create_project(client))["id"]
    p = f"/api/plugins/{custom}"
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/api/plugins", {}, 422, "give a command"),
        ("POST", "/api/plugins", {"name": "Bad Name", "command": "x"}, 422, "name"),
        ("POST", "/api/plugins", {"name": "a--b", "command": "x"}, 422, "name"),
        ("POST", "/api/plugins", {"name": "x" * 65, "command": "x"}, 422, "name"),
        ("POST", "/api/plugins", {"command": "x", "url": "http://127.0.0.1:1/mcp"}, 422, "not both"),
        ("POST", "/api/plugins", {"transport": "stdio", "url": "http://127.0.0.1:1/mcp"}, 422, "needs a command"),
        ("POST", "/api/plugins", {"transport": "sse", "command": "x"}, 422, "needs a url"),
        ("POST", "/api/plugins", {"url": "ftp://example.test/mcp"}, 422, "url"),
        ("POST", "/api/plugins", {"transport": "carrier-pigeon", "command": "x"}, 422, "transport"),
        ("POST", "/api/plugins", {"command": "x", "headers": {"A": "b"}}, 422, "headers"),
        ("POST", "/api/plugins", {"url": "http://127.0.0.1:1/mcp", "env": {"A": "b"}}, 422, "env"),
        ("POST", "/api/plugins", {"command": "x", "env": {"1BAD": "v"}}, 422, "env"),
        ("POST", "/api/plugins", {"command": "x", "env": {"A": {"value": "v", "extra": 1}}}, 422, "unknown field"),
        ("POST", "/api/plugins", {"command": "x", "env": {"A": 5}}, 422, "env"),
        ("POST", "/api/plugins", {"command": "x", "settings": {"A": "b"}}, 422, "unknown setting"),
        ("POST", "/api/plugins", {"command": "x", "args": "one two"}, 422, "args"),
        ("POST", "/api/plugins", {"command": "   "}, 422, "command"),
        ("POST", "/api/plugins", {"command": "x\x00"}, 422, "NUL"),
        ("POST", "/api/plugins", {"command": "x", "colour": "red"}, 422, "unknown field"),
        ("POST", "/api/plugins", {"source": "official"}, 422, "source_ref is required"),
        ("POST", "/api/plugins", {"source": "official", "source_ref": "a/b", "command": "y"}, 422, "install option"),
        ("POST", "/api/plugins", {"source": "npm", "source_ref": "a", "command": "y"}, 422, "source"),
        ("POST", "/api/plugins", {"command": "x", "option": 1}, 422, "option"),
        ("POST", "/api/plugins", {"name": "kanban", "command": "x"}, 409, "already installed"),
        ("POST", "/api/plugins", "{not json", 422, "not valid JSON"),
        ("GET", "/api/plugins/987654", None, 404, "Plugin 987654 not found"),
        ("GET", "/api/plugins/abc", None, 422, "plugin_id"),
        ("GET", f"/api/plugins/{'9' * 30}", None, 422, "plugin_id"),
        ("GET", "/api/plugins/search?source=npm", None, 422, "source"),
        ("GET", "/api/plugins/search?limit=0", None, 422, "limit"),
        ("GET", "/api/plugins/search?cursor=garbage", None, 422, "cursor"),
        ("GET", "/api/plugins/search?q=%00", None, 422, "NUL"),
        ("PATCH", "/api/plugins/987654", {}, 404, "not found"),
        ("PATCH", f"/api/plugins/{kanban}", {"enabled": False}, 409, "cannot be disabled"),
        ("PATCH", p, {"enabled": None}, 422, "enabled cannot be null"),
        ("PATCH", p, {"enabled": "sometimes"}, 422, "enabled"),
        ("PATCH", p, {"url": "http://127.0.0.1:1/mcp"}, 422, "stdio server"),
        ("PATCH", p, {"headers": {"X-Key": "v"}}, 422, "headers"),
        ("PATCH", p, {"settings": {"nope": "1"}}, 422, "unknown setting"),
        ("PATCH", p, {"source": "official"}, 422, "unknown field"),
        ("PUT", f"{p}/projects/987654", {"enabled": True}, 404, "Project 987654 not found"),
        ("PUT", f"{p}/projects/{project}", {}, 422, "enabled"),
        ("PUT", f"{p}/projects/{project}", {"enabled": "maybe"}, 422, "enabled"),
        ("PUT", f"/api/plugins/987654/projects/{project}", {"enabled": True}, 404, "Plugin 987654 not found"),
        ("POST", "/api/plugins/987654/test", None, 404, "not found"),
        ("POST", f"{p}/test?timeout=0", None, 422, "timeout"),
        ("POST", f"{p}/test?timeout=1000", None, 422, "timeout"),
        ("DELETE", "/api/plugins/987654", None, 404, "not found"),
        ("DELETE", f"/api/plugins/{kanban}", None, 409, "cannot be uninstalled"),
    ]
    before = await snapshot(app)
    for method, path, body, status, expected in cases:
        kwargs: dict[str, Any] = {}
        if isinstance(body, str):
            kwargs = {"content": body, "headers": {"content-type": "application/json"}}
        elif body is not None:
            kwargs = {"json": body}
        response = await client.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, body, response.text)
        assert expected in response.json()["detail"], (method, path, body, response.json()["detail"])
    assert await snapshot(app) == before


# --------------------------------------------------------------------------- an agent run uses an enabled plugin


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch):
    for name, value in fake_anthropic.env(max_retries=0, tool_search=False).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


async def run_events(client, run_id: int) -> list[dict]:
    events, after = [], 0
    while True:
        page = (await client.get(f"/api/runs/{run_id}/events", params={"after_seq": after, "limit": 200})).json()
        events += page["items"]
        if page["next_after_seq"] is None:
            return events
        after = page["next_after_seq"]


async def wait_for_run(client, run_id: int, timeout: float = 180) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = (await client.get(f"/api/runs/{run_id}")).json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']}")
        await asyncio.sleep(0.1)


async def test_an_agent_run_uses_a_plugin_enabled_for_its_project(client, app, agent_env: FakeAnthropic, caplog):
    caplog.set_level(logging.DEBUG)
    secret = secret_value()
    digest = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    http = Recorder(client)
    start = await last_event_id(app)
    name = f"echo_{uuid.uuid4().hex[:6]}"
    plugin = await install(http, name=name, command=sys.executable, args=[ECHO_MCP_SERVER], env={"ECHO_SECRET": secret})
    project = await create_project(http.client)
    assert (
        await http.put(f"/api/plugins/{plugin['id']}/projects/{project['id']}", json={"enabled": True})
    ).status_code == 200
    # Tools of plugins ask for approval unless the project always allows them.
    response = await http.patch(f"/api/projects/{project['id']}", json={"allowed_tools": [f"mcp__{name}"]})
    assert response.status_code == 200, response.text

    task = await create_task(http.client, project["id"], title="Use the echo plugin")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [
            Turn.mcp(name, "echo", {"text": "ping"}),
            Turn.mcp(name, "env_digest", {"name": "ECHO_SECRET"}),
            Turn.text("The plugin answered"),
        ],
    )
    run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    run = await wait_for_run(client, run["id"])
    assert run["status"] == "succeeded", run["error"]
    events = await run_events(client, run["id"])
    uses = [e["payload"]["name"] for e in events if e["type"] == "tool_use"]
    assert uses == [f"mcp__{name}__echo", f"mcp__{name}__env_digest"]
    results = [e["payload"]["content"] for e in events if e["type"] == "tool_result"]
    assert any("echo: ping" in r for r in results), results
    assert any(digest in r for r in results), results  # the secret reached the server's environment
    init = next(e for e in events if e["type"] == "init")
    assert name in {s.get("name") for s in init["payload"]["mcp_servers"]}

    await http.get(f"/api/runs/{run['id']}")
    await http.get(f"/api/plugins/{plugin['id']}")
    assert_nowhere(
        secret,
        responses="\n".join(http.bodies),
        run_events=json.dumps(events),
        board_events=await plugin_events_text(app, start),
        logs=caplog.text,
        requests_to_the_model="\n".join(r.all_text() for r in agent_env.main_requests()),
    )


# --------------------------------------------------------------------------- what a test stores


async def test_a_connection_test_hides_secrets_the_server_wrote_in_other_forms(client, app):
    secret = secret_value()
    start = await last_event_id(app)
    plugin = await install(
        client,
        name=unique("leaky"),
        command=sys.executable,
        args=[LEAKY_MCP_SERVER, "leak", "SERVICE_TOKEN"],
        env={"SERVICE_TOKEN": secret},
    )
    response = await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 10})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is False
    # The server's stderr is kept (it says why the server stopped), its secret hidden in every form.
    assert "fatal: the API refused the key" in result["error"]
    forms = leak_forms(secret)
    lines = [line for line in result["error"].splitlines() if line.startswith("debug ")]
    assert len(lines) == len(forms), result["error"]
    for label, line in zip(forms, lines, strict=True):
        # What is written just before a secret can continue it (the "f" of "half" when the
        # first half ends in "f"), so the redaction may take a label's last letters too.
        # base64(user:secret) keeps the characters that encode "user:" alone, and its padding.
        before, hidden, after = line.partition("[secret]")
        expected = f"debug {label}: " + ("dXNlcjp" if label == "basic auth" else "")
        assert hidden and expected.startswith(before) and len(before) > len("debug "), (label, line)
        assert after == "" or (label == "basic auth" and re.fullmatch(r"[A-Za-z0-9_-]{0,3}=*", after)), (label, line)
    places = {
        "test result": json.dumps(result),
        "plugin": (await client.get(f"/api/plugins/{plugin['id']}")).text,
        "database": await stored_plugins_text(app),
        "board events": await plugin_events_text(app, start),
    }
    for label, value in {"exact": secret, **forms}.items():
        for where, body in places.items():
            assert value.lower() not in body.lower(), (label, where)


async def test_nul_characters_from_a_server_are_stored_as_replacement_characters(client):
    plugin = await install(client, name=unique("nul"), command=sys.executable, args=[LEAKY_MCP_SERVER, "nul"])
    response = await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 20})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is True, result["error"]
    assert result["tools"] == [{"name": "nul\ufffdtool", "description": "before\ufffdafter"}]
    assert (await client.get(f"/api/plugins/{plugin['id']}")).json()["last_test"]["tools"] == result["tools"]

    plugin = await install(client, name=unique("nul-exit"), command=sys.executable, args=[LEAKY_MCP_SERVER, "nul-exit"])
    response = await client.post(f"/api/plugins/{plugin['id']}/test", params={"timeout": 10})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is False and "fatal: bad\ufffdbyte in config\ufffd" in result["error"]
    assert "\x00" not in response.text
    assert (await client.get(f"/api/plugins/{plugin['id']}")).json()["last_test"]["error"] == result["error"]


def test_stored_text_is_valid_unicode_and_short_values_are_not_hidden():
    assert connection_test.storable("a\x00b\ud800c\udfff", str) == "a\ufffdb\ufffdc\ufffd"
    assert connection_test.storable("a\ud800b", str).encode("utf-8")
    redact = Redactor(["abc", "", "pass-word-1234"])
    # Values shorter than 4 characters would hide half of every message; they stay.
    assert redact("abc and ABC") == "abc and ABC"
    assert redact("the PASS WORD 1234 and pass_word_1234.") == "the [secret] and [secret]."
    assert redact("no secrets here") == "no secrets here"

"""Registry discovery against real HTTP servers on 127.0.0.1 that serve the registries' documented shapes."""

from __future__ import annotations

import asyncio
import time

import pytest

from mcp_client.discovery import (
    DEFAULT_GLAMA_URL,
    DEFAULT_OFFICIAL_URL,
    DiscoveryClient,
    GlamaClient,
    InvalidCursor,
    OfficialRegistryClient,
    RegistryServer,
    SearchResults,
    ToolInfo,
)
from tests.mcp_client.fake_registries import (
    GLAMA_PATH,
    OFFICIAL_PATH,
    Reply,
    glama_route,
    glama_server,
    official_entry,
    official_route,
)

NPM = {
    "registryType": "npm",
    "registryBaseUrl": "https://npm.example.com",
    "identifier": "@acme/alpha-mcp",
    "version": "1.1.0",
    "runtimeHint": "npx",
    "transport": {"type": "stdio"},
    "environmentVariables": [
        {"name": "ALPHA_API_KEY", "description": "API key", "isRequired": True, "isSecret": True},
        {"name": "ALPHA_REGION", "description": "Region", "default": "eu", "choices": ["eu", "us"]},
    ],
}
PYPI = {
    "registryType": "pypi",
    "identifier": "gamma-mcp",
    "version": "0.1.0",
    "runtimeHint": "uvx",
    "transport": {"type": "stdio"},
    "packageArguments": [
        {"type": "positional", "valueHint": "config_path", "isRequired": True, "description": "Config file"},
        {"type": "named", "name": "--port", "value": "8080"},
        {"type": "named", "name": "--verbose", "format": "boolean"},
    ],
}
OCI = {
    "registryType": "oci",
    "identifier": "images.example.com/acme/delta",
    "version": "2.0.0",
    "runtimeHint": "docker",
    "transport": {"type": "stdio"},
    "environmentVariables": [{"name": "DELTA_TOKEN", "isRequired": True, "isSecret": True}],
}
REMOTE = {
    "type": "streamable-http",
    "url": "https://{region}.weather.example/mcp",
    "headers": [{"name": "Authorization", "description": "Bearer token", "isRequired": True, "isSecret": True}],
    "variables": {"region": {"description": "Region", "choices": ["us", "eu"], "default": "us"}},
}

OFFICIAL_ENTRIES = [
    official_entry("com.example/alpha", "1.0.0", is_latest=False, packages=[{**NPM, "version": "1.0.0"}]),
    official_entry("com.example/alpha", "1.1.0", packages=[NPM], title="Alpha"),
    official_entry("com.example/beta", "2.0.0", status="deprecated", packages=[NPM]),
    official_entry("com.example/delta", "2.0.0", packages=[OCI], remotes=[{**REMOTE, "type": "sse"}]),
    official_entry("com.example/epsilon", "1.0.0", status="deleted", packages=[PYPI]),
    official_entry("com.example/gamma", "0.0.9", is_latest=False, packages=[PYPI]),
    official_entry("com.example/gamma", "0.1.0", packages=[PYPI]),
    official_entry("io.github.user/weather", "1.0.2", remotes=[REMOTE], websiteUrl="https://weather.example"),
]
ACTIVE_LATEST = {
    "com.example/alpha": "1.1.0",
    "com.example/delta": "2.0.0",
    "com.example/gamma": "0.1.0",
    "io.github.user/weather": "1.0.2",
}


@pytest.fixture
def official_data(official):
    official.routes[OFFICIAL_PATH] = official_route(OFFICIAL_ENTRIES)
    return official


# --------------------------------------------------------------------------- Glama


async def test_glama_results_are_normalised(glama, official, make_client):
    results = await make_client(glama, official).search("server 3", source="glama")
    assert results.errors == {}
    assert results.next_cursors == {"glama": None} and results.next_cursor is None
    (server,) = results.items
    assert server == RegistryServer(
        source="glama",
        source_ref="owner3/server-3",
        name="owner3/server-3",
        title="Server 3",
        description="Does thing number 3",
        repository_url="https://github.com/owner3/server-3",
        website_url="https://glama.ai/mcp/servers/id0003",
        license="MIT License",
        tools=[{"name": "tool_3", "description": "Tool 3"}],
        settings_schema={
            "type": "object",
            "required": ["TOKEN_3"],
            "properties": {"TOKEN_3": {"type": "string", "description": "API token"}},
        },
        install_options=[],
        hosting="local",
    )
    assert server.key == "glama:owner3/server-3"
    assert server.model_dump(mode="json")["key"] == "glama:owner3/server-3"
    assert glama.calls(GLAMA_PATH)[0].params == {"first": "20", "query": "server 3"}
    assert official.calls() == []


async def test_glama_pagination(glama, official, make_client):
    client = make_client(glama, official)
    seen, cursor, pages = [], None, 0
    while True:
        results = await client.search(source="glama", limit=2, cursor=cursor)
        pages += 1
        seen += [s.title for s in results.items]
        cursor = results.next_cursor
        assert cursor == results.next_cursors["glama"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"Server {i}" for i in range(1, 6)]
    params = [c.params for c in glama.calls(GLAMA_PATH)]
    assert "after" not in params[0] and all("after" in p for p in params[1:])
    assert all(p["first"] == "2" and "query" not in p for p in params)


async def test_glama_entry_with_missing_fields(glama, official, make_client):
    glama.routes[GLAMA_PATH] = glama_route(
        [
            {"id": "bare1", "name": "Bare"},
            glama_server(
                2, spdxLicense=None, attributes=["hosting:remote-capable"], environmentVariablesJsonSchema=None
            ),
        ]
    )
    bare, other = (await make_client(glama, official).search(source="glama")).items
    assert (bare.source_ref, bare.title, bare.tools, bare.license, bare.hosting) == ("bare1", "Bare", None, None, None)
    assert bare.settings_schema == {"type": "object", "properties": {}, "required": []}
    assert other.license is None and other.hosting == "remote"
    assert other.settings_schema["properties"] == {}


async def test_glama_api_key_is_sent_as_bearer_only_to_glama(glama, official_data, make_client):
    await make_client(glama, official_data, glama_api_key="secret-key").search("server")
    assert glama.calls()[0].headers["authorization"] == "Bearer secret-key"
    assert "authorization" not in official_data.calls()[0].headers
    await make_client(glama, official_data).search("server")
    assert "authorization" not in glama.calls()[1].headers


async def test_glama_skips_entries_that_are_not_objects(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(body={"pageInfo": {}, "servers": ["junk", 42, glama_server(7)]}))
    results = await make_client(glama, official).search(source="glama")
    assert [s.title for s in results.items] == ["Server 7"] and results.errors == {}


async def test_glama_fields_of_the_wrong_type_count_as_absent(glama, official, make_client):
    odd = glama_server(
        8,
        name=42,
        attributes=[{"not": "a string"}, "hosting:hybrid"],
        tools=["junk", {"description": "no name"}, {"name": "kept", "description": 7}],
        spdxLicense="MIT",
        repository=["not", "an", "object"],
        environmentVariablesJsonSchema={"properties": {"A": {"type": "string"}}, "required": "A"},
    )
    no_props = glama_server(9, environmentVariablesJsonSchema={"properties": ["A"], "required": ["A"]})
    glama.script(GLAMA_PATH, Reply(body={"pageInfo": {"hasNextPage": True}, "servers": [odd, no_props]}))
    results = await make_client(glama, official).search(source="glama")
    assert results.errors == {} and results.next_cursor is None  # no end cursor: no next page
    first, second = results.items
    assert (first.source_ref, first.title, first.license, first.repository_url) == ("owner8/server-8", None, None, None)
    assert first.hosting == "hybrid"
    assert first.tools == [ToolInfo(name="kept")]
    assert first.settings_schema == {"type": "object", "properties": {"A": {"type": "string"}}, "required": []}
    assert second.settings_schema == {"type": "object", "properties": {}, "required": []}


# --------------------------------------------------------------------------- official registry


async def test_official_keeps_only_active_latest_versions(glama, official_data, make_client):
    results = await make_client(glama, official_data).search(source="official", limit=100)
    assert {s.name: s.version for s in results.items} == ACTIVE_LATEST
    assert results.errors == {} and results.next_cursor is None
    params = official_data.calls(OFFICIAL_PATH)[0].params
    assert params == {"limit": "100", "version": "latest"}


async def test_official_pagination(glama, official_data, make_client):
    client = make_client(glama, official_data)
    found: list[str] = []
    cursor = None
    for _ in range(10):
        results = await client.search(source="official", limit=3, cursor=cursor)
        found += [s.name for s in results.items]
        cursor = results.next_cursor
        if cursor is None:
            break
    assert sorted(found) == sorted(ACTIVE_LATEST) and len(found) == len(set(found))
    cursors = [c.params.get("cursor") for c in official_data.calls(OFFICIAL_PATH)]
    assert cursors == [None, "com.example/beta:2.0.0", "com.example/gamma:0.0.9"]


async def test_official_search_parameter(glama, official_data, make_client):
    results = await make_client(glama, official_data).search("weather", source="official", limit=5)
    assert [s.name for s in results.items] == ["io.github.user/weather"]
    assert official_data.calls()[0].params == {"limit": "5", "version": "latest", "search": "weather"}


async def test_official_accepts_older_shapes(glama, official, make_client):
    older = {
        "servers": [
            {"name": "com.example/old", "description": "Old shape", "version": "0.5.0", "status": "active"},
            {"name": "com.example/gone", "description": "Old shape", "version": "0.5.0", "status": "deleted"},
        ],
        "metadata": {"next_cursor": "abc", "count": 2},
    }
    official.script(OFFICIAL_PATH, Reply(body=older))
    results = await make_client(glama, official).search(source="official")
    assert [s.name for s in results.items] == ["com.example/old"]
    assert results.next_cursor == "abc"


# --------------------------------------------------------------------------- install options


async def _official_by_name(glama, official_data, make_client) -> dict[str, RegistryServer]:
    results = await make_client(glama, official_data).search(source="official", limit=100)
    return {s.name: s for s in results.items}


async def test_npm_install_option(glama, official_data, make_client):
    alpha = (await _official_by_name(glama, official_data, make_client))["com.example/alpha"]
    (option,) = alpha.install_options
    assert option.model_dump() == {
        "transport": "stdio",
        "label": "npm: @acme/alpha-mcp@1.1.0",
        "command": "npx",
        "args": ["-y", "@acme/alpha-mcp@1.1.0"],
        "url": None,
        "headers": [],
        "env": ["ALPHA_API_KEY", "ALPHA_REGION"],
        "variables": {},
        "settings_schema": {
            "type": "object",
            "properties": {
                "ALPHA_API_KEY": {"type": "string", "description": "API key", "writeOnly": True},
                "ALPHA_REGION": {"type": "string", "description": "Region", "default": "eu", "enum": ["eu", "us"]},
            },
            "required": ["ALPHA_API_KEY"],
        },
        "registry_type": "npm",
    }
    assert alpha.settings_schema == option.settings_schema
    assert (alpha.title, alpha.hosting, alpha.tools, alpha.license) == ("Alpha", "local", None, None)
    assert alpha.repository_url == "https://github.com/alpha/repo"


async def test_pypi_install_option_with_arguments(glama, official_data, make_client):
    gamma = (await _official_by_name(glama, official_data, make_client))["com.example/gamma"]
    (option,) = gamma.install_options
    assert (option.command, option.label) == ("uvx", "pypi: gamma-mcp==0.1.0")
    assert option.args == ["gamma-mcp==0.1.0", "{config_path}", "--port", "8080"]
    assert option.variables == {"config_path": {"isRequired": True, "description": "Config file"}}
    assert option.env == [] and option.settings_schema["properties"] == {}


async def test_oci_and_sse_remote_install_options(glama, official_data, make_client):
    delta = (await _official_by_name(glama, official_data, make_client))["com.example/delta"]
    oci, sse = delta.install_options
    assert (oci.command, oci.label) == ("docker", "oci: images.example.com/acme/delta:2.0.0")
    assert oci.args == ["run", "-i", "--rm", "-e", "DELTA_TOKEN", "images.example.com/acme/delta:2.0.0"]
    assert oci.env == ["DELTA_TOKEN"]
    assert sse.transport == "sse" and sse.url == "https://{region}.weather.example/mcp"
    assert delta.hosting == "hybrid"
    # The server-level schema lists every setting; `required` follows the first option.
    assert set(delta.settings_schema["properties"]) == {"DELTA_TOKEN", "Authorization"}
    assert delta.settings_schema["required"] == ["DELTA_TOKEN"]


async def test_remote_install_option(glama, official_data, make_client):
    weather = (await _official_by_name(glama, official_data, make_client))["io.github.user/weather"]
    (option,) = weather.install_options
    assert option.transport == "http" and option.command is None and option.args == []
    assert option.label == "remote (streamable HTTP): https://{region}.weather.example/mcp"
    assert option.headers == ["Authorization"]
    assert option.variables["region"] == {
        "isRequired": False,
        "description": "Region",
        "default": "us",
        "choices": ["us", "eu"],
    }
    assert option.settings_schema["required"] == ["Authorization"]
    assert option.settings_schema["properties"]["Authorization"]["writeOnly"] is True
    assert weather.hosting == "remote" and weather.website_url == "https://weather.example"


async def test_packages_without_a_runner_are_not_offered(glama, official, make_client):
    entry = official_entry(
        "com.example/mixed",
        packages=[
            {"registryType": "nuget", "identifier": "Acme.Mcp", "version": "1.0.0", "transport": {"type": "stdio"}},
            {"registryType": "mcpb", "identifier": "https://example.com/x.mcpb", "transport": {"type": "stdio"}},
            {**NPM, "transport": {"type": "streamable-http", "url": "http://localhost:8080/mcp"}},
            {"registryType": "npm", "identifier": "plain-mcp", "transport": {"type": "stdio"}},
            {"registryType": "oci", "identifier": "images.example.com/acme/tagged:3.1", "version": "3.1"},
            "junk",
        ],
        remotes=[{"type": "websocket", "url": "wss://x"}, {"type": "sse"}],
    )
    official.script(OFFICIAL_PATH, Reply(body={"servers": [entry], "metadata": {}}))
    (server,) = (await make_client(glama, official).search(source="official")).items
    assert [(o.label, o.args) for o in server.install_options] == [
        ("npm: plain-mcp", ["-y", "plain-mcp"]),
        ("oci: images.example.com/acme/tagged:3.1", ["run", "-i", "--rm", "images.example.com/acme/tagged:3.1"]),
    ]
    assert server.hosting == "local"


async def test_official_fields_of_the_wrong_type_count_as_absent(glama, official, make_client):
    package = {
        **NPM,
        "environmentVariables": [
            "junk",
            {"description": "no name"},
            {"name": "KEPT", "isSecret": "yes", "isRequired": 1},
        ],
    }
    remote = {**REMOTE, "headers": "Authorization", "variables": ["region"], "url": "https://weather.example/mcp"}
    entry = official_entry("com.example/odd", packages=[package, 5], remotes=[remote], title=["not text"])
    entry["_meta"]["io.modelcontextprotocol.registry/official"]["isLatest"] = "false"  # only false itself counts
    official.script(OFFICIAL_PATH, Reply(body={"servers": [entry], "metadata": {"nextCursor": 3}}))
    results = await make_client(glama, official).search(source="official")
    assert results.errors == {} and results.next_cursor is None
    (server,) = results.items
    assert server.title is None and server.hosting == "hybrid"
    npm, http = server.install_options
    assert npm.env == ["KEPT"] and npm.settings_schema["required"] == ["KEPT"]
    assert npm.settings_schema["properties"]["KEPT"] == {"type": "string", "writeOnly": True}
    assert (http.url, http.headers, http.variables) == ("https://weather.example/mcp", [], {})


async def test_npm_runtime_arguments_keep_yes_flag(glama, official, make_client):
    entry = official_entry(
        "com.example/args",
        packages=[
            {
                **NPM,
                "runtimeArguments": [{"type": "named", "name": "--registry", "value": "https://npm.example"}],
                "packageArguments": [{"type": "positional", "value": "--stdio"}],
                "environmentVariables": [],
            }
        ],
    )
    del entry["_meta"]  # no registry metadata at all: treated as latest and active
    official.script(OFFICIAL_PATH, Reply(body={"servers": [entry]}))
    (server,) = (await make_client(glama, official).search(source="official")).items
    assert server.install_options[0].args == [
        "-y",
        "--registry",
        "https://npm.example",
        "@acme/alpha-mcp@1.1.0",
        "--stdio",
    ]


# --------------------------------------------------------------------------- both registries


async def test_all_sources_with_combined_cursor(glama, official_data, make_client):
    client = make_client(glama, official_data)
    first = await client.search(limit=3)
    assert first.errors == {}
    assert [s.source for s in first.items].count("glama") == 3
    assert set(first.next_cursors) == {"glama", "official"} and all(first.next_cursors.values())
    assert first.next_cursor is not None

    second = await client.search(limit=3, cursor=first.next_cursor)
    assert [s.title for s in second.items if s.source == "glama"] == ["Server 4", "Server 5"]
    assert second.next_cursors["glama"] is None and second.next_cursors["official"]

    third = await client.search(limit=3, cursor=second.next_cursor)
    assert set(third.next_cursors) == {"official"}, "an exhausted registry is not asked again"
    assert all(s.source == "official" for s in third.items)
    assert third.next_cursor is None
    assert len(glama.calls()) == 2 and len(official_data.calls()) == 3

    # A mapping works as a cursor too.
    again = await client.search(limit=3, cursor={"official": first.next_cursors["official"]})
    assert {s.source for s in again.items} == {"official"}


async def test_empty_results(glama, official_data, make_client):
    results = await make_client(glama, official_data).search("no such thing anywhere")
    assert results == SearchResults(
        items=[], next_cursors={"glama": None, "official": None}, errors={}, next_cursor=None
    )


async def test_bad_arguments(glama, official, make_client):
    client = make_client(glama, official)
    with pytest.raises(ValueError, match="unknown registry"):
        await client.search(source="npm")
    with pytest.raises(InvalidCursor):
        await client.search(cursor="garbage")
    with pytest.raises(InvalidCursor):
        await client.search(cursor="v1.!!!")
    with pytest.raises(InvalidCursor):
        await client.search(cursor={"elsewhere": "x"})
    assert glama.calls() == [] and official.calls() == []


async def test_limit_is_clamped(glama, official, make_client):
    client = make_client(glama, official)
    await client.search(source="glama", limit=1000)
    await client.search(source="glama", limit=0)
    assert [c.params["first"] for c in glama.calls()] == ["100", "1"]


def test_defaults():
    client = DiscoveryClient()
    assert client.clients["glama"].base_url == DEFAULT_GLAMA_URL == "https://glama.ai/api/mcp"
    assert client.clients["official"].base_url == DEFAULT_OFFICIAL_URL
    assert client.clients["glama"].timeout == 5.0 and client.cache_ttl == 60.0


# --------------------------------------------------------------------------- failures


async def test_retry_after_429(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(429, {"error": "slow down"}, headers={"Retry-After": "0"}))
    results = await make_client(glama, official).search(source="glama")
    assert results.errors == {} and len(results.items) == 5
    assert len(glama.calls()) == 2


async def test_retry_after_is_honoured(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(429, {}, headers={"Retry-After": "1"}))
    started = time.monotonic()
    results = await make_client(glama, official).search(source="glama")
    assert results.errors == {} and 0.9 <= time.monotonic() - started < 3


async def test_long_retry_after_is_not_waited_for(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(429, {}, headers={"Retry-After": "120"}))
    started = time.monotonic()
    results = await make_client(glama, official).search(source="glama")
    assert results.errors == {"glama": "Glama registry is rate limiting requests (HTTP 429)"}
    assert len(glama.calls()) == 1 and time.monotonic() - started < 5  # far below the 120 s asked for


async def test_500_then_success(glama, official, make_client):
    official.script(OFFICIAL_PATH, Reply(503, "busy"))
    results = await make_client(glama, official).search(source="official")
    assert results.errors == {} and len(official.calls()) == 2


async def test_500_twice_is_reported(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(500, "oops"), Reply(500, "oops"))
    results = await make_client(glama, official).search("server")
    assert results.errors == {"glama": "Glama registry returned HTTP 500"}
    assert results.next_cursors["glama"] is None
    assert len(glama.calls()) == 2
    assert "official" not in results.errors


async def test_client_error_is_not_retried(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(401, {"error": "invalid API key"}))
    results = await make_client(glama, official).search(source="glama")
    assert results.errors == {"glama": "Glama registry rejected the request: HTTP 401 (invalid API key)"}
    assert len(glama.calls()) == 1


async def test_hanging_registry_times_out(glama, official_data, make_client):
    glama.script(GLAMA_PATH, Reply(hang=True), Reply(hang=True))
    started = time.monotonic()
    results = await make_client(glama, official_data, timeout=0.5).search()
    elapsed = time.monotonic() - started
    assert results.errors == {"glama": "Glama registry unreachable: timed out after 0.5 s"}
    assert 0.9 <= elapsed < 4, elapsed
    assert len(glama.calls()) == 2
    assert {s.source for s in results.items} == {"official"}


async def test_hang_then_success(glama, official, make_client):
    official.script(OFFICIAL_PATH, Reply(hang=True))
    official.routes[OFFICIAL_PATH] = official_route(OFFICIAL_ENTRIES)
    results = await make_client(glama, official, timeout=0.5).search(source="official")
    assert results.errors == {} and len(results.items) == len(ACTIVE_LATEST)


async def test_malformed_json(glama, official_data, make_client):
    glama.script(GLAMA_PATH, Reply(200, '{"servers": [ oops'))
    results = await make_client(glama, official_data).search()
    assert results.errors == {"glama": "Glama registry returned malformed JSON"}
    assert len(glama.calls()) == 1, "a 200 with bad JSON is not retried"
    assert {s.name for s in results.items} == set(ACTIVE_LATEST)


@pytest.mark.parametrize(
    "body",
    [[], {"servers": {"a": 1}}, {"data": []}, "null", 42],
    ids=["list", "servers-object", "no-servers", "null", "number"],
)
async def test_wrong_shape(body, glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(200, body if not isinstance(body, int) else str(body)))
    official.script(OFFICIAL_PATH, Reply(200, body if not isinstance(body, int) else str(body)))
    results = await make_client(glama, official).search()
    assert results.errors == {
        "glama": "Glama registry returned an unexpected response (no 'servers' list)",
        "official": "Official MCP Registry returned an unexpected response (no 'servers' list)",
    }
    assert results.items == [] and results.next_cursor is None


async def test_one_registry_down_other_answers(glama, official_data, unused_url, make_client):
    results = await make_client(unused_url, official_data).search()
    assert set(results.errors) == {"glama"}
    assert results.errors["glama"].startswith("Glama registry unreachable: could not connect")
    assert {s.name for s in results.items} == set(ACTIVE_LATEST)

    results = await make_client(glama, unused_url).search()
    assert set(results.errors) == {"official"}
    assert results.errors["official"].startswith("Official MCP Registry unreachable")
    assert len(results.items) == 5


async def test_both_registries_down(unused_url, make_client):
    results = await make_client(unused_url, unused_url).search("x")
    assert set(results.errors) == {"glama", "official"} and results.items == []


async def test_unexpected_error_is_reported_not_raised(glama, official_data, make_client, monkeypatch):
    client = make_client(glama, official_data)

    async def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(client.clients["glama"], "search", broken)
    results = await client.search()
    assert results.errors == {"glama": "Glama registry search failed: KeyError: 'surprise'"}
    assert len(results.items) == len(ACTIVE_LATEST)


# --------------------------------------------------------------------------- cache


async def test_identical_search_is_served_from_cache(glama, official_data, make_client):
    client = make_client(glama, official_data)
    first = await client.search("server", limit=10)
    second = await client.search("server", limit=10)
    assert first == second
    assert len(glama.calls()) == 1 and len(official_data.calls()) == 1
    await client.search("server", limit=11)
    await client.search("other", limit=10)
    await client.search("server", source="glama", limit=10)  # same key for Glama: cached
    assert len(glama.calls()) == 3 and len(official_data.calls()) == 3


async def test_cache_expires(glama, official, make_client):
    client = make_client(glama, official, cache_ttl=0.2)
    await client.search(source="glama")
    await asyncio.sleep(0.3)
    await client.search(source="glama")
    assert len(glama.calls()) == 2


async def test_cache_keeps_the_most_recently_used_pages(glama, official, make_client):
    client = make_client(glama, official, cache_size=2)
    for query in ("server 1", "server 2", "server 1", "server 3", "server 1", "server 2"):
        await client.search(query, source="glama")
    # "server 2" was the least recently used when "server 3" came, so it was asked for again.
    assert [c.params["query"] for c in glama.calls()] == ["server 1", "server 2", "server 3", "server 2"]


async def test_failures_are_not_cached(glama, official, make_client):
    glama.script(GLAMA_PATH, Reply(500), Reply(500))
    client = make_client(glama, official)
    assert "glama" in (await client.search(source="glama")).errors
    assert (await client.search(source="glama")).errors == {}
    assert len(glama.calls()) == 3


async def test_cache_can_be_disabled(glama, official, make_client):
    client = make_client(glama, official, cache_ttl=0)
    await client.search(source="glama")
    await client.search(source="glama")
    assert len(glama.calls()) == 2


# --------------------------------------------------------------------------- single-registry clients


async def test_registry_clients_can_be_used_alone(glama, official_data):
    async with DiscoveryClient() as unused:
        assert unused.clients  # closing an unused client is fine
    glama_client = GlamaClient(glama.url, timeout=0.5)
    official_client = OfficialRegistryClient(official_data.url, timeout=0.5)
    try:
        page = await glama_client.search("server 1", limit=5)
        assert [s.title for s in page.items] == ["Server 1"] and page.next_cursor is None
        page = await official_client.search(limit=2)
        assert [s.name for s in page.items] == ["com.example/alpha"] and page.next_cursor
    finally:
        await glama_client.aclose()
        await official_client.aclose()

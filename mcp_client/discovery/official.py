"""The official MCP Registry: ``GET {base}/v0.1/servers?search=&limit=&cursor=``.

Entries carry packages (npm, PyPI, OCI, ...) and remote endpoints; from these come the install
options. Only the latest version of each server is kept, and only servers whose status is
``active``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from .fetch import RegistryHTTP
from .models import (
    Hosting,
    InstallOption,
    OfficialEntry,
    OfficialInput,
    OfficialPackage,
    OfficialPage,
    OfficialRemote,
    RegistryServer,
    Source,
    SourcePage,
    empty_schema,
)

DEFAULT_OFFICIAL_URL = "https://registry.modelcontextprotocol.io"

PLACEHOLDER_NAME = re.compile(r"[^A-Za-z0-9_]+")
REMOTE_TRANSPORTS: dict[str, Literal["http", "sse"]] = {
    "streamable-http": "http",
    "streamable_http": "http",
    "http": "http",
    "sse": "sse",
}
JSON_TYPES = {"number": "number", "boolean": "boolean", "string": "string", "filepath": "string"}


class OfficialRegistryClient(RegistryHTTP):
    source: Source = "official"
    label = "Official MCP Registry"

    def __init__(self, base_url: str = DEFAULT_OFFICIAL_URL, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)

    async def search(self, query: str = "", limit: int = 20, cursor: str | None = None) -> SourcePage:
        params: dict[str, Any] = {"limit": limit, "version": "latest"}
        if query:
            params["search"] = query
        if cursor:
            params["cursor"] = cursor
        page = await self.get_page("/v0.1/servers", params, OfficialPage)
        items: list[RegistryServer] = []
        seen: set[str] = set()
        for entry in page.servers:
            server = registry_server(entry)
            if server is not None and server.name not in seen:
                seen.add(server.name)
                items.append(server)
        return SourcePage(items=items, next_cursor=page.metadata.next_cursor if page.metadata else None)


def registry_server(entry: OfficialEntry | None) -> RegistryServer | None:
    """The entry as a :class:`RegistryServer`; None unless it is the latest version of an active server."""
    if entry is None:
        return None
    server, meta = entry.server, entry.official_meta
    if meta.is_latest is False:
        return None
    if (meta.status or server.status or "active") != "active" or not server.name:
        return None
    options = [option for option in map(package_option, server.packages or []) if option is not None]
    remotes = [option for option in map(remote_option, server.remotes or []) if option is not None]
    options += remotes
    has_packages = bool(server.packages)  # even ones no runner here can start
    hosting: Hosting | None = (
        "hybrid" if has_packages and remotes else "remote" if remotes else "local" if has_packages else None
    )
    return RegistryServer(
        source="official",
        source_ref=server.name,
        name=server.name,
        title=server.title,
        description=server.description,
        version=server.version,
        repository_url=server.repository.url if server.repository else None,
        website_url=server.website_url,
        settings_schema=merge_schemas([o.settings_schema for o in options]),
        install_options=options,
        hosting=hosting,
    )


def package_option(pkg: OfficialPackage | None) -> InstallOption | None:
    """How to run a package: npx, uvx or docker, over stdio. None for what no runner here starts."""
    if pkg is None or not pkg.identifier:
        return None
    if (pkg.transport.type if pkg.transport else None) not in (None, "stdio"):
        return None  # a package serving HTTP must be started by hand; not offered here
    registry_type, identifier, version = (pkg.registry_type or "").lower(), pkg.identifier, pkg.version
    env_inputs = named(pkg.environment_variables)
    env = [e.name for e in env_inputs if e.name]
    variables: dict[str, dict[str, Any]] = {}
    runtime_args = render_arguments(pkg.runtime_arguments, variables)
    package_args = render_arguments(pkg.package_arguments, variables)
    pinned = version and version != "latest"
    if registry_type == "npm":
        spec = f"{identifier}@{version}" if pinned else identifier
        pre = runtime_args or ["-y"]
        if "-y" not in pre and "--yes" not in pre:
            pre = ["-y", *pre]
        command, args, label = "npx", [*pre, spec, *package_args], f"npm: {spec}"
    elif registry_type == "pypi":
        spec = f"{identifier}=={version}" if pinned else identifier
        command, args, label = "uvx", [*runtime_args, spec, *package_args], f"pypi: {spec}"
    elif registry_type == "oci":
        last = identifier.rsplit("/", 1)[-1]
        image = f"{identifier}:{version}" if pinned and ":" not in last and "@" not in last else identifier
        env_flags = [flag for name in env for flag in ("-e", name)]
        command = "docker"
        args = ["run", "-i", "--rm", *runtime_args, *env_flags, image, *package_args]
        label = f"oci: {image}"
    else:
        return None  # nuget, mcpb, cargo, ...: no runner we can launch reliably
    return InstallOption(
        transport="stdio",
        label=label,
        command=command,
        args=args,
        env=env,
        variables=variables,
        settings_schema=schema_from_inputs(env_inputs),
        registry_type=registry_type,
    )


def remote_option(remote: OfficialRemote | None) -> InstallOption | None:
    """A remote endpoint (streamable HTTP or SSE); None for other transports or without a URL."""
    transport = REMOTE_TRANSPORTS.get(remote.type or "") if remote else None
    if remote is None or transport is None or not remote.url:
        return None
    header_inputs = named(remote.headers)
    variables = {name: input_spec(spec) for name, spec in (remote.variables or {}).items() if spec is not None}
    return InstallOption(
        transport=transport,
        label=f"remote ({'streamable HTTP' if transport == 'http' else 'SSE'}): {remote.url}",
        url=remote.url,
        headers=[h.name for h in header_inputs if h.name],
        variables=variables,
        settings_schema=schema_from_inputs(header_inputs),
    )


def named(inputs: Iterable[OfficialInput | None] | None) -> list[OfficialInput]:
    """The inputs that have a name (environment variables and headers without one are unusable)."""
    return [item for item in inputs or [] if item is not None and item.name]


def render_arguments(raw: Iterable[OfficialInput | None] | None, variables: dict[str, dict[str, Any]]) -> list[str]:
    """Turn registry arguments into argv. A required argument with no value becomes a ``{placeholder}``."""
    out: list[str] = []
    for arg in raw or []:
        if arg is None:
            continue
        is_named = arg.type == "named"
        flag = arg.name
        if is_named and not flag:
            continue
        value = arg.value if arg.value is not None else arg.default
        if value is None:
            if not arg.is_required:
                continue  # optional and no value: leave it out
            base = arg.value_hint or (flag or "value").lstrip("-")
            placeholder = PLACEHOLDER_NAME.sub("_", base).strip("_") or "value"
            variables[placeholder] = input_spec(arg)
            value = "{" + placeholder + "}"
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out.extend([flag, str(value)] if is_named and flag else [str(value)])
    return out


def input_spec(item: OfficialInput) -> dict[str, Any]:
    """What a ``{placeholder}`` needs from the user, in the registry's words."""
    spec: dict[str, Any] = {"isRequired": item.is_required}
    for key, value in (
        ("description", item.description),
        ("default", item.default),
        ("choices", item.choices),
        ("format", item.format),
        ("isSecret", item.is_secret),
    ):
        if value is not None:
            spec[key] = value
    return spec


def schema_from_inputs(inputs: Iterable[OfficialInput]) -> dict[str, Any]:
    """A JSON Schema object of named inputs; secrets are marked ``"writeOnly": true``."""
    schema = empty_schema()
    for item in inputs:
        assert item.name is not None
        prop: dict[str, Any] = {"type": JSON_TYPES.get(item.format or "string", "string")}
        if item.description:
            prop["description"] = item.description
        default = item.default if item.default is not None else item.value
        if default is not None:
            prop["default"] = default
        if item.choices:
            prop["enum"] = item.choices
        if item.is_secret:
            prop["writeOnly"] = True
        schema["properties"][item.name] = prop
        if item.is_required:
            schema["required"].append(item.name)
    return schema


def merge_schemas(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Every setting any option knows about; ``required`` is that of the first (default) option."""
    merged = empty_schema()
    for schema in schemas:
        for name, prop in schema.get("properties", {}).items():
            merged["properties"].setdefault(name, prop)
    if schemas:
        merged["required"] = list(schemas[0].get("required", []))
    return merged

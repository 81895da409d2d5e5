"""Search public MCP server registries and normalise what they return.

Two registries are supported:

* **Glama** (``GET {base}/v1/servers?query=&first=&after=``). Entries carry tools, a license
  and a JSON Schema for environment variables, but no install command.
* **The official MCP Registry** (``GET {base}/v0.1/servers?search=&limit=&cursor=``). Entries
  carry packages (npm, PyPI, OCI, ...) and remote endpoints. From these we derive install options.
  Only the latest version of each server is kept, and only servers whose status is ``active``.

:class:`DiscoveryClient` searches one registry or both and returns :class:`SearchResults`: the
items, a next cursor for each registry, and an error message for each registry that failed. One
registry failing (unreachable, timed out, HTTP error, malformed JSON, unexpected shape) never
hides the other's results, and no such failure is raised from :meth:`DiscoveryClient.search`.
Bad arguments (an unknown source, an unreadable cursor) raise :class:`ValueError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, computed_field

__all__ = [
    "DEFAULT_GLAMA_URL",
    "DEFAULT_OFFICIAL_URL",
    "DiscoveryClient",
    "GlamaClient",
    "InstallOption",
    "InvalidCursor",
    "OfficialRegistryClient",
    "RegistryError",
    "RegistryServer",
    "SearchResults",
    "SourcePage",
    "ToolInfo",
]

log = logging.getLogger(__name__)

DEFAULT_GLAMA_URL = "https://glama.ai/api/mcp"
DEFAULT_OFFICIAL_URL = "https://registry.modelcontextprotocol.io"
DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_TTL = 60.0
MAX_LIMIT = 100
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "kanban-orchestrator (MCP discovery)"

Source = Literal["glama", "official"]
SOURCES: tuple[Source, ...] = ("glama", "official")
LABELS: dict[str, str] = {"glama": "Glama registry", "official": "Official MCP Registry"}
OFFICIAL_META = "io.modelcontextprotocol.registry/official"
_CURSOR_PREFIX = "v1."
_PLACEHOLDER_NAME = re.compile(r"[^A-Za-z0-9_]+")


# --------------------------------------------------------------------------- result model


class ToolInfo(BaseModel):
    name: str
    description: str | None = None


class InstallOption(BaseModel):
    """One way to run a server, close to the Claude Agent SDK's ``mcp_servers`` entry.

    ``args`` and ``url`` may hold ``{name}`` placeholders described in ``variables`` (for a
    required argument with no value, or a remote URL template). ``env`` and ``headers`` name the
    environment variables and HTTP headers the user supplies. ``settings_schema`` describes them
    as a JSON Schema object; secrets are marked ``"writeOnly": true``.
    """

    transport: Literal["stdio", "http", "sse"]
    label: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    url: str | None = None
    headers: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    variables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    settings_schema: dict[str, Any] = Field(default_factory=lambda: _empty_schema())
    registry_type: str | None = None  # npm | pypi | oci for packages, None for remotes

    def mcp_config(self, values: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Build the SDK config dict, filling env vars, headers and placeholders from ``values``.

        Defaults from the schema are used for missing values. A required value still missing
        raises ``ValueError`` naming it.
        """
        values = dict(values or {})
        props = self.settings_schema.get("properties", {})
        required = set(self.settings_schema.get("required", []))

        def pick(name: str, spec: Mapping[str, Any], is_required: bool) -> str | None:
            if name in values:
                return str(values[name])
            if spec.get("default") is not None:
                return str(spec["default"])
            if is_required:
                missing.append(name)
            return None

        missing: list[str] = []
        # A placeholder left in argv or the URL would break the server, so every variable is needed.
        filled = {name: pick(name, spec, True) for name, spec in self.variables.items()}

        def render(text: str) -> str:
            for name, value in filled.items():
                if value is not None:
                    text = text.replace("{" + name + "}", value)
            return text

        def collect(names: Iterable[str]) -> dict[str, str]:
            out: dict[str, str] = {}
            for name in names:
                value = pick(name, props.get(name, {}), name in required)
                if value is not None:
                    out[name] = value
            return out

        env, headers = collect(self.env), collect(self.headers)
        if missing:
            raise ValueError(f"missing required settings: {', '.join(sorted(set(missing)))}")
        if self.transport == "stdio":
            config: dict[str, Any] = {"type": "stdio", "command": self.command, "args": [render(a) for a in self.args]}
            if env:
                config["env"] = env
            return config
        config = {"type": self.transport, "url": render(self.url or "")}
        if headers:
            config["headers"] = headers
        return config


class RegistryServer(BaseModel):
    """A server found in a registry, the same shape whichever registry it came from."""

    source: Source
    source_ref: str  # Glama: "namespace/slug" (or id); official: the server name
    name: str
    title: str | None = None
    description: str | None = None
    version: str | None = None
    repository_url: str | None = None
    website_url: str | None = None
    license: str | None = None
    tools: list[ToolInfo] | None = None  # None when the registry does not say
    settings_schema: dict[str, Any] = Field(default_factory=lambda: _empty_schema())
    install_options: list[InstallOption] = Field(default_factory=list)
    hosting: Literal["local", "remote", "hybrid"] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_ref}"


class SearchResults(BaseModel):
    items: list[RegistryServer] = Field(default_factory=list)
    next_cursors: dict[str, str | None] = Field(default_factory=dict)  # per registry searched
    errors: dict[str, str] = Field(default_factory=dict)  # per registry that failed
    next_cursor: str | None = None  # pass back as `cursor` to get the next page of this search


class SourcePage(BaseModel):
    items: list[RegistryServer]
    next_cursor: str | None = None


class RegistryError(Exception):
    """A registry could not be searched. The message is meant for the user."""


class InvalidCursor(ValueError):
    pass


# --------------------------------------------------------------------------- HTTP


class _RegistryHTTP:
    """GET JSON with a timeout per attempt and one retry on connection errors, timeouts, 5xx and 429."""

    source: Source

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after_max: float = 2.0,
        retry_backoff: float = 0.25,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry_after_max = retry_after_max
        self.retry_backoff = retry_backoff
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        self._http = http
        self._owns_http = http is None

    @property
    def label(self) -> str:
        return LABELS[self.source]

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        url = self.base_url + path
        for attempt in (1, 2):
            last = attempt == 2
            try:
                async with asyncio.timeout(self.timeout):
                    status, headers, body = await self._fetch(url, params)
            except (TimeoutError, httpx.TimeoutException):
                if not last:
                    await asyncio.sleep(self.retry_backoff)
                    continue
                raise RegistryError(f"{self.label} unreachable: timed out after {self.timeout:g} s") from None
            except httpx.TransportError as exc:
                if not last:
                    await asyncio.sleep(self.retry_backoff)
                    continue
                raise RegistryError(f"{self.label} unreachable: {_describe_transport_error(exc)}") from None
            if status == 429 or status >= 500:
                delay = self._retry_delay(headers)
                if not last and delay is not None:
                    await asyncio.sleep(delay)
                    continue
                what = "is rate limiting requests (HTTP 429)" if status == 429 else f"returned HTTP {status}"
                raise RegistryError(f"{self.label} {what}")
            if status >= 400:
                raise RegistryError(f"{self.label} rejected the request: HTTP {status}{_error_detail(body)}")
            try:
                return json.loads(body)
            except ValueError:
                raise RegistryError(f"{self.label} returned malformed JSON") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, url: str, params: Mapping[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        async with self._client().stream("GET", url, params=params, headers=self._headers) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise RegistryError(f"{self.label} sent a response larger than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            return resp.status_code, resp.headers, b"".join(chunks)

    def _retry_delay(self, headers: httpx.Headers) -> float | None:
        """Seconds to wait before the retry, or None when Retry-After asks for longer than we wait."""
        raw = headers.get("retry-after")
        if raw is None:
            return self.retry_backoff
        try:
            delay = float(raw)
        except ValueError:
            try:
                delay = parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError):
                return self.retry_backoff
        delay = max(0.0, delay)
        return delay if delay <= self.retry_after_max else None


def _describe_transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({exc or 'connection failed'})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _error_detail(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace").strip()
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            text = str(data.get("detail") or data.get("error") or data.get("message") or text)
    except ValueError:
        pass
    text = " ".join(text.split())[:200]
    return f" ({text})" if text else ""


# --------------------------------------------------------------------------- Glama


class GlamaClient(_RegistryHTTP):
    source: Source = "glama"

    def __init__(self, base_url: str = DEFAULT_GLAMA_URL, *, api_key: str | None = None, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(base_url, headers=headers, **kwargs)

    async def search(self, query: str = "", limit: int = 20, cursor: str | None = None) -> SourcePage:
        params: dict[str, Any] = {"first": limit}
        if query:
            params["query"] = query
        if cursor:
            params["after"] = cursor
        data = await self.get_json("/v1/servers", params)
        if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
            raise RegistryError(f"{self.label} returned an unexpected response (no 'servers' list)")
        page_info = data.get("pageInfo")
        page_info = page_info if isinstance(page_info, dict) else {}
        next_cursor = page_info.get("endCursor") if page_info.get("hasNextPage") else None
        items = [s for s in (_glama_server(raw) for raw in data["servers"]) if s is not None]
        return SourcePage(items=items, next_cursor=next_cursor if isinstance(next_cursor, str) and next_cursor else None)


_GLAMA_HOSTING = {"hosting:local-only": "local", "hosting:remote-capable": "remote", "hosting:hybrid": "hybrid"}


def _glama_server(raw: Any) -> RegistryServer | None:
    if not isinstance(raw, dict):
        return None
    server_id, display = _str(raw.get("id")), _str(raw.get("name"))
    namespace, slug = _str(raw.get("namespace")), _str(raw.get("slug"))
    ref = f"{namespace}/{slug}" if namespace and slug else server_id
    if not ref or not (display or server_id):
        log.debug("skipping a Glama entry without id or name: %r", raw)
        return None
    attributes = raw.get("attributes") if isinstance(raw.get("attributes"), list) else []
    hosting = next((_GLAMA_HOSTING[a] for a in attributes if a in _GLAMA_HOSTING), None)
    license_info = raw.get("spdxLicense")
    tools = raw.get("tools")
    return RegistryServer(
        source="glama",
        source_ref=ref,
        name=ref,
        title=display,
        description=_str(raw.get("description")),
        repository_url=_str(_get(raw, "repository", "url")),
        website_url=_str(raw.get("url")),
        license=_str(license_info.get("name")) if isinstance(license_info, dict) else None,
        tools=_tools(tools) if isinstance(tools, list) else None,
        settings_schema=_object_schema(raw.get("environmentVariablesJsonSchema")),
        hosting=hosting,  # type: ignore[arg-type]
    )


def _tools(raw: list[Any]) -> list[ToolInfo]:
    return [
        ToolInfo(name=t["name"], description=_str(t.get("description")))
        for t in raw
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]


def _object_schema(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("properties", {}), dict):
        return _empty_schema()
    schema = dict(raw)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    if not isinstance(schema.get("required", []), list):
        schema["required"] = []
    return schema


# --------------------------------------------------------------------------- official registry


class OfficialRegistryClient(_RegistryHTTP):
    source: Source = "official"

    def __init__(self, base_url: str = DEFAULT_OFFICIAL_URL, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)

    async def search(self, query: str = "", limit: int = 20, cursor: str | None = None) -> SourcePage:
        params: dict[str, Any] = {"limit": limit, "version": "latest"}
        if query:
            params["search"] = query
        if cursor:
            params["cursor"] = cursor
        data = await self.get_json("/v0.1/servers", params)
        if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
            raise RegistryError(f"{self.label} returned an unexpected response (no 'servers' list)")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        next_cursor = metadata.get("nextCursor") or metadata.get("next_cursor")
        items: list[RegistryServer] = []
        seen: set[str] = set()
        for entry in data["servers"]:
            server = _official_server(entry)
            if server is not None and server.name not in seen:
                seen.add(server.name)
                items.append(server)
        return SourcePage(items=items, next_cursor=next_cursor if isinstance(next_cursor, str) and next_cursor else None)


def _official_server(entry: Any) -> RegistryServer | None:
    if not isinstance(entry, dict):
        return None
    # Current shape: {"server": {...}, "_meta": {...}}; older responses put the server at the top.
    server = entry.get("server") if isinstance(entry.get("server"), dict) else entry
    meta = _get(entry, "_meta", OFFICIAL_META) or _get(server, "_meta", OFFICIAL_META) or {}
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("isLatest") is False or meta.get("is_latest") is False:
        return None
    status = meta.get("status") or server.get("status") or "active"
    if status != "active":
        return None
    name = _str(server.get("name"))
    if not name:
        return None
    options: list[InstallOption] = []
    for package in server.get("packages") or []:
        option = _package_option(package)
        if option is not None:
            options.append(option)
    has_packages = bool(server.get("packages"))
    has_remotes = False
    for remote in server.get("remotes") or []:
        option = _remote_option(remote)
        if option is not None:
            has_remotes = True
            options.append(option)
    hosting = "hybrid" if has_packages and has_remotes else "remote" if has_remotes else "local" if has_packages else None
    return RegistryServer(
        source="official",
        source_ref=name,
        name=name,
        title=_str(server.get("title")),
        description=_str(server.get("description")),
        version=_str(server.get("version")),
        repository_url=_str(_get(server, "repository", "url")),
        website_url=_str(server.get("websiteUrl")),
        settings_schema=_merge_schemas([o.settings_schema for o in options]),
        install_options=options,
        hosting=hosting,  # type: ignore[arg-type]
    )


def _package_option(pkg: Any) -> InstallOption | None:
    if not isinstance(pkg, dict):
        return None
    registry_type = (_str(pkg.get("registryType")) or _str(pkg.get("registry_type")) or "").lower()
    identifier = _str(pkg.get("identifier")) or _str(pkg.get("name"))
    version = _str(pkg.get("version"))
    transport = _get(pkg, "transport", "type") or "stdio"
    if not identifier or transport != "stdio":
        return None  # a package serving HTTP must be started by hand; not offered here
    env_inputs = [e for e in pkg.get("environmentVariables") or [] if isinstance(e, dict) and _str(e.get("name"))]
    env = [e["name"] for e in env_inputs]
    variables: dict[str, dict[str, Any]] = {}
    runtime_args = _render_arguments(pkg.get("runtimeArguments"), variables)
    package_args = _render_arguments(pkg.get("packageArguments"), variables)
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
        settings_schema=_schema_from_inputs(env_inputs),
        registry_type=registry_type,
    )


def _remote_option(remote: Any) -> InstallOption | None:
    if not isinstance(remote, dict):
        return None
    kind = _str(remote.get("type")) or _str(remote.get("transport_type")) or ""
    transport = {"streamable-http": "http", "streamable_http": "http", "http": "http", "sse": "sse"}.get(kind)
    url = _str(remote.get("url"))
    if transport is None or not url:
        return None
    header_inputs = [h for h in remote.get("headers") or [] if isinstance(h, dict) and _str(h.get("name"))]
    variables = {
        name: _input_spec(spec)
        for name, spec in (remote.get("variables") or {}).items()
        if isinstance(name, str) and isinstance(spec, dict)
    }
    return InstallOption(
        transport=transport,  # type: ignore[arg-type]
        label=f"remote ({'streamable HTTP' if transport == 'http' else 'SSE'}): {url}",
        url=url,
        headers=[h["name"] for h in header_inputs],
        variables=variables,
        settings_schema=_schema_from_inputs(header_inputs),
    )


def _render_arguments(raw: Any, variables: dict[str, dict[str, Any]]) -> list[str]:
    """Turn registry arguments into argv. A required argument with no value becomes a ``{placeholder}``."""
    out: list[str] = []
    for arg in raw if isinstance(raw, list) else []:
        if not isinstance(arg, dict):
            continue
        named = arg.get("type") == "named"
        flag = _str(arg.get("name"))
        if named and not flag:
            continue
        value = arg.get("value")
        if value is None:
            value = arg.get("default")
        if value is None:
            if not arg.get("isRequired"):
                continue  # optional and no value: leave it out
            base = _str(arg.get("valueHint")) or (flag or "value").lstrip("-")
            placeholder = _PLACEHOLDER_NAME.sub("_", base).strip("_") or "value"
            variables[placeholder] = _input_spec(arg)
            value = "{" + placeholder + "}"
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out.extend([flag, str(value)] if named and flag else [str(value)])
    return out


def _input_spec(raw: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"isRequired": bool(raw.get("isRequired", False))}
    for key in ("description", "default", "choices", "format", "isSecret"):
        if raw.get(key) is not None:
            spec[key] = raw[key]
    return spec


_JSON_TYPES = {"number": "number", "boolean": "boolean", "string": "string", "filepath": "string"}


def _schema_from_inputs(inputs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    schema = _empty_schema()
    for item in inputs:
        name = item["name"]
        prop: dict[str, Any] = {"type": _JSON_TYPES.get(str(item.get("format") or "string"), "string")}
        if item.get("description"):
            prop["description"] = item["description"]
        default = item.get("default", item.get("value"))
        if default is not None:
            prop["default"] = default
        if isinstance(item.get("choices"), list) and item["choices"]:
            prop["enum"] = item["choices"]
        if item.get("isSecret"):
            prop["writeOnly"] = True
        schema["properties"][name] = prop
        if item.get("isRequired"):
            schema["required"].append(name)
    return schema


def _merge_schemas(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Every setting any option knows about; ``required`` is that of the first (default) option."""
    merged = _empty_schema()
    for schema in schemas:
        for name, prop in schema.get("properties", {}).items():
            merged["properties"].setdefault(name, prop)
    if schemas:
        merged["required"] = list(schemas[0].get("required", []))
    return merged


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# --------------------------------------------------------------------------- both registries


class DiscoveryClient:
    """Search Glama, the official MCP Registry, or both, with a short in-memory cache.

    Use it as ``async with DiscoveryClient(...) as client`` or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        *,
        glama_url: str = DEFAULT_GLAMA_URL,
        official_url: str = DEFAULT_OFFICIAL_URL,
        glama_api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = 256,
        retry_after_max: float = 2.0,
        retry_backoff: float = 0.25,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        common = {"timeout": timeout, "http": http, "retry_after_max": retry_after_max, "retry_backoff": retry_backoff}
        self.clients: dict[str, GlamaClient | OfficialRegistryClient] = {
            "glama": GlamaClient(glama_url, api_key=glama_api_key, **common),
            "official": OfficialRegistryClient(official_url, **common),
        }
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, int, str | None], tuple[float, SourcePage]] = OrderedDict()

    async def __aenter__(self) -> DiscoveryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    def clear_cache(self) -> None:
        self._cache.clear()

    async def search(
        self,
        query: str = "",
        source: str = "all",
        limit: int = 20,
        cursor: str | Mapping[str, str] | None = None,
    ) -> SearchResults:
        """Search ``source`` ("all", "glama" or "official"); ``limit`` applies to each registry.

        ``cursor`` is the ``next_cursor`` of a previous result for the same query and source
        (or, for "all", a mapping of registry to cursor). With a cursor, "all" asks only the
        registries that still had more pages.
        """
        if source not in ("all", *SOURCES):
            raise ValueError(f"unknown registry source {source!r}; use 'all', 'glama' or 'official'")
        limit = max(1, min(int(limit), MAX_LIMIT))
        query = (query or "").strip()
        plan = self._plan(source, cursor)
        outcomes = await asyncio.gather(*(self._search_one(s, query, limit, c) for s, c in plan.items()))
        results = SearchResults()
        for name, (page, error) in zip(plan, outcomes, strict=True):
            if error is not None:
                results.errors[name] = error
                results.next_cursors[name] = None
            else:
                assert page is not None
                results.items.extend(page.items)
                results.next_cursors[name] = page.next_cursor
        if source == "all":
            more = {name: c for name, c in results.next_cursors.items() if c}
            results.next_cursor = _encode_cursor(more) if more else None
        else:
            results.next_cursor = results.next_cursors.get(source)
        return results

    def _plan(self, source: str, cursor: str | Mapping[str, str] | None) -> dict[str, str | None]:
        if source != "all":
            if cursor is not None and not isinstance(cursor, str):
                raise InvalidCursor("cursor for a single registry must be a string")
            return {source: cursor or None}
        if cursor is None or cursor == "":
            return dict.fromkeys(SOURCES)
        cursors = _decode_cursor(cursor) if isinstance(cursor, str) else dict(cursor)
        if not cursors or any(k not in SOURCES or not isinstance(v, str) for k, v in cursors.items()):
            raise InvalidCursor("cursor does not belong to an 'all' search")
        return {name: cursors[name] for name in SOURCES if name in cursors}

    async def _search_one(
        self, source: str, query: str, limit: int, cursor: str | None
    ) -> tuple[SourcePage | None, str | None]:
        key = (source, query, limit, cursor)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1], None
        try:
            page = await self.clients[source].search(query, limit, cursor)
        except RegistryError as exc:
            log.warning("MCP registry search failed: %s", exc)
            return None, str(exc)
        except Exception as exc:  # a bug or a shape we did not foresee: report it, keep the other registry
            log.exception("unexpected error searching the %s", LABELS[source])
            return None, f"{LABELS[source]} search failed: {type(exc).__name__}: {exc}"
        if self.cache_ttl > 0:
            self._cache[key] = (time.monotonic() + self.cache_ttl, page)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return page, None


def _encode_cursor(cursors: Mapping[str, str]) -> str:
    raw = json.dumps(dict(cursors), separators=(",", ":"), sort_keys=True).encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    if not cursor.startswith(_CURSOR_PREFIX):
        raise InvalidCursor("cursor does not belong to an 'all' search")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidCursor("cursor is not readable") from None
    if not isinstance(data, dict):
        raise InvalidCursor("cursor is not readable")
    return data

"""Plugins: MCP servers agents are given. Installed from a registry search or by hand.

Shared by the HTTP API, the app's start (built-in plugins) and the orchestrator
(`plugins_for_run`). Secret values are encrypted with a `SecretBox` before they are stored,
and only `plugins_for_run` and the connection test decrypt them; what this module returns
to the API (`PluginRead`) and records as board events never holds them.

Two operations wait on the outside world: installing from a registry (a registry lookup)
and testing a connection (starting a server, up to its timeout). They take the `Database`
and open their own short transactions around the wait, so no database lock is held while
waiting. Everything else takes a session and only flushes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client import probe
from mcp_client.discovery import DiscoveryClient, InstallOption, InvalidCursor, RegistryServer
from mcp_client.registry import FILESYSTEM, KANBAN, PluginConfig, RunTarget, plugin_server

from ..config import Settings
from ..db import Database
from ..errors import Conflict, InvalidInput, KanbanError, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..models import Plugin, PluginProject, PluginSource, Project
from ..models.base import utcnow
from .schemas import (
    PluginInstall,
    PluginProjectRead,
    PluginRead,
    PluginSearchItem,
    PluginSearchResults,
    PluginTestRead,
    PluginUpdate,
    SettingRead,
    ValueInput,
    ValueRead,
)
from .secrets import Redactor, SecretBox, SecretUnreadable

log = logging.getLogger(__name__)

# Names that make a value secret whatever the user says (and HTTP headers that carry credentials).
SECRET_NAME = re.compile(r"token|key|secret|password|^authorization$|^proxy-authorization$|^cookie$", re.IGNORECASE)
SEARCH_LIMIT = 20
LOOKUP_PAGES = 5
TARGETS = ("env", "header", "arg")


class RegistryUnavailable(KanbanError):
    """A registry needed for an install could not be read."""

    status_code = 502


# --------------------------------------------------------------------------- built-in plugins

BUILTINS: dict[str, dict[str, Any]] = {
    KANBAN: {
        "title": "Kanban board",
        "description": "The board's own tools (tasks, runs, results). Every agent run gets them; "
        "they need no approval.",
        "args": ["-m", "mcp_servers.kanban_server"],
    },
    FILESYSTEM: {
        "title": "Files of the task",
        "description": "Read, write, list and search files, confined to the run's git worktree. "
        "Enable it for a project to give it to that project's runs.",
        "args": ["-m", "mcp_servers.filesystem_server", "--root", "<worktree>"],
    },
}


async def register_builtins(session: AsyncSession) -> None:
    """Make sure the built-in plugins exist (idempotent; keeps the user's switches)."""
    for name, spec in BUILTINS.items():
        plugin = await session.scalar(select(Plugin).where(Plugin.name == name))
        fields = {
            "title": spec["title"],
            "description": spec["description"],
            "transport": "stdio",
            "command": "python",
            "args": spec["args"],
        }
        if plugin is None:
            plugin = Plugin(
                name=name, source=PluginSource.builtin.value, enabled=True, url=None, headers={}, env={},
                settings_schema=_empty_schema(), settings={}, **fields,
            )
            session.add(plugin)
            await session.flush()
            await _publish(session, BoardEventType.plugin_installed, plugin)
            continue
        if plugin.source != PluginSource.builtin.value:
            log.warning("a plugin named %r is not the built-in one; leaving it as it is", name)
            continue
        changed = {k: v for k, v in fields.items() if getattr(plugin, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(plugin, key, value)
            await session.flush()
            await _publish(session, BoardEventType.plugin_updated, plugin)


# --------------------------------------------------------------------------- reading


async def get(session: AsyncSession, plugin_id: int, *, for_update: bool = False) -> Plugin:
    return await get_or_404(session, Plugin, plugin_id, "Plugin", for_update=for_update)


async def list_all(session: AsyncSession) -> list[PluginRead]:
    plugins = (await session.scalars(select(Plugin).order_by(Plugin.source != "builtin", Plugin.name))).all()
    rows = (await session.scalars(select(PluginProject).order_by(PluginProject.project_id))).all()
    by_plugin: dict[int, list[PluginProject]] = {}
    for row in rows:
        by_plugin.setdefault(row.plugin_id, []).append(row)
    return [to_read(plugin, by_plugin.get(plugin.id, [])) for plugin in plugins]


async def read(session: AsyncSession, plugin_id: int) -> PluginRead:
    return await _read(session, await get(session, plugin_id))


async def _read(session: AsyncSession, plugin: Plugin) -> PluginRead:
    rows = (
        await session.scalars(
            select(PluginProject).where(PluginProject.plugin_id == plugin.id).order_by(PluginProject.project_id)
        )
    ).all()
    return to_read(plugin, rows)


def to_read(plugin: Plugin, projects: Iterable[PluginProject]) -> PluginRead:
    """The plugin as the API shows it: secret values are never included."""
    props = _properties(plugin.settings_schema)
    required = set(_required(plugin.settings_schema))
    settings = []
    for name in [*props, *(n for n in plugin.settings if n not in props)]:
        prop = props.get(name, {})
        stored = plugin.settings.get(name)
        secret = _is_stored_secret(stored) or _secret_by_default(name, prop)
        settings.append(
            SettingRead(
                name=name,
                set=stored is not None,
                secret=secret,
                value=None if secret or stored is None else str(stored),
                required=name in required,
                description=prop.get("description") if isinstance(prop.get("description"), str) else None,
                target=_target(plugin, prop),
            )
        )
    last_test = None
    if plugin.tested_at is not None:
        last_test = PluginTestRead(
            tested_at=plugin.tested_at, ok=bool(plugin.test_ok), tools=plugin.test_tools or [], error=plugin.test_error
        )
    return PluginRead(
        id=plugin.id,
        name=plugin.name,
        title=plugin.title,
        description=plugin.description,
        source=plugin.source,  # type: ignore[arg-type]
        source_ref=plugin.source_ref,
        transport=plugin.transport,  # type: ignore[arg-type]
        command=plugin.command,
        args=list(plugin.args or []),
        url=plugin.url,
        builtin=plugin.source == PluginSource.builtin.value,
        enabled=plugin.enabled,
        env=_value_reads(plugin.env),
        headers=_value_reads(plugin.headers),
        settings=settings,
        settings_schema=plugin.settings_schema,
        projects=[PluginProjectRead(project_id=row.project_id, enabled=row.enabled) for row in projects],
        last_test=last_test,
        installed_at=plugin.installed_at,
        updated_at=plugin.updated_at,
    )


def _value_reads(stored: Mapping[str, Any]) -> list[ValueRead]:
    return [
        ValueRead(name=name, set=True, secret=_is_stored_secret(value), value=None if _is_stored_secret(value) else str(value))
        for name, value in sorted(stored.items())
    ]


async def _publish(session: AsyncSession, type: BoardEventType, plugin: Plugin) -> None:
    payload = (await _read(session, plugin)).model_dump(mode="json")
    await event_log.record(session, type, None, payload)


# --------------------------------------------------------------------------- search


def discovery_for(settings: Settings) -> DiscoveryClient:
    key = settings.glama_api_key.get_secret_value() if settings.glama_api_key else None
    return DiscoveryClient(glama_url=settings.glama_url, official_url=settings.mcp_registry_url, glama_api_key=key)


async def search(
    session: AsyncSession, discovery: DiscoveryClient, query: str, source: str, cursor: str | None, limit: int = SEARCH_LIMIT
) -> PluginSearchResults:
    """Both registries (or one). A registry that fails is named in `errors`; the other's results stay."""
    try:
        results = await discovery.search(query, source=source, limit=limit, cursor=cursor or None)
    except InvalidCursor as exc:
        raise InvalidInput(f"cursor: {exc}; start the search again without it") from None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    installed: dict[tuple[str, str], list[str]] = {}
    refs = {(item.source, item.source_ref) for item in results.items}
    if refs:
        rows = await session.execute(
            select(Plugin.source, Plugin.source_ref, Plugin.name).where(Plugin.source_ref.in_(sorted({r for _, r in refs})))
        )
        for row_source, ref, name in rows.all():
            installed.setdefault((row_source, ref), []).append(name)
    items = [
        PluginSearchItem(**item.model_dump(exclude={"key"}), installed=installed.get((item.source, item.source_ref), []))
        for item in results.items
    ]
    return PluginSearchResults(items=items, next_cursor=results.next_cursor, errors=results.errors)


async def _lookup(discovery: DiscoveryClient, source: str, ref: str, query: str | None) -> RegistryServer:
    """The registry entry `ref`, found again through search (the registries' search is what we have)."""
    queries = [q for q in (query, ref, ref.rsplit("/", 1)[-1], ref.rsplit("/", 1)[-1].replace("-", " ")) if q]
    seen: set[str] = set()
    for text in queries:
        if text in seen:
            continue
        seen.add(text)
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            results = await discovery.search(text, source=source, limit=SEARCH_LIMIT, cursor=cursor)
            if source in results.errors:
                raise RegistryUnavailable(
                    f"Cannot install {ref!r}: {results.errors[source]}. Nothing was installed; try again later."
                )
            for item in results.items:
                if item.source_ref == ref:
                    return item
            cursor = results.next_cursor
            if not cursor:
                break
    raise InvalidInput(f"source_ref: {ref!r} was not found in the {source} registry (search for it again)")


# --------------------------------------------------------------------------- install


async def install(database: Database, discovery: DiscoveryClient, box: SecretBox, data: PluginInstall) -> PluginRead:
    """Look the entry up in its registry (if it comes from one), then create the plugin."""
    entry = None
    if data.source != "custom":
        assert data.source_ref is not None
        entry = await _lookup(discovery, data.source, data.source_ref, data.query)
    async with database.session(write=True) as session:
        plugin = await create(session, box, data, entry)
        return await _read(session, plugin)


async def create(session: AsyncSession, box: SecretBox, data: PluginInstall, entry: RegistryServer | None = None) -> Plugin:
    """Create a plugin from install data (and the registry entry it names, already looked up)."""
    schema = _empty_schema()
    transport, command, args, url = data.transport, data.command, data.args or [], data.url
    if data.source == "official":
        assert entry is not None
        if not entry.install_options:
            raise InvalidInput(
                f"{entry.name} lists no way to run it that the board can start (no npm, PyPI or OCI package "
                "and no remote endpoint); install it as a custom plugin with its command"
            )
        index = data.option or 0
        if index >= len(entry.install_options):
            raise InvalidInput(f"option: {entry.name} has {len(entry.install_options)} install option(s); use 0–{len(entry.install_options) - 1}")
        option = entry.install_options[index]
        transport, command, args, url = option.transport, option.command, list(option.args), option.url
        schema = _option_schema(option)
    elif data.source == "glama":
        assert entry is not None
        schema = _targeted(entry.settings_schema, "env" if transport == "stdio" else "header")

    title = data.title or (entry.title or entry.name if entry else None)
    name = data.name
    if name is None:
        base = _slug(title or "") or _slug((entry.name.rsplit("/", 1)[-1]) if entry else "") or _slug(_command_name(command))
        if not base:
            raise InvalidInput("name: give the plugin a name (lowercase letters, digits, - or _)")
        name = await _free_name(session, base)
    elif await session.scalar(select(Plugin.id).where(Plugin.name == name)) is not None:
        raise Conflict(f"A plugin named {name!r} is already installed; choose another name")

    plugin = Plugin(
        name=name,
        title=title or name,
        description=data.description if data.description is not None else ((entry.description or "") if entry else ""),
        source=data.source,
        source_ref=entry.source_ref if entry else None,
        transport=transport,
        command=command,
        args=list(args),
        url=url,
        settings_schema=schema,
        enabled=data.enabled,
    )
    plugin.env = _apply_values(box, {}, data.env or {}, lambda n: False, "env")
    plugin.headers = _apply_values(box, {}, data.headers or {}, lambda n: False, "headers")
    plugin.settings = _apply_settings(box, plugin, {}, data.settings or {})
    _check_required(plugin)
    session.add(plugin)
    await session.flush()
    await _publish(session, BoardEventType.plugin_installed, plugin)
    return plugin


def _option_schema(option: InstallOption) -> dict[str, Any]:
    """The install option's settings, each marked with where its value goes."""
    schema = _object_schema(option.settings_schema)
    props = schema["properties"]
    for name in option.env:
        props.setdefault(name, {"type": "string"})["x-target"] = "env"
    for name in option.headers:
        props.setdefault(name, {"type": "string"})["x-target"] = "header"
    required = list(schema["required"])
    for name, spec in option.variables.items():
        prop: dict[str, Any] = {"type": "string", "x-target": "arg"}
        if isinstance(spec.get("description"), str):
            prop["description"] = spec["description"]
        if spec.get("default") is not None:
            prop["default"] = spec["default"]
        if isinstance(spec.get("choices"), list) and spec["choices"]:
            prop["enum"] = spec["choices"]
        if spec.get("isSecret"):
            prop["writeOnly"] = True
        props[name] = prop
        required.append(name)  # a placeholder left in the command line would break the server
    schema["required"] = list(dict.fromkeys(required))
    return schema


def _targeted(raw: Mapping[str, Any], target: str) -> dict[str, Any]:
    schema = _object_schema(raw)
    for prop in schema["properties"].values():
        prop.setdefault("x-target", target)
    return schema


def _object_schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(dict(raw)) if isinstance(raw, Mapping) else {}
    schema["type"] = "object"
    props = schema.get("properties")
    schema["properties"] = {k: dict(v) if isinstance(v, Mapping) else {} for k, v in props.items()} if isinstance(props, Mapping) else {}
    required = schema.get("required")
    schema["required"] = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
    return schema


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:48].strip("-")


def _command_name(command: str | None) -> str:
    return (command or "").replace("\\", "/").rsplit("/", 1)[-1]


async def _free_name(session: AsyncSession, base: str) -> str:
    taken = set((await session.scalars(select(Plugin.name).where(Plugin.name.startswith(base)))).all())
    if base not in taken:
        return base
    for number in range(2, 1000):
        if f"{base}-{number}" not in taken:
            return f"{base}-{number}"
    raise Conflict(f"No free plugin name starting with {base!r}; choose one with `name`")


# --------------------------------------------------------------------------- values and secrets


def _properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return {k: v for k, v in props.items() if isinstance(v, dict)} if isinstance(props, Mapping) else {}


def _required(schema: Mapping[str, Any]) -> list[str]:
    required = schema.get("required") if isinstance(schema, Mapping) else None
    return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []


def _target(plugin: Plugin, prop: Mapping[str, Any]) -> str:
    target = prop.get("x-target")
    if target in TARGETS:
        return target
    return "env" if plugin.transport == "stdio" else "header"


def _secret_by_default(name: str, prop: Mapping[str, Any] | None = None) -> bool:
    """Secret whatever the user says: the schema marks it, or its name says so."""
    if SECRET_NAME.search(name):
        return True
    prop = prop or {}
    return prop.get("writeOnly") is True or prop.get("format") == "password" or prop.get("isSecret") is True


def _is_stored_secret(stored: Any) -> bool:
    return isinstance(stored, dict)


def _apply_values(
    box: SecretBox,
    current: Mapping[str, Any],
    changes: Mapping[str, str | ValueInput | None],
    schema_secret: Callable[[str], bool],
    what: str,
) -> dict[str, Any]:
    """`current` with `changes` applied: set, cleared (null or ""), or marked secret."""
    out = dict(current)
    for name, change in changes.items():
        if change is None:
            out.pop(name, None)
            continue
        value, marked = (change, None) if isinstance(change, str) else (change.value, change.secret)
        was_secret = _is_stored_secret(out.get(name))
        secret = _secret_by_default(name) or schema_secret(name) or (marked if marked is not None else was_secret)
        if value is None:  # only the secret mark changes
            if name in out and secret and not was_secret:
                out[name] = {"secret": box.encrypt(str(out[name]))}
            elif name in out and not secret and was_secret:
                out[name] = box.decrypt(out[name]["secret"], f"{what}.{name}")
            continue
        if value == "":
            out.pop(name, None)
            continue
        out[name] = {"secret": box.encrypt(value)} if secret else value
    return out


def _apply_settings(box: SecretBox, plugin: Plugin, current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    props = _properties(plugin.settings_schema)
    unknown = [name for name in changes if name not in props]
    if unknown:
        known = ", ".join(props) or "none"
        raise InvalidInput(f"settings: unknown setting(s) {', '.join(map(repr, unknown))}; this plugin's settings: {known}")
    for name, change in changes.items():
        value = change if isinstance(change, str) else (change.value if change is not None else None)
        allowed = props[name].get("enum")
        if value and isinstance(allowed, list) and allowed and value not in [str(a) for a in allowed]:
            raise InvalidInput(f"settings.{name}: must be one of {', '.join(map(str, allowed))}")
        if value and props[name].get("type") in ("number", "integer"):
            try:
                float(value)
            except ValueError:
                raise InvalidInput(f"settings.{name}: must be a number") from None
        if value and props[name].get("type") == "boolean" and value not in ("true", "false"):
            raise InvalidInput(f"settings.{name}: must be true or false")
    return _apply_values(box, current, changes, lambda n: _secret_by_default(n, props.get(n)), "settings")


def _check_required(plugin: Plugin) -> None:
    props = _properties(plugin.settings_schema)
    missing = [
        name
        for name in _required(plugin.settings_schema)
        if plugin.settings.get(name) is None and props.get(name, {}).get("default") is None
    ]
    if missing:
        raise InvalidInput(f"settings: missing required setting(s): {', '.join(missing)}")


def _reveal(box: SecretBox, stored: Any, what: str) -> str:
    return box.decrypt(stored["secret"], what) if _is_stored_secret(stored) else str(stored)


def resolve(plugin: Plugin, box: SecretBox) -> PluginConfig:
    """The plugin ready to run: settings in their places, secrets decrypted."""
    if plugin.source == PluginSource.builtin.value:
        return PluginConfig(name=plugin.name, transport="stdio", builtin=True)
    props = _properties(plugin.settings_schema)
    values = {name: _reveal(box, stored, f"{plugin.name} setting {name}") for name, stored in plugin.settings.items()}
    for name, prop in props.items():
        if name not in values and prop.get("default") is not None:
            default = prop["default"]
            values[name] = json.dumps(default) if isinstance(default, bool) else str(default)
    missing = [name for name in _required(plugin.settings_schema) if name not in values]
    if missing:
        raise InvalidInput(f"Plugin {plugin.name!r} is missing required setting(s): {', '.join(missing)}")
    env = {name: _reveal(box, stored, f"{plugin.name} env {name}") for name, stored in plugin.env.items()}
    headers = {name: _reveal(box, stored, f"{plugin.name} header {name}") for name, stored in plugin.headers.items()}
    for name, value in values.items():
        target = _target(plugin, props.get(name, {}))
        if target == "env":
            env[name] = value
        elif target == "header":
            headers[name] = value

    def render(text: str) -> str:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    return PluginConfig(
        name=plugin.name,
        transport=plugin.transport,
        command=plugin.command,
        args=[render(a) for a in plugin.args or []],
        url=render(plugin.url) if plugin.url else None,
        env=env,
        headers=headers,
    )


def _secret_values(plugin: Plugin, box: SecretBox) -> list[str]:
    """Every secret value of the plugin, decrypted (to redact them from text a server wrote)."""
    out = []
    for stored in [*plugin.env.values(), *plugin.headers.values(), *plugin.settings.values()]:
        if _is_stored_secret(stored):
            try:
                out.append(box.decrypt(stored["secret"]))
            except SecretUnreadable:
                continue
    return out


# NUL cannot be stored in PostgreSQL text or JSON, nor can half a surrogate pair be encoded as
# UTF-8 (a server's output may hold either); both become U+FFFD, the replacement character.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str, redact: Callable[[str], str]) -> str:
    """Text a plugin's server wrote, as it may be stored and shown: secrets hidden, NUL replaced."""
    return redact(UNSTORABLE.sub("\ufffd", text))


# --------------------------------------------------------------------------- update, enable, remove


async def update(session: AsyncSession, box: SecretBox, plugin_id: int, data: PluginUpdate) -> PluginRead:
    plugin = await get(session, plugin_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if plugin.source == PluginSource.builtin.value:
        other = sorted(set(changes) - {"enabled"})
        if other:
            raise Conflict(f"Built-in plugin {plugin.name!r}: only `enabled` can change (not {', '.join(other)})")
        if plugin.name == KANBAN and changes.get("enabled") is False:
            raise Conflict("The board's own plugin (kanban) is always given to agent runs; it cannot be disabled")
    if "command" in changes or "args" in changes:
        if plugin.transport != "stdio":
            raise InvalidInput(f"command and args: {plugin.name!r} is an {plugin.transport} server; change its url")
    if "url" in changes and plugin.transport == "stdio":
        raise InvalidInput(f"url: {plugin.name!r} is a stdio server; change its command")
    if data.env and plugin.transport != "stdio":
        raise InvalidInput(f"env: {plugin.name!r} is an {plugin.transport} server; it takes headers")
    if data.headers and plugin.transport == "stdio":
        raise InvalidInput(f"headers: {plugin.name!r} is a stdio server; it takes env")

    for field in ("title", "description", "enabled", "command", "url"):
        if field in changes:
            setattr(plugin, field, changes[field])
    if "args" in changes:
        plugin.args = list(changes["args"])
    if data.env is not None:
        plugin.env = _apply_values(box, plugin.env, data.env, lambda n: False, "env")
    if data.headers is not None:
        plugin.headers = _apply_values(box, plugin.headers, data.headers, lambda n: False, "headers")
    if data.settings is not None:
        plugin.settings = _apply_settings(box, plugin, plugin.settings, data.settings)
        _check_required(plugin)
    if not changes:
        return await _read(session, plugin)
    plugin.updated_at = utcnow()
    await session.flush()
    await _publish(session, BoardEventType.plugin_updated, plugin)
    return await _read(session, plugin)


async def set_project(session: AsyncSession, plugin_id: int, project_id: int, enabled: bool) -> PluginRead:
    plugin = await get(session, plugin_id, for_update=True)
    if await session.get(Project, project_id) is None:
        raise NotFound(f"Project {project_id} not found")
    if plugin.name == KANBAN and plugin.source == PluginSource.builtin.value:
        raise Conflict("The board's own plugin (kanban) is given to every project's runs; it cannot be switched per project")
    row = await session.get(PluginProject, (plugin_id, project_id))
    if row is None:
        session.add(PluginProject(plugin_id=plugin_id, project_id=project_id, enabled=enabled))
    elif row.enabled == enabled:
        return await _read(session, plugin)
    else:
        row.enabled = enabled
    plugin.updated_at = utcnow()
    await session.flush()
    await _publish(session, BoardEventType.plugin_updated, plugin)
    return await _read(session, plugin)


async def remove(session: AsyncSession, plugin_id: int) -> None:
    plugin = await get(session, plugin_id, for_update=True)
    if plugin.source == PluginSource.builtin.value:
        raise Conflict(f"{plugin.name!r} is built in and cannot be uninstalled" + ("" if plugin.name == KANBAN else "; disable it instead"))
    await session.delete(plugin)  # its project switches go with it (ON DELETE CASCADE)
    await session.flush()
    await event_log.record(session, BoardEventType.plugin_removed, None, {"id": plugin_id, "name": plugin.name})


# --------------------------------------------------------------------------- runs


async def plugins_for_run(session: AsyncSession, project_id: int, box: SecretBox) -> list[PluginConfig]:
    """The plugins a run in this project gets (enabled globally and for the project), decrypted.

    The board's own plugin is not in the list: `servers_for_run` always adds it. A plugin whose
    secrets cannot be decrypted or whose required settings are missing is left out (logged).
    """
    plugins = (
        await session.scalars(
            select(Plugin)
            .join(PluginProject, PluginProject.plugin_id == Plugin.id)
            .where(
                PluginProject.project_id == project_id,
                PluginProject.enabled.is_(True),
                Plugin.enabled.is_(True),
                Plugin.name != KANBAN,
            )
            .order_by(Plugin.name)
        )
    ).all()
    configs = []
    for plugin in plugins:
        try:
            configs.append(resolve(plugin, box))
        except KanbanError as exc:
            log.warning("plugin %r left out of the run: %s", plugin.name, exc.message)
    return configs


# --------------------------------------------------------------------------- connection test


async def test(
    database: Database, box: SecretBox, settings: Settings, plugin_id: int, timeout: float = probe.DEFAULT_TIMEOUT
) -> PluginTestRead:
    """Start (or connect to) the plugin's server, list its tools, store and return the outcome."""
    async with database.session() as session:
        plugin = await get(session, plugin_id)
        secrets = _secret_values(plugin, box)
        try:
            config = resolve(plugin, box)
            error = None
        except KanbanError as exc:
            config, error = None, exc.message
    scratch = None
    try:
        if config is None:
            result = probe.ProbeResult(ok=False, error=error)
        else:
            target = None
            if config.builtin:
                scratch = await asyncio.to_thread(tempfile.mkdtemp, prefix="kanban-plugin-test-")
                token = settings.api_token.get_secret_value() if settings.api_token else None
                if token:
                    secrets.append(token)
                target = RunTarget(settings.resolved_api_url, token, 0, 0, 0, worktree=scratch)
            server = plugin_server(config, target, in_process=False)
            assert server is not None
            result = await probe.test_connection(server, timeout=timeout)
    finally:
        if scratch is not None:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
    redact = Redactor(secrets)
    tools = [
        {
            "name": storable(str(t.get("name", "")), redact),
            "description": storable(t["description"], redact) if t.get("description") else None,
        }
        for t in result.tools
    ]
    error = storable(result.error, redact) if result.error else None
    async with database.session(write=True) as session:
        plugin = await get(session, plugin_id, for_update=True)
        plugin.tested_at = utcnow()
        plugin.test_ok = result.ok
        plugin.test_tools = tools
        plugin.test_error = error
        await session.flush()
        await _publish(session, BoardEventType.plugin_updated, plugin)
        return PluginTestRead(tested_at=plugin.tested_at, ok=result.ok, tools=tools, error=error)


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite the name

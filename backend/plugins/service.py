"""Plugins: MCP servers agents are given. Installed from a registry search or by hand.

This module installs, reads, changes, switches (globally and per project) and removes plugins,
and registers the built-in ones at the app's start. Beside it: `settings` (the settings schema
and stored values), `search` (the registries), `run_servers` (what a run gets, decrypted) and
`connection_test`. Secret values are encrypted with a `SecretBox` before they are stored; what
this module returns to the API (`PluginRead`) and records as board events never holds them.

Installing from a registry waits on the outside world (a registry lookup): `install` takes the
`Database` and opens its own short transaction after the wait, so no database lock is held
while waiting. Everything else takes a session and only flushes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client.discovery import DiscoveryClient, RegistryServer
from mcp_client.registry import ALWAYS_ON, FILESYSTEM, KANBAN, KNOWLEDGE

from ..db import outside_transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..models import Plugin, PluginProject, PluginSource, Project
from ..models.base import utcnow
from .run_servers import plugins_for_run as plugins_for_run  # re-exported: the orchestrator takes it from here
from .run_servers import plugins_named as plugins_named
from .schemas import PluginInstall, PluginProjectRead, PluginRead, PluginTestRead, PluginUpdate
from .search import discovery_for as discovery_for  # re-exported: the app's start takes it from here
from .search import lookup
from .secrets import SecretBox
from .settings import (
    apply_settings,
    apply_values,
    check_required,
    empty_schema,
    option_schema,
    setting_reads,
    targeted,
    value_reads,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- built-in plugins

BUILTINS: dict[str, dict[str, Any]] = {
    KANBAN: {
        "title": "Kanban board",
        "description": "The board's own tools (tasks, runs, results). Every agent run gets them; "
        "they need no approval.",
        "args": ["-m", "mcp_servers.kanban_server"],
    },
    KNOWLEDGE: {
        "title": "Knowledge",
        "description": "Search, read and add to the knowledge collections bound to the run's project "
        "(notes, documents, web pages, past task results). Every agent run gets them; they need no approval.",
        "args": ["-m", "mcp_servers.knowledge_server"],
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
                name=name,
                source=PluginSource.builtin.value,
                enabled=True,
                url=None,
                headers={},
                env={},
                settings_schema=empty_schema(),
                settings={},
                **fields,
            )
            session.add(plugin)
            await session.flush()
            await publish(session, BoardEventType.plugin_installed, plugin)
            continue
        if plugin.source != PluginSource.builtin.value:
            log.warning("a plugin named %r is not the built-in one; leaving it as it is", name)
            continue
        changed = {k: v for k, v in fields.items() if getattr(plugin, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(plugin, key, value)
            await session.flush()
            await publish(session, BoardEventType.plugin_updated, plugin)


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
        source=plugin.source,  # type: ignore[arg-type]  # a str column, CHECK-constrained to these values
        source_ref=plugin.source_ref,
        transport=plugin.transport,  # type: ignore[arg-type]  # a str column, CHECK-constrained to these values
        command=plugin.command,
        args=list(plugin.args or []),
        url=plugin.url,
        builtin=plugin.source == PluginSource.builtin.value,
        enabled=plugin.enabled,
        env=value_reads(plugin.env),
        headers=value_reads(plugin.headers),
        settings=setting_reads(plugin),
        settings_schema=plugin.settings_schema,
        projects=[PluginProjectRead(project_id=row.project_id, enabled=row.enabled) for row in projects],
        last_test=last_test,
        installed_at=plugin.installed_at,
        updated_at=plugin.updated_at,
    )


async def publish(session: AsyncSession, type: BoardEventType, plugin: Plugin) -> None:
    """Record the plugin as it now reads as a board event (no secrets in it)."""
    payload = (await _read(session, plugin)).model_dump(mode="json")
    await event_log.record(session, type, None, payload)


# --------------------------------------------------------------------------- install


async def install(session: AsyncSession, discovery: DiscoveryClient, box: SecretBox, data: PluginInstall) -> PluginRead:
    """Look the entry up in its registry (if it comes from one, outside the transaction: no
    writer waits for the registry), then create the plugin."""
    entry = None
    if data.source != "custom":
        assert data.source_ref is not None
        async with outside_transaction(session):
            entry = await lookup(discovery, data.source, data.source_ref, data.query)
    plugin = await create(session, box, data, entry)
    return await _read(session, plugin)


async def create(
    session: AsyncSession, box: SecretBox, data: PluginInstall, entry: RegistryServer | None = None
) -> Plugin:
    """Create a plugin from install data (and the registry entry it names, already looked up)."""
    schema = empty_schema()
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
            raise InvalidInput(
                f"option: {entry.name} has {len(entry.install_options)} install option(s); use 0–{len(entry.install_options) - 1}"
            )
        option = entry.install_options[index]
        transport, command, args, url = option.transport, option.command, list(option.args), option.url
        schema = option_schema(option)
    elif data.source == "glama":
        assert entry is not None
        schema = targeted(entry.settings_schema, "env" if transport == "stdio" else "header")

    title = data.title or (entry.title or entry.name if entry else None)
    name = data.name
    if name is None:
        base = (
            _slug(title or "")
            or _slug((entry.name.rsplit("/", 1)[-1]) if entry else "")
            or _slug(_command_name(command))
        )
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
    plugin.env = apply_values(box, {}, data.env or {}, lambda n: False, "env")
    plugin.headers = apply_values(box, {}, data.headers or {}, lambda n: False, "headers")
    plugin.settings = apply_settings(box, plugin, {}, data.settings or {})
    check_required(plugin)
    session.add(plugin)
    await session.flush()
    await publish(session, BoardEventType.plugin_installed, plugin)
    return plugin


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


# --------------------------------------------------------------------------- update, enable, remove


async def update(session: AsyncSession, box: SecretBox, plugin_id: int, data: PluginUpdate) -> PluginRead:
    plugin = await get(session, plugin_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if plugin.source == PluginSource.builtin.value:
        other = sorted(set(changes) - {"enabled"})
        if other:
            raise Conflict(f"Built-in plugin {plugin.name!r}: only `enabled` can change (not {', '.join(other)})")
        if plugin.name in ALWAYS_ON and changes.get("enabled") is False:
            raise Conflict(
                f"The board's own plugin ({plugin.name}) is always given to agent runs; it cannot be disabled"
            )
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
        plugin.env = apply_values(box, plugin.env, data.env, lambda n: False, "env")
    if data.headers is not None:
        plugin.headers = apply_values(box, plugin.headers, data.headers, lambda n: False, "headers")
    if data.settings is not None:
        plugin.settings = apply_settings(box, plugin, plugin.settings, data.settings)
        check_required(plugin)
    if not changes:
        return await _read(session, plugin)
    plugin.updated_at = utcnow()
    await session.flush()
    await publish(session, BoardEventType.plugin_updated, plugin)
    return await _read(session, plugin)


async def set_project(session: AsyncSession, plugin_id: int, project_id: int, enabled: bool) -> PluginRead:
    plugin = await get(session, plugin_id, for_update=True)
    if await session.get(Project, project_id) is None:
        raise NotFound(f"Project {project_id} not found")
    if plugin.name in ALWAYS_ON and plugin.source == PluginSource.builtin.value:
        raise Conflict(
            f"The board's own plugin ({plugin.name}) is given to every project's runs; it cannot be switched per project"
        )
    row = await session.get(PluginProject, (plugin_id, project_id))
    if row is None:
        session.add(PluginProject(plugin_id=plugin_id, project_id=project_id, enabled=enabled))
    elif row.enabled == enabled:
        return await _read(session, plugin)
    else:
        row.enabled = enabled
    plugin.updated_at = utcnow()
    await session.flush()
    await publish(session, BoardEventType.plugin_updated, plugin)
    return await _read(session, plugin)


async def remove(session: AsyncSession, plugin_id: int) -> None:
    plugin = await get(session, plugin_id, for_update=True)
    if plugin.source == PluginSource.builtin.value:
        raise Conflict(
            f"{plugin.name!r} is built in and cannot be uninstalled"
            + ("" if plugin.name in ALWAYS_ON else "; disable it instead")
        )
    await session.delete(plugin)  # its project switches go with it (ON DELETE CASCADE)
    await session.flush()
    await event_log.record(session, BoardEventType.plugin_removed, None, {"id": plugin_id, "name": plugin.name})

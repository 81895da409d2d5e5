"""What a run gets: the plugins enabled globally and for its project, ready to run.

The orchestrator calls :func:`plugins_for_run` when a run starts; the connection test resolves
one plugin the same way. Only here are secrets decrypted for a server, into its environment,
headers, arguments or URL, never into anything shown or logged.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client.registry import ALWAYS_ON, PluginConfig

from ..errors import InvalidInput, KanbanError
from ..models import Plugin, PluginProject, PluginSource
from .secrets import SecretBox
from .settings import required_names, reveal, schema_properties, value_target

log = logging.getLogger(__name__)


def resolve(plugin: Plugin, box: SecretBox) -> PluginConfig:
    """The plugin ready to run: settings in their places, secrets decrypted."""
    if plugin.source == PluginSource.builtin.value:
        return PluginConfig(name=plugin.name, transport="stdio", builtin=True)
    props = schema_properties(plugin.settings_schema)
    values = {name: reveal(box, stored, f"{plugin.name} setting {name}") for name, stored in plugin.settings.items()}
    for name, prop in props.items():
        if name not in values and prop.get("default") is not None:
            default = prop["default"]
            values[name] = json.dumps(default) if isinstance(default, bool) else str(default)
    missing = [name for name in required_names(plugin.settings_schema) if name not in values]
    if missing:
        raise InvalidInput(f"Plugin {plugin.name!r} is missing required setting(s): {', '.join(missing)}")
    env = {name: reveal(box, stored, f"{plugin.name} env {name}") for name, stored in plugin.env.items()}
    headers = {name: reveal(box, stored, f"{plugin.name} header {name}") for name, stored in plugin.headers.items()}
    for name, value in values.items():
        target = value_target(plugin, props.get(name, {}))
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


async def plugins_for_run(session: AsyncSession, project_id: int, box: SecretBox) -> list[PluginConfig]:
    """The plugins a run in this project gets (enabled globally and for the project), decrypted.

    The board's own plugins (kanban, knowledge) are not in the list: `servers_for_run` always adds them. A plugin whose
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
                Plugin.name.not_in(ALWAYS_ON),
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


async def plugins_named(session: AsyncSession, names: list[str], box: SecretBox) -> list[PluginConfig]:
    """The plugins a workflow step names (installed and enabled on the board, whether or not its
    project enables them), decrypted. The board's own plugins are always there anyway. A name
    that is not installed, or a plugin that cannot be resolved, fails the run with the reason."""
    wanted = [name for name in dict.fromkeys(names) if name not in ALWAYS_ON]
    if not wanted:
        return []
    found = {
        plugin.name: plugin
        for plugin in await session.scalars(
            select(Plugin).where(Plugin.name.in_(wanted), Plugin.enabled.is_(True)).order_by(Plugin.name)
        )
    }
    missing = [name for name in wanted if name not in found]
    if missing:
        raise InvalidInput(
            "This workflow step uses plugins that are not installed or are disabled: "
            + ", ".join(missing)
            + ". Install or enable them on the Plugins page, then run the step again."
        )
    return [resolve(found[name], box) for name in wanted]

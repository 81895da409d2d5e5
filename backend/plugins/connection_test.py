"""Testing a plugin's connection: start (or reach) its server, list its tools, keep the outcome.

The test waits on the outside world (up to its timeout), so it does that outside the
transaction (`outside_transaction`), holding no database lock while it waits. What the server
wrote is stored and shown only through :func:`storable`: secrets hidden, NUL replaced.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client import probe
from mcp_client.registry import PluginConfig, RunTarget, plugin_server

from ..config import Settings
from ..db import outside_transaction
from ..errors import KanbanError
from ..events.types import BoardEventType
from ..models import Plugin
from ..models.base import utcnow
from .run_servers import resolve
from .schemas import PluginTestRead
from .secrets import Redactor, SecretBox, SecretUnreadable
from .service import get, publish
from .settings import is_stored_secret

# NUL cannot be stored in PostgreSQL text or JSON, nor can half a surrogate pair be encoded as
# UTF-8 (a server's output may hold either); both become U+FFFD, the replacement character.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str, redact: Callable[[str], str]) -> str:
    """Text a plugin's server wrote, as it may be stored and shown: secrets hidden, NUL replaced."""
    return redact(UNSTORABLE.sub("\ufffd", text))


def secret_values(plugin: Plugin, box: SecretBox) -> list[str]:
    """Every secret value of the plugin, decrypted (to redact them from text a server wrote)."""
    out = []
    for stored in [*plugin.env.values(), *plugin.headers.values(), *plugin.settings.values()]:
        if is_stored_secret(stored):
            try:
                out.append(box.decrypt(stored["secret"]))
            except SecretUnreadable:
                continue
    return out


async def check_connection(
    session: AsyncSession,
    box: SecretBox,
    settings: Settings,
    plugin_id: int,
    timeout: float = probe.DEFAULT_TIMEOUT,
) -> PluginTestRead:
    """Start (or connect to) the plugin's server, list its tools, store and return the outcome."""
    plugin = await get(session, plugin_id)
    secrets = secret_values(plugin, box)
    try:
        config = resolve(plugin, box)
        error = None
    except KanbanError as exc:
        config, error = None, exc.message
    async with outside_transaction(session):
        result = await _probe(config, error, settings, secrets, timeout)
    redact = Redactor(secrets)
    tools = [
        {
            "name": storable(str(t.get("name", "")), redact),
            "description": storable(t["description"], redact) if t.get("description") else None,
        }
        for t in result.tools
    ]
    error = storable(result.error, redact) if result.error else None
    plugin = await get(session, plugin_id, for_update=True)
    plugin.tested_at = utcnow()
    plugin.test_ok = result.ok
    plugin.test_tools = tools
    plugin.test_error = error
    await session.flush()
    await publish(session, BoardEventType.plugin_updated, plugin)
    return PluginTestRead(tested_at=plugin.tested_at, ok=result.ok, tools=tools, error=error)


async def _probe(
    config: PluginConfig | None, error: str | None, settings: Settings, secrets: list[str], timeout: float
) -> probe.ProbeResult:
    """The test itself (no database): `error` when the plugin could not be configured."""
    if config is None:
        return probe.ProbeResult(ok=False, error=error)
    scratch = None
    try:
        target = None
        if config.builtin:
            scratch = await asyncio.to_thread(tempfile.mkdtemp, prefix="kanban-plugin-test-")
            token = settings.api_token.get_secret_value() if settings.api_token else None
            if token:
                secrets.append(token)
            target = RunTarget(settings.resolved_api_url, token, 0, 0, 0, worktree=scratch)
        server = plugin_server(config, target, in_process=False)
        assert server is not None
        return await probe.check_server(server, timeout=timeout)
    finally:
        if scratch is not None:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

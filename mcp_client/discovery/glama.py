"""The Glama registry: ``GET {base}/v1/servers?query=&first=&after=``.

Entries carry tools, a license and a JSON Schema for environment variables, but no install
command (a Glama result is installed with a command the user gives).
"""

from __future__ import annotations

import logging
from typing import Any

from .fetch import RegistryHTTP
from .models import GlamaPage, GlamaServer, Hosting, RegistryServer, Source, SourcePage, ToolInfo, empty_schema

DEFAULT_GLAMA_URL = "https://glama.ai/api/mcp"

log = logging.getLogger(__name__)

HOSTING: dict[str, Hosting] = {
    "hosting:local-only": "local",
    "hosting:remote-capable": "remote",
    "hosting:hybrid": "hybrid",
}


class GlamaClient(RegistryHTTP):
    source: Source = "glama"
    label = "Glama registry"

    def __init__(self, base_url: str = DEFAULT_GLAMA_URL, *, api_key: str | None = None, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(base_url, headers=headers, **kwargs)

    async def search(self, query: str = "", limit: int = 20, cursor: str | None = None) -> SourcePage:
        params: dict[str, Any] = {"first": limit}
        if query:
            params["query"] = query
        if cursor:
            params["after"] = cursor
        page = await self.get_page("/v1/servers", params, GlamaPage)
        info = page.page_info
        items = [server for server in map(registry_server, page.servers) if server is not None]
        return SourcePage(items=items, next_cursor=info.end_cursor if info and info.has_next_page else None)


def registry_server(raw: GlamaServer | None) -> RegistryServer | None:
    """The entry as a :class:`RegistryServer`; None for one that is not an object or names nothing."""
    if raw is None:
        return None
    ref = f"{raw.namespace}/{raw.slug}" if raw.namespace and raw.slug else raw.id
    if not ref or not (raw.name or raw.id):
        log.debug("skipping a Glama entry without id or name: %r", raw)
        return None
    schema = raw.environment_variables_json_schema
    return RegistryServer(
        source="glama",
        source_ref=ref,
        name=ref,
        title=raw.name,
        description=raw.description,
        repository_url=raw.repository.url if raw.repository else None,
        website_url=raw.url,
        license=raw.spdx_license.name if raw.spdx_license else None,
        tools=None if raw.tools is None else [ToolInfo(name=t.name, description=t.description) for t in raw.tools if t],
        settings_schema=schema.normalised() if schema else empty_schema(),
        hosting=next((HOSTING[a] for a in raw.attributes or [] if a in HOSTING), None),
    )

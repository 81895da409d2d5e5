"""Registry search: what the Plugin Manager shows, and finding an entry again to install it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_client.discovery import DiscoveryClient, InvalidCursor, RegistryServer

from ..config import Settings
from ..errors import InvalidInput, KanbanError
from ..models import Plugin
from .schemas import PluginSearchItem, PluginSearchResults

SEARCH_LIMIT = 20
LOOKUP_PAGES = 5


class RegistryUnavailable(KanbanError):
    """A registry needed for an install could not be read."""

    status_code = 502


def discovery_for(settings: Settings) -> DiscoveryClient:
    """The app's registry client (one per app: its cache is shared by every request)."""
    key = settings.glama_api_key.get_secret_value() if settings.glama_api_key else None
    return DiscoveryClient(glama_url=settings.glama_url, official_url=settings.mcp_registry_url, glama_api_key=key)


async def search(
    session: AsyncSession,
    discovery: DiscoveryClient,
    query: str,
    source: str,
    cursor: str | None,
    limit: int = SEARCH_LIMIT,
) -> PluginSearchResults:
    """Both registries (or one). A registry that fails is named in `errors`; the other's results stay."""
    try:
        results = await discovery.search(query, source=source, limit=limit, cursor=cursor or None)
    except InvalidCursor as exc:
        raise InvalidInput(f"cursor: {exc}; start the search again without it") from None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    installed: dict[tuple[str, str | None], list[str]] = {}
    refs = {(item.source, item.source_ref) for item in results.items}
    if refs:
        rows = await session.execute(
            select(Plugin.source, Plugin.source_ref, Plugin.name).where(
                Plugin.source_ref.in_(sorted({r for _, r in refs}))
            )
        )
        for row_source, ref, name in rows.all():
            installed.setdefault((row_source, ref), []).append(name)
    items = [
        PluginSearchItem(
            **item.model_dump(exclude={"key"}), installed=installed.get((item.source, item.source_ref), [])
        )
        for item in results.items
    ]
    return PluginSearchResults(items=items, next_cursor=results.next_cursor, errors=results.errors)


async def lookup(discovery: DiscoveryClient, source: str, ref: str, query: str | None) -> RegistryServer:
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

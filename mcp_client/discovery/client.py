"""Search one registry or both, with a short in-memory cache and cursors that span both."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
from cachetools import TTLCache

from .fetch import DEFAULT_TIMEOUT, RegistryError
from .glama import DEFAULT_GLAMA_URL, GlamaClient
from .models import SearchResults, Source, SourcePage
from .official import DEFAULT_OFFICIAL_URL, OfficialRegistryClient

log = logging.getLogger(__name__)

DEFAULT_CACHE_TTL = 60.0
MAX_LIMIT = 100
SOURCES: tuple[Source, ...] = ("glama", "official")
_CURSOR_PREFIX = "v1."

CacheKey = tuple[str, str, int, str | None]  # source, query, limit, cursor


class InvalidCursor(ValueError):
    pass


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
        # Pages that were read, least recently used first out; failures are not kept.
        self._cache: TTLCache[CacheKey, SourcePage] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_ttl) if cache_ttl > 0 else None
        )

    async def __aenter__(self) -> DiscoveryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

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
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            return cached, None
        client = self.clients[source]
        try:
            page = await client.search(query, limit, cursor)
        except RegistryError as exc:
            log.warning("MCP registry search failed: %s", exc)
            return None, str(exc)
        except Exception as exc:  # a bug or a shape we did not foresee: report it, keep the other registry
            log.exception("unexpected error searching the %s", client.label)
            return None, f"{client.label} search failed: {type(exc).__name__}: {exc}"
        if self._cache is not None:
            self._cache[key] = page
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

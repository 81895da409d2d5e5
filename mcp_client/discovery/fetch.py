"""GET a registry's JSON: a timeout per attempt, one retry, a size limit, errors meant for people."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from .models import Source

DEFAULT_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "kanban-orchestrator (MCP discovery)"

Page = TypeVar("Page", bound=BaseModel)


class RegistryError(Exception):
    """A registry could not be searched. The message is meant for the user."""


class RegistryHTTP:
    """GET JSON with a timeout per attempt and one retry on connection errors, timeouts, 5xx and 429.

    Subclasses (one per registry) set ``source`` and ``label`` (the registry's name in messages).
    """

    source: Source
    label: str

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

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def get_page(self, path: str, params: Mapping[str, Any], model: type[Page]) -> Page:
        """The JSON at ``path``, read as ``model``; a body of another shape is a :class:`RegistryError`."""
        data = await self.get_json(path, params)
        try:
            return model.model_validate(data)
        except ValidationError:
            raise RegistryError(f"{self.label} returned an unexpected response (no 'servers' list)") from None

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

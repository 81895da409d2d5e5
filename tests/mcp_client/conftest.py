"""Fixtures: fake registries on 127.0.0.1 and discovery clients pointed at them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from mcp_client.discovery import DiscoveryClient
from tests.mcp_client.fake_registries import (
    GLAMA_PATH,
    OFFICIAL_PATH,
    FakeRegistry,
    glama_route,
    glama_server,
    official_route,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def glama() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.routes[GLAMA_PATH] = glama_route([glama_server(i) for i in range(1, 6)])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def official() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.routes[OFFICIAL_PATH] = official_route([])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def unused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., DiscoveryClient]]:
    clients: list[DiscoveryClient] = []

    def make(glama: FakeRegistry | str, official: FakeRegistry | str, **kwargs: Any) -> DiscoveryClient:
        kwargs.setdefault("timeout", 0.5)
        kwargs.setdefault("retry_backoff", 0.01)
        client = DiscoveryClient(
            glama_url=glama if isinstance(glama, str) else glama.url,
            official_url=official if isinstance(official, str) else official.url,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()

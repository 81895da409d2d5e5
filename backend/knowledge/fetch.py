"""Fetching a knowledge URL with httpx, carefully: only http and https, the host name resolved
and every address checked (no loopback, private, link-local or reserved ones unless
KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS), the connection made to the address that was checked (so
a second lookup cannot point elsewhere), at most 5 redirects (each checked the same way),
connect and read timeouts, a limit on the whole fetch's time and on the body's size (counted
as it arrives). Failures raise `FetchFailed` with a message for the user.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from .. import __version__

MAX_REDIRECTS = 5
CONNECT_SECONDS = 10.0
READ_SECONDS = 20.0
USER_AGENT = f"KanbanOrchestrator/{__version__} (knowledge fetcher)"
ACCEPT = "text/html, application/xhtml+xml, text/markdown, text/plain, application/pdf;q=0.9, */*;q=0.1"


class FetchFailed(Exception):
    """The URL could not be fetched; the message says why."""


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    content_type: str | None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast or address.is_reserved or address.is_unspecified


async def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for `host`, after checking every address it resolves to."""
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchFailed(f"the host name {host!r} could not be resolved ({exc})") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise FetchFailed(f"the host name {host!r} has no address")
    if not allow_private:
        for address in addresses:
            if _refused(address):
                raise FetchFailed(
                    f"{host} resolves to {address}, a loopback, private, link-local or reserved address; such "
                    "addresses are refused (set KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS=true to allow them)"
                )
    return str(addresses[0])


def _check_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchFailed(f"only http and https URLs are fetched, not {parts.scheme or 'this'}: {url[:200]}")
    if not parts.hostname:
        raise FetchFailed(f"the URL has no host: {url[:200]}")
    if parts.username or parts.password:
        raise FetchFailed("URLs with a user name or password are not fetched")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise FetchFailed(f"the URL's port is not valid: {url[:200]}") from None
    return scheme, parts.hostname, port


async def _get(client: httpx.AsyncClient, url: str, allow_private: bool, max_bytes: int) -> httpx.Response | Fetched:
    scheme, host, port = _check_url(url)
    address = await resolve(host, port, allow_private)
    parts = urlsplit(url)
    netloc = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    request = client.build_request(
        "GET",
        pinned,
        headers={"Host": host_header},
        extensions={"sni_hostname": host} if scheme == "https" else {},
    )
    response = await client.send(request, stream=True)
    if response.is_redirect:
        await response.aclose()
        return response
    try:
        if response.status_code >= 400:
            raise FetchFailed(f"the server answered {response.status_code} {response.reason_phrase}")
        announced = response.headers.get("content-length")
        if announced and announced.isdigit() and int(announced) > max_bytes:
            raise FetchFailed(f"the document is {int(announced):,} bytes, more than the limit of {max_bytes:,}")
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > max_bytes:
                raise FetchFailed(f"the document is larger than the limit of {max_bytes:,} bytes")
        return Fetched(url=url, data=bytes(body), content_type=response.headers.get("content-type"))
    finally:
        await response.aclose()


async def fetch(url: str, *, allow_private: bool, max_bytes: int, total_seconds: float) -> Fetched:
    timeout = httpx.Timeout(
        connect=min(CONNECT_SECONDS, total_seconds), read=min(READ_SECONDS, total_seconds), write=10.0, pool=5.0
    )
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    try:
        async with asyncio.timeout(total_seconds):
            async with httpx.AsyncClient(
                timeout=timeout, headers=headers, follow_redirects=False, trust_env=False
            ) as client:
                current = url
                for _ in range(MAX_REDIRECTS + 1):
                    result = await _get(client, current, allow_private, max_bytes)
                    if isinstance(result, Fetched):
                        return result
                    location = result.headers.get("location")
                    if not location:
                        raise FetchFailed(f"the server answered {result.status_code} without a Location")
                    current = urljoin(current, location)
                raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        raise FetchFailed(f"timed out: the fetch took longer than {total_seconds:g} s") from None
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"timed out ({type(exc).__name__}): the server did not answer in time") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"the fetch failed: {type(exc).__name__}: {exc}") from None

"""Request bodies over KANBAN_MAX_BODY_BYTES are refused with 413 before they are read whole,
on a real uvicorn server: by their Content-Length up front, or while a chunked body streams."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer

MiB = 1024 * 1024
BODY = 200 * MiB


def peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM), so it measures what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/self/status")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def post_chunked(port: int, path: str, total: int) -> tuple[int, int, dict[str, str], bytes]:
    """POST `total` bytes as 1 MiB chunks until the server answers or stops reading.

    Returns how many body bytes were handed to the socket, and the response."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b" " * MiB
        framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        sent = 0
        sock.settimeout(2)
        try:
            while sent < total:
                sock.sendall(framed)
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server answered and closed, or stopped reading
        sock.settimeout(10)
        status, headers, body = read_response(sock)
        return sent, status, headers, body
    finally:
        sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


async def test_a_large_content_length_is_413_before_the_body_is_sent(live_server: LiveServer):
    def attempt() -> tuple[int, dict[str, str], bytes, bool]:
        with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
            sock.sendall(
                f"POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1:{live_server.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n".encode()
                + b"{" * 1000  # the start of a body that never comes
            )
            status, headers, body = read_response(sock)
            return status, headers, body, closed_by_server(sock)

    status, headers, body, closed = await asyncio.to_thread(attempt)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert "larger than this server accepts (1,048,576 bytes, KANBAN_MAX_BODY_BYTES)" in json.loads(body)["detail"]
    assert headers.get("connection") == "close" and closed


async def test_a_large_chunked_body_is_cut_off_at_the_limit(live_server: LiveServer):
    measured = peak_rss_reset()
    before = rss("VmRSS")
    started = time.monotonic()
    sent, status, headers, body = await asyncio.to_thread(post_chunked, live_server.port, "/api/projects", BODY)
    took = time.monotonic() - started
    peak = rss("VmHWM") if measured else rss("VmRSS")
    print(
        f"sent {sent / MiB:.0f} MiB of {BODY / MiB:.0f} MiB; RSS {before / MiB:.0f} MiB before, "
        f"peak {peak / MiB:.0f} MiB (+{(peak - before) / MiB:.0f} MiB); {took:.2f} s"
    )
    assert status == 413, body
    assert "KANBAN_MAX_BODY_BYTES" in json.loads(body)["detail"]
    # The server stopped reading: what got out is the limit plus what the sockets buffer.
    assert sent <= 24 * MiB
    # The server (this process) held about the limit, not the body (200 MiB).
    assert peak - before < 48 * MiB


async def test_bodies_within_the_limit_are_served(live_server: LiveServer, workspace):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        name = "x" * 100
        fits = json.dumps({"name": name, "workspace_path": str(workspace), "description": "d" * (900 * 1024)})
        response = await http.post("/api/projects", content=fits, headers={"Content-Type": "application/json"})
        assert response.status_code != 413, response.text

        async def chunks():
            for part in (
                b'{"name": "chunked ',
                b'body", "init_git": true, "workspace_path": ',
                json.dumps(str(workspace)).encode(),
                b"}",
            ):
                yield part

        response = await http.post("/api/projects", content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "chunked body"
        # The connection is still good for the next request.
        assert (await http.get("/api/health")).status_code == 200

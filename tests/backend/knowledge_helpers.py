"""Shared by the knowledge tests: a tiny PDF, a local web server, waiting for ingestion."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

ARTICLE = """<!doctype html><html><head><title>Tuning the write-ahead log</title></head><body>
<nav>Home | About | Contact</nav>
<article><h1>Tuning the write-ahead log</h1>
<p>SQLite in WAL mode lets readers continue while one writer appends to the log. A checkpoint
copies the pages back into the database file; wal_autocheckpoint decides how often.</p>
<h2>Busy timeouts</h2>
<p>When two writers meet, the second waits for busy_timeout milliseconds before giving up with
SQLITE_BUSY. Queue writers in the application instead of relying on the busy handler.</p>
</article><footer>Copyright nobody</footer></body></html>"""


def tiny_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer holds `lines` (Helvetica), built by hand with a valid xref."""
    text = " ".join(f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class Site:
    """A local web server: path -> (status, headers, body) or a callable handling the request."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes] | Callable[[BaseHTTPRequestHandler], None]] = {}
        self.release = threading.Event()
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                site.hits.append(self.path)
                route = site.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if callable(route):
                    route(self)
                    return
                status, headers, body = route
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8") -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (200, {"Content-Type": content_type}, data)
        return self.url + path

    def redirect(self, path: str, location: str) -> str:
        self.routes[path] = (302, {"Location": location}, b"")
        return self.url + path

    def hang(self, path: str) -> str:
        def handle(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.end_headers()
            request.wfile.write(b"<html><body><p>Slow")
            request.wfile.flush()
            self.release.wait(60)

        self.routes[path] = handle
        return self.url + path

    def endless(self, path: str) -> str:
        """A body without a length that never ends (until the client stops reading)."""

        def handle(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "text/plain")
            request.end_headers()
            try:
                for _ in range(100_000):
                    request.wfile.write(b"all work and no play " * 500)
            except OSError:
                pass

        self.routes[path] = handle
        return self.url + path


@contextmanager
def serving() -> Iterator[Site]:
    site = Site()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        site.server.shutdown()
        site.server.server_close()


FINAL = {"ready", "failed"}


async def wait_for_document(client: httpx.AsyncClient, document_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/knowledge/documents/{document_id}")
        assert response.status_code == 200, response.text
        document = response.json()
        if document["status"] in FINAL:
            return document
        assert time.monotonic() < deadline, f"document still {document['status']}: {document}"
        await asyncio.sleep(0.1)

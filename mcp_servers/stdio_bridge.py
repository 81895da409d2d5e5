"""`kanban mcp`: the board's MCP server on stdio, as a bridge to the running board's /mcp.

Claude Code gives a stdio server about two seconds before the first turn of `claude -p`, and
importing the MCP SDK alone costs most of that on a busy machine. The board already serves the
kanban tools over streamable HTTP at /mcp, so this module, which imports only the standard
library and httpx, passes the client's JSON-RPC messages through to it: each line read from
stdin is POSTed to `<KANBAN_API_URL>/mcp`, and each message of the answer (a JSON body or the
`data:` of each server-sent event) is written to stdout as a line.

When the board cannot be reached at start, or the environment asks for something its /mcp
does not serve (`KANBAN_MCP_TOOLS` other than `core`, or a run's `KANBAN_PROJECT_ID`,
`KANBAN_TASK_ID`, `KANBAN_RUN_ID`), the tools are served in-process instead
(mcp_servers.kanban_server), starting from the message already read.

A board that restarts loses its sessions: the bridge opens a new one with the client's own
`initialize` and repeats the refused message once. `wait_for_task`, which only reads and may
wait for minutes, is repeated after the board comes back when its answer was cut off, within
the caller's timeout.

Run: `kanban mcp` or `python -m mcp_servers.stdio_bridge`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import signal
import ssl
import sys
import threading
import time
from typing import Any

from mcp_servers.environment import DEFAULT_API_URL, RunContext, exit_at_once, log_to_stderr

# httpx imports its command-line client (click, rich) when they are installed, as they are here
# for FastMCP: a fifth of the bridge's start-up for something it never uses. A None entry in
# sys.modules makes that import fail, which httpx expects (then `httpx.main` says to install it).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None blocks an import, as Python documents
import httpx  # noqa: E402

if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
    del sys.modules["httpx._main"]  # a later `import httpx._main` works as usual

CONNECT_SECONDS = 3.0  # a board on this machine accepts at once
ANSWER_SECONDS = 5.0  # the board answers initialize and notifications in well under this
STOP_SECONDS = 1.0  # for ending the board's session on the way out
MAX_WAIT_SECONDS = 600  # wait_for_task's own limit
REPEATABLE_TOOLS = ("wait_for_task",)  # only reads: safe to send again when the answer was cut off
INTERNAL_ERROR = -32603
PARSE_ERROR = -32700
NOT_JSON = object()
SHORT = httpx.Timeout(ANSWER_SECONDS, connect=CONNECT_SECONDS)  # initialize, notifications
LONG = httpx.Timeout(None, connect=CONNECT_SECONDS)  # calls: no read timeout

log = logging.getLogger("kanban.mcp")


class StdinLines:
    """Lines from a file descriptor, read with os.read: no buffer other than this one's, so the
    bytes after a line can be handed on (see replay)."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.pending = b""
        self.eof = False

    def readline(self) -> bytes | None:
        """The next line without its newline; None at the end of input."""
        while b"\n" not in self.pending and not self.eof:
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.pending += chunk
            else:
                self.eof = True
        if not self.pending and self.eof:
            return None
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def replay(self, first: bytes) -> io.TextIOWrapper:
        """Text stdin that yields `first`, then what is pending, then the rest of the input."""
        raw = _Replay(first + b"\n" + self.pending, self.fd)
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="replace")


class _Replay(io.RawIOBase):
    def __init__(self, head: bytes, fd: int) -> None:
        self.head = head
        self.fd = fd

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = os.read(self.fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)


def served_by_the_board(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the board's /mcp serves what this environment asks for: the default tools, no run."""
    return (env.get("KANBAN_MCP_TOOLS") or "core").strip() == "core" and not RunContext.from_env(env)


def _error(message_id: Any, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": INTERNAL_ERROR, "message": text}}


def _tool_error(message_id: Any, text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": message_id,
        "result": {"content": [{"type": "text", "text": text}], "isError": True},
    }


def _is_request(message: Any) -> bool:
    return isinstance(message, dict) and "id" in message and "method" in message


def _is_initialize(message: Any) -> bool:
    return _is_request(message) and message["method"] == "initialize"


def _ignore(_message: bytes) -> None:
    pass


class BoardUnreachable(Exception):
    """The first message could not be delivered: serve the tools in-process."""


class BoardRefused(Exception):
    """The board answered with an HTTP error."""


class Bridge:
    """The client's messages to the board's /mcp, the board's answers to `out`."""

    def __init__(self, api_url: str, token: str | None, out: io.BufferedIOBase | None = None) -> None:
        self.base_url = api_url.rstrip("/")
        self.url = self.base_url + "/mcp"
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        # Plain HTTP to a board on this machine needs no CA bundle (loading it is a sixth of the
        # start-up): the context given instead verifies certificates and trusts none.
        verify: ssl.SSLContext | bool = (
            True if self.base_url.lower().startswith("https:") else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        )
        self.client = httpx.AsyncClient(timeout=LONG, verify=verify)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.initialize: dict[str, Any] | None = None  # the client's, to open a new session with
        self._renewing = asyncio.Lock()
        self._renewals = 0
        self._out = out or sys.stdout.buffer

    # To the client

    def emit(self, message: dict[str, Any] | bytes) -> None:
        line = (
            message
            if isinstance(message, bytes)
            else json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        )
        if b"\n" in line:  # one message per line
            line = json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False).encode()
        self._out.write(line + b"\n")
        self._out.flush()

    def unreachable(self, exc: Exception) -> str:
        return (
            f"The board's API at {self.base_url} is unreachable ({type(exc).__name__}). Is `kanban serve` running? "
            "Set KANBAN_API_URL if it runs elsewhere."
        )

    def fail(self, message: Any, text: str) -> None:
        """Answer a request the board did not: a tool error for a tool call (the model reads
        it), a JSON-RPC error otherwise. Notifications and responses get no answer."""
        if not _is_request(message):
            log.info("not delivered: %s", text)
            return
        self.emit(
            _tool_error(message["id"], text) if message["method"] == "tools/call" else _error(message["id"], text)
        )

    # To the board

    def _headers(self, session_id: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if session_id:
            headers["Mcp-Session-Id"] = session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def _post(
        self, message: Any, session_id: str | None, on_message: Any, timeout: httpx.Timeout | None
    ) -> tuple[int, str]:
        """POST one message and pass each message of the answer, as it arrives, to
        `on_message`; (HTTP status, error text). The session an initialize opens is the
        bridge's before its answer is passed on (the client's next message needs it)."""
        opening = _is_initialize(message)
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        headers = self._headers(session_id)
        async with self.client.stream("POST", self.url, content=body, headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                return response.status_code, _error_text(response.status_code, await response.aread())
            if opening and response.headers.get("mcp-session-id"):
                self.session_id = response.headers["mcp-session-id"]

            def receive(data: bytes) -> None:
                if opening:
                    result = json.loads(data).get("result")
                    if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                        self.protocol_version = result["protocolVersion"]
                on_message(data)

            if "text/event-stream" in response.headers.get("content-type", ""):
                async for data in _events(response):
                    receive(data)
            elif content := await response.aread():
                parsed = json.loads(content)
                for item in parsed if isinstance(parsed, list) else [parsed]:
                    receive(json.dumps(item).encode())
            return response.status_code, ""

    async def renew(self, stale: str | None) -> None:
        """A new session for one the board no longer knows (it restarted), opened with the
        client's own initialize, once for all the requests that found out."""
        async with self._renewing:
            if self.session_id != stale or self.initialize is None:
                return
            self._renewals += 1
            status, text = await self._post(
                {**self.initialize, "id": f"kanban-mcp-renew-{self._renewals}"}, None, _ignore, SHORT
            )
            if status < 400:
                status, text = await self._post(
                    {"jsonrpc": "2.0", "method": "notifications/initialized"}, self.session_id, _ignore, SHORT
                )
            if status >= 400:
                raise BoardRefused(text)
            log.info("the board did not know the session any more (a restart?): opened a new one")

    def parse(self, line: bytes) -> Any:
        """The message on a line from the client; NOT_JSON (answered with a parse error) if none."""
        try:
            return json.loads(line)
        except ValueError:
            self.emit(
                {"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": "Parse error: not JSON"}}
            )
            return NOT_JSON

    async def handle(self, message: Any, *, first: bool = False) -> None:
        """Deliver one message from the client and write what the board answers. A session the
        board no longer knows is renewed and the message sent once more; a wait_for_task whose
        answer was cut off is sent again once the board is back. BoardUnreachable when the
        `first` message finds no board."""
        request = _is_request(message)
        opening = _is_initialize(message)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "to the board: %s", message.get("method", "a response") if isinstance(message, dict) else "a batch"
            )
        if opening:
            self.initialize = message
        # No read timeout for calls (wait_for_task answers after minutes), but for the first
        # message: a board that does not answer it gets the in-process server instead.
        timeout = SHORT if first or opening or not request else LONG
        deadline = _wait_deadline(message)
        answered = False
        renewed = False
        cut_off = False  # the board had the call and went away before answering it

        def on_message(data: bytes) -> None:
            nonlocal answered
            if request and json.loads(data).get("id") == message["id"]:
                answered = True
            self.emit(data)

        while True:
            session = None if opening else self.session_id
            try:
                status, text = await self._post(message, session, on_message, timeout)
            except httpx.TransportError as exc:
                if first and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout)):
                    raise BoardUnreachable(self.unreachable(exc)) from None
                cut_off = cut_off or not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if deadline is not None and cut_off and not answered and await self._board_back(session, deadline):
                    message = _with_timeout(message, deadline)
                    continue
                self.fail(message, self.unreachable(exc))
                return
            if status == 404 and session is not None and not renewed:
                renewed = True
                try:
                    await self.renew(session)
                except httpx.TransportError as exc:
                    self.fail(message, self.unreachable(exc))
                    return
                except BoardRefused as exc:
                    self.fail(message, str(exc))
                    return
                continue
            if status >= 400:
                self.fail(message, text)
            elif request and not answered:  # the board went away mid-call
                cut_off = True
                if deadline is not None and await self._board_back(session, deadline):
                    message = _with_timeout(message, deadline)
                    continue
                self.fail(
                    message, f"The board's API at {self.base_url} ended the call without an answer. Did it restart?"
                )
            return

    async def _board_back(self, stale: str | None, deadline: float) -> bool:
        """Wait until the board takes a new session, or `deadline`."""
        pause = 0.1
        while time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 2.0)
            try:
                await self.renew(stale)
                return True
            except (httpx.TransportError, BoardRefused):
                continue
        return False

    async def close(self) -> None:
        """End the board's session (it would otherwise idle until it expires)."""
        if self.session_id:
            try:
                await self.client.delete(self.url, headers=self._headers(self.session_id), timeout=STOP_SECONDS)
            except httpx.HTTPError as exc:
                log.debug("could not end the board's session: %r", exc)
        await self.client.aclose()


def _error_text(status: int, body: bytes) -> str:
    detail = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            detail = parsed.get("detail") or (parsed.get("error") or {}).get("message")
    except ValueError:
        detail = body.decode(errors="replace").strip()[:200] or None
    return f"The board answered {status} on /mcp: {detail}" if detail else f"The board answered {status} on /mcp"


async def _events(response: httpx.Response):
    """The data of each server-sent event."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data).encode()
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data).encode()


def _wait_deadline(message: Any) -> float | None:
    """When a wait_for_task call may be repeated until; None for any other message."""
    if not (isinstance(message, dict) and message.get("method") == "tools/call"):
        return None
    params = message.get("params") or {}
    if params.get("name") not in REPEATABLE_TOOLS:
        return None
    timeout = (params.get("arguments") or {}).get("timeout", 300)
    seconds = timeout if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else 300
    return time.monotonic() + max(1, min(seconds, MAX_WAIT_SECONDS))


def _with_timeout(message: dict[str, Any], deadline: float) -> dict[str, Any]:
    """The same call with what is left of its timeout."""
    params = message["params"]
    arguments = {**(params.get("arguments") or {}), "timeout": max(1, math.ceil(deadline - time.monotonic()))}
    return {**message, "params": {**params, "arguments": arguments}}


async def serve(first: bytes, lines: StdinLines, bridge: Bridge) -> int:
    """Pass messages through until stdin ends (0) or a signal comes (130 for SIGINT, else 0).
    BoardUnreachable when the first message cannot be delivered."""
    try:
        if (message := bridge.parse(first)) is not NOT_JSON:
            await bridge.handle(message, first=True)
    except BoardUnreachable:
        await bridge.client.aclose()
        raise
    loop = asyncio.get_running_loop()
    incoming: asyncio.Queue[bytes | int | None] = asyncio.Queue()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, incoming.put_nowait, 130 if signum == signal.SIGINT else 0)

    def read() -> None:
        while True:
            line = lines.readline()
            try:
                loop.call_soon_threadsafe(incoming.put_nowait, line)
            except RuntimeError:  # the loop is closed: the bridge is done
                return
            if line is None:
                return

    # A daemon thread: one blocked on a read must not keep the process alive.
    threading.Thread(target=read, name="stdin", daemon=True).start()
    calls: set[asyncio.Task[None]] = set()
    try:
        while True:
            line = await incoming.get()
            if line is None:
                return 0
            if isinstance(line, int):
                return line
            if not line.strip() or (message := bridge.parse(line)) is NOT_JSON:
                continue
            if _is_request(message):
                # Requests concurrently: a call may take minutes while the client sends others.
                call = asyncio.create_task(bridge.handle(message))
                calls.add(call)
                call.add_done_callback(calls.discard)
            else:  # notifications and responses in order, before what follows them
                await bridge.handle(message)
    finally:
        for call in calls:
            call.cancel()
        await bridge.close()


def _in_process(stdin: io.TextIOWrapper | None = None) -> None:
    from mcp_servers.kanban_server import main as serve_in_process

    if stdin is not None:
        sys.stdin = stdin
    serve_in_process()


def main() -> None:
    # Until the bridge runs (it ends the board's session on the way out) there is nothing to end.
    signal.signal(signal.SIGINT, exit_at_once)
    signal.signal(signal.SIGTERM, exit_at_once)
    log_to_stderr(os.environ.get("KANBAN_LOG_LEVEL"), ("kanban.mcp", "httpx"))
    if not served_by_the_board():
        log.debug("KANBAN_MCP_TOOLS or a run in the environment: serving the tools in-process")
        _in_process()
        return
    lines = StdinLines()
    first = lines.readline()
    while first is not None and not first.strip():
        first = lines.readline()
    if first is None:
        return
    bridge = Bridge(os.environ.get("KANBAN_API_URL") or DEFAULT_API_URL, os.environ.get("KANBAN_API_TOKEN") or None)
    try:
        code = asyncio.run(serve(first, lines, bridge))
    except BoardUnreachable as exc:
        log.info("%s Serving the tools in-process.", exc)
        _in_process(lines.replay(first))
        return
    sys.stdout.flush()
    os._exit(code)  # the stdin reader may still be blocked on a read: nothing is left to do


if __name__ == "__main__":
    main()

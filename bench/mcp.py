"""Start-up of `kanban mcp`: Claude Code gives stdio servers about two seconds before its first
turn, and a server that has not listed its tools by then is missing from that turn.

Measured from spawning `kanban mcp` until it has answered `initialize` and then `tools/list`
over stdio, with the CPU time the server process used up to that moment (less sensitive than
wall-clock time to what else the machine is doing), and the load average while it ran. Twice:
with a board running (`kanban mcp` is a bridge to its /mcp; the target is for this case) and
with none (it serves the tools in-process, importing the MCP SDK).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, Row, free_port, kanban_server

STARTS = 15
TARGET_SECONDS = 0.8
TICKS = os.sysconf("SC_CLK_TCK")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def start_once(argv: list[str], api_url: str) -> tuple[float, float, float]:
    """Seconds until `initialize` and until `tools/list` are answered; CPU seconds used by then."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANBAN_", "FASTMCP_"))}
    env["KANBAN_API_URL"] = api_url
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        initialized = time.perf_counter() - started
        assert answer.get("id") == 1 and "result" in answer, answer
        for message in (
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ):
            process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        listed = time.perf_counter() - started
        assert answer.get("id") == 2 and answer["result"]["tools"], answer
        cpu = _cpu_seconds(process.pid)
        process.stdin.close()
        process.wait(10)
        return initialized, listed, cpu
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def starts(api_url: str, board: str, count: int) -> list[Row]:
    argv = [str(Path(sys.executable).with_name("kanban")), "mcp"]
    start_once(argv, api_url)  # warm the file cache
    samples = [start_once(argv, api_url) for _ in range(count)]
    load = os.getloadavg()[0]
    initialize = [s[0] for s in samples]
    tools = [s[1] for s in samples]
    cpu = [s[2] for s in samples]
    median = statistics.median(tools)
    label = f"kanban mcp, {board}, {len(samples)} starts"
    target = (f"< {TARGET_SECONDS} s", median < TARGET_SECONDS) if board == "board running" else ("", None)
    return [
        Row(
            "mcp",
            f"{label}: until initialize answered, median (min)",
            f"{statistics.median(initialize):.2f} s ({min(initialize):.2f} s)",
        ),
        Row("mcp", f"{label}: until tools/list answered, median", f"{median:.2f} s", *target),
        Row("mcp", f"{label}: until tools/list answered, max", f"{max(tools):.2f} s"),
        Row(
            "mcp",
            f"{label}: CPU time (user+sys) of the server by then, median (max)",
            f"{statistics.median(cpu):.2f} s ({max(cpu):.2f} s)",
        ),
        Row("mcp", f"{label}: load average (1 min) at the end", f"{load:.2f}"),
    ]


def run(quick: bool = False) -> list[Row]:
    count = 5 if quick else STARTS
    with kanban_server() as board:
        rows = starts(board.url, "board running", count)
    return rows + starts(f"http://127.0.0.1:{free_port()}", "no board", count)

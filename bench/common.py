"""Helpers the benchmarks share: servers as subprocesses, percentiles, process memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    """A server process on a free port, stopped on exit."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    health_path: str = "/api/health"
    # stderr goes to a file: a pipe nobody reads fills up and then blocks the server's logging.
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="kanban-bench-", suffix=".log")[1]))
    keep_log: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        env.update(self.env)
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        with self.log_path.open("wb") as log:
            # A session of its own, as a service manager starts it: on Linux each session is a
            # scheduling group, and the agents (sessions of their own at a lower priority) are
            # weighed against each server, not against all of the benchmark's processes at once.
            self.process = subprocess.Popen(
                argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + self.health_path, timeout=1).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 60 s")
            time.sleep(0.1)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if exc[0] is None and not self.keep_log:  # kept for a look when something went wrong
            self.log_path.unlink(missing_ok=True)


def kanban_server(data_dir: str | None = None, **env: str) -> Server:
    data_dir = data_dir or tempfile.mkdtemp(prefix="kanban-bench-")
    return Server(
        [sys.executable, "-m", "backend.cli", "serve", "--port", "{port}", "--data-dir", data_dir],
        env={"KANBAN_LOG_LEVEL": "warning", **env},
    )


@dataclass
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("met" if self.ok else "MISSED")

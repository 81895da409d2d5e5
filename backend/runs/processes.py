"""The agents' processes and their files: process groups, kill, pid files, the launcher.

The CLI starts through `launcher.py`, which puts it in a process group of its own and writes
the group id to the run's pid file, so a cancel (or a restart after a crash) can end the
agent *and* everything it started (shell commands, MCP servers). A run's files live in
`<data dir>/agents/`: `run-<id>-<generation>.pgid` and `run-<id>-<generation>.mcp/` (the plugins' MCP config, secrets
included: 0700 folder, 0600 file, removed when the run ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

LAUNCHER_SOURCE = Path(__file__).with_name("launcher.py")
#: Set by the orchestrator for the CLI; every process the agent starts inherits it.
PID_FILE_VARIABLE = "KANBAN_AGENT_PID_FILE"


class RunControl:
    """Lets the orchestrator interrupt a running agent and kill its process group."""

    def __init__(self) -> None:
        self._interrupt: Callable[[], Awaitable[None]] | None = None
        self.interrupt_requested = False
        self.pid_file: str | None = None

    def attach(self, interrupt: Callable[[], Awaitable[None]] | None, pid_file: str | None = None) -> None:
        """The executor's side: how to interrupt the agent (None once it has ended), where its group id is."""
        self._interrupt = interrupt
        if pid_file is not None:
            self.pid_file = pid_file

    async def interrupt(self) -> None:
        self.interrupt_requested = True
        if self._interrupt is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._interrupt(), 2)

    def kill(self) -> None:
        if self.pid_file:
            kill_process_group(self.pid_file)


class AgentFiles:
    """The files of the agents of the workers that share a data dir, one pair per run and
    lease generation, in a private folder. The generation keeps a worker that lost a run from
    touching the files of the worker that took it over (its pid file, its MCP config)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def pid_file(self, run_id: int, generation: int) -> str:
        return str(self.folder / f"run-{run_id}-{generation}.pgid")

    def pid_files_of(self, run_id: int) -> list[str]:
        """Every pid file of the run, whichever generation wrote it (a takeover kills them all)."""
        return sorted(str(path) for path in self.folder.glob(f"run-{run_id}-*.pgid"))

    def mcp_config_dir(self, run_id: int, generation: int) -> str:
        return str(self.folder / f"run-{run_id}-{generation}.mcp")

    def leftover_mcp_configs(self) -> list[Path]:
        return sorted(self.folder.glob("run-*.mcp"))


def run_of_file(path: Path) -> int | None:
    """The run a file of `AgentFiles` belongs to (None: not one of them)."""
    name = path.name.removeprefix("run-").split(".")[0]
    first = name.split("-")[0]
    return int(first) if first.isdigit() else None


def _is_agent_group(pgid: int, cli_path: str | None) -> bool:
    """The group's leader still runs the agent CLI (process ids get reused after a crash)."""
    if cli_path is None or not Path("/proc/self").exists():
        return True  # nothing to compare with: trust the recorded id
    try:
        command = Path(f"/proc/{pgid}/cmdline").read_bytes()
    except OSError:
        return True  # the leader exited; its group may live on, and only its members carry the id
    if not command:
        return True  # the leader exited and is not reaped yet: its id cannot have been reused
    return os.path.basename(cli_path).encode() in command


def kill_process_group(
    pid_file: str, sig: int = signal.SIGKILL, *, cli_path: str | None = None, forget: bool = False
) -> bool:
    """Signal the agent's whole process group; True when there was one."""
    path = Path(pid_file)
    try:
        pgid = int(path.read_text().strip())
    except (OSError, ValueError):
        return False
    if forget:
        path.unlink(missing_ok=True)
    if pgid <= 1 or pgid == os.getpgrp() or not _is_agent_group(pgid, cli_path):
        return False
    try:
        os.killpg(pgid, sig)
        killed = True
    except (ProcessLookupError, PermissionError):
        killed = False
    return _kill_strays(pid_file, sig) or killed


def _kill_strays(pid_file: str, sig: int) -> bool:
    """Signal what the agent started in a group or session of its own (a tool that detaches
    its commands, `setsid`): every process of ours that inherited the run's pid-file variable.
    True when there was one. Linux only (reads /proc); elsewhere the group kill is all."""
    marker = f"{PID_FILE_VARIABLE}={pid_file}".encode()
    me = os.getpid()
    found = False
    for entry in _proc_entries():
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or another user's
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                found = True
    return found


def _proc_entries() -> list[Path]:
    try:
        return [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def write_launcher(path: Path) -> str:
    """`launcher.py` as an executable file run by this interpreter; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # -IS: isolated, no `site`: the launcher needs only os and sys, and reading site-packages'
    # .pth files would make every agent run wait for it (~50 ms of start-up on a busy machine).
    path.write_text(f"#!{sys.executable} -IS\n" + LAUNCHER_SOURCE.read_text())
    path.chmod(0o755)
    return str(path)


def mcp_config_file(folder: str) -> str:
    return str(Path(folder) / "mcp.json")


def write_mcp_config(folder: str, servers: dict[str, dict[str, Any]]) -> None:
    """The servers' config (secrets included) in a file only this user can read: `folder` is
    (re)made 0700, the file is created 0600 before anything is written to it."""
    path = Path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.rmtree(path)  # left by a crash, or made by mkdtemp: ours, with our modes
    path.mkdir(mode=0o700)
    path.chmod(0o700)  # mkdir's mode is cut by the umask, never widened by it; be exact
    descriptor = os.open(mcp_config_file(folder), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"mcpServers": servers}, handle)


def remove_mcp_config(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)

"""Workflow checks: a command run in a task's worktree, with a time limit.

A check step runs its command once; an agent step with `until` runs its check after each
attempt. The command runs through the shell (it is the template's, like a Makefile target),
in a process group of its own whose id is in the run's pid file, so a cancel, a time-out and
the recovery after a restart stop everything it started. Its output (stdout and stderr
together) is kept, up to the last `OUTPUT_CHARS` characters, in the run's log; so the command
gets the server's environment without what is the server's own (`check_environment`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .processes import PID_FILE_VARIABLE, RunControl, kill_process_group

OUTPUT_CHARS = 20_000
_READ_CHUNK = 65_536
# Secrets a check has no use for: the server's settings (the API token, the database URL with
# its password, registry keys) and the agents' Anthropic credentials.
SERVER_VARIABLE_PREFIX = "KANBAN_"
AGENT_SECRET_VARIABLES = frozenset({"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"})


def check_environment(server_environment: Mapping[str, str]) -> dict[str, str]:
    """What a check command inherits: everything a build or test needs (PATH, HOME, proxies,
    tool settings), none of the server's own variables or the agents' credentials."""
    return {
        name: value
        for name, value in server_environment.items()
        if not name.startswith(SERVER_VARIABLE_PREFIX) and name not in AGENT_SECRET_VARIABLES
    }


@dataclass(frozen=True)
class CheckOutcome:
    command: str
    exit_code: int | None
    output: str
    timed_out: bool
    duration_ms: int
    truncated: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """One line: how the check ended."""
        if self.timed_out:
            return f"`{self.command}` did not finish within the time limit"
        if self.passed:
            return f"`{self.command}` passed"
        return f"`{self.command}` failed (exit code {self.exit_code})"


def _tail(buffer: bytearray) -> tuple[str, bool]:
    text = buffer.decode("utf-8", errors="replace")
    if len(text) <= OUTPUT_CHARS:
        return text, False
    return "…" + text[-OUTPUT_CHARS:], True


async def run_check(
    command: str,
    cwd: str,
    *,
    timeout_seconds: float,
    control: RunControl,
    pid_file: str,
    env: dict[str, str] | None = None,
) -> CheckOutcome:
    started = time.monotonic()
    environment = {**check_environment(os.environ), **(env or {}), PID_FILE_VARIABLE: pid_file}
    process = await asyncio.create_subprocess_shell(
        command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env=environment,
    )
    Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
    Path(pid_file).write_text(str(process.pid))

    async def interrupt() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)

    control.attach(interrupt, pid_file)
    kept = bytearray()
    limit = OUTPUT_CHARS * 4  # bytes: enough for the last OUTPUT_CHARS characters of any UTF-8

    async def read_all() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(_READ_CHUNK):
            kept.extend(chunk)
            if len(kept) > limit:
                del kept[: len(kept) - limit]
        await process.wait()

    timed_out = False
    try:
        await asyncio.wait_for(read_all(), timeout_seconds)
    except TimeoutError:
        timed_out = True
    finally:
        if process.returncode is None or timed_out:
            kill_process_group(pid_file)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
        control.attach(None)
        Path(pid_file).unlink(missing_ok=True)
    output, truncated = _tail(kept)
    return CheckOutcome(
        command=command,
        exit_code=None if timed_out else process.returncode,
        output=output,
        timed_out=timed_out,
        duration_ms=int((time.monotonic() - started) * 1000),
        truncated=truncated,
    )

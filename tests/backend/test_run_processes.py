"""The agents' processes: the launcher, process groups, the SDK's errors as a run's message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from claude_agent_sdk import ClaudeSDKError, CLIJSONDecodeError, CLINotFoundError, ProcessError, ResultError

from backend.runs.agent import _describe_failure
from backend.runs.processes import AgentFiles, kill_process_group, write_launcher


def test_the_launcher_starts_the_cli_in_a_group_of_its_own_at_a_lower_priority(tmp_path):
    launcher = write_launcher(tmp_path / "bin" / "claude-launcher")
    assert os.access(launcher, os.X_OK) and Path(launcher).read_text().startswith(f"#!{sys.executable} -IS\n")
    cli = tmp_path / "claude"
    # The CLI stand-in reports its process id, group, session and nice value, and its arguments.
    cli.write_text('#!/bin/sh\necho "$$ $(ps -o pgid= -p $$) $(ps -o sid= -p $$) $(ps -o ni= -p $$) $*"\n')
    cli.chmod(0o755)
    pid_file = tmp_path / "run-1.pgid"
    env = {**os.environ, "KANBAN_AGENT_CLI": str(cli), "KANBAN_AGENT_NICE": "3", "KANBAN_AGENT_PID_FILE": str(pid_file)}
    output = subprocess.run([launcher, "--print", "a b"], env=env, capture_output=True, text=True, check=True).stdout
    pid, pgid, sid, nice, *args = output.split()
    assert pid == pgid == sid, "not a session and process group of its own"
    assert pid_file.read_text() == pgid
    assert int(nice) == os.getpriority(os.PRIO_PROCESS, 0) + 3
    assert args == ["--print", "a", "b"]


def test_the_launcher_runs_as_a_module_too(tmp_path):
    env = {**os.environ, "KANBAN_AGENT_CLI": "/bin/echo", "KANBAN_AGENT_NICE": ""}
    result = subprocess.run(
        [sys.executable, "-m", "backend.runs.launcher", "hello"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "hello\n"


def test_a_killed_group_takes_everything_it_started(tmp_path):
    files = AgentFiles(tmp_path)
    marker = f"sleep 4{os.getpid() % 1000:03d}"
    leader = subprocess.Popen(["sh", "-c", f"{marker} & {marker}"], start_new_session=True)
    _wait_for_exec(leader.pid, b"sh")
    Path(files.pid_file(7, 1)).write_text(str(leader.pid))
    try:
        assert kill_process_group(files.pid_file(7, 1), cli_path="/bin/sh", forget=True)
        assert leader.wait(5) == -signal.SIGKILL
        time.sleep(0.2)
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1, "the group survived"
        assert not Path(files.pid_file(7, 1)).exists()  # forgotten
        assert not kill_process_group(files.pid_file(7, 1))  # nothing left to kill
    finally:
        if leader.poll() is None:
            leader.kill()
        subprocess.run(["pkill", "-f", marker])


def _wait_for_exec(pid: int, program: bytes) -> None:
    """Until the forked child runs `program` (before, it shows the parent's command line)."""
    deadline = time.monotonic() + 5
    while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(program) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_reused_process_id_is_not_killed(tmp_path):
    """After a crash the recorded id may belong to another program by now: leave it alone."""
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    _wait_for_exec(other.pid, b"sleep")
    pid_file = tmp_path / "run-1.pgid"
    pid_file.write_text(str(other.pid))
    try:
        assert not kill_process_group(str(pid_file), cli_path="/opt/agent/claude")
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_group_is_killed_while_its_exited_leader_is_not_reaped_yet(tmp_path):
    """A CLI that exited (a zombie until the SDK reaps it) must not shield what it left running."""
    marker = f"sleep 3{os.getpid() % 1000:03d}"
    leader = subprocess.Popen(["sh", "-c", f"{marker} & exit 0"], start_new_session=True)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{leader.pid}/stat").read_text().split()[2] != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0
    pid_file = tmp_path / "agent.pgid"
    pid_file.write_text(str(leader.pid))
    try:
        assert kill_process_group(str(pid_file), cli_path="/opt/agent/claude", forget=True)
        time.sleep(0.2)
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1, "the group survived"
    finally:
        leader.wait()
        subprocess.run(["pkill", "-f", marker])


def test_sdk_errors_become_messages_by_their_class():
    tail = deque(["boom"])
    result_error = ResultError(
        "failed", data={"subtype": "error_max_turns", "errors": ["Reached maximum number of turns (1)"]}, exit_code=1
    )
    # ResultError is a ProcessError: the more specific message must win.
    assert _describe_failure(result_error, tail).startswith(
        "The agent stopped with an error: Reached maximum number of turns (1)"
    )
    assert _describe_failure(ProcessError("exited", exit_code=2), tail).startswith("The Claude CLI exited with code 2.")
    assert "KANBAN_CLAUDE_CLI" in _describe_failure(CLINotFoundError("Claude Code not found"), tail)
    assert "not valid JSON" in _describe_failure(CLIJSONDecodeError("{oops", ValueError("bad")), tail)
    assert _describe_failure(ClaudeSDKError("odd"), tail).startswith("The agent failed (ClaudeSDKError): odd")
    assert _describe_failure(ProcessError("exited", exit_code=2), tail).endswith("Last output of the Claude CLI:\nboom")


def test_what_the_agent_started_in_a_session_of_its_own_is_killed_too(tmp_path):
    """A tool that detaches its commands (`setsid`) takes them out of the group, not out of the run."""
    pid_file = tmp_path / "run-1.pgid"
    marker = f"sleep 5{os.getpid() % 1000:03d}"
    env = {**os.environ, "KANBAN_AGENT_PID_FILE": str(pid_file)}
    leader = subprocess.Popen(["sh", "-c", f"setsid {marker} & wait"], start_new_session=True, env=env)
    _wait_for_exec(leader.pid, b"sh")
    pid_file.write_text(str(leader.pid))
    deadline = time.monotonic() + 5
    strays: list[int] = []
    while not strays and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-x", "-f", marker], capture_output=True, text=True).stdout.split()
        strays = [int(pid) for pid in found]
        time.sleep(0.02)
    (stray,) = strays
    assert os.getpgid(stray) != leader.pid, "setsid should have left the group"
    try:
        assert kill_process_group(str(pid_file), cli_path="/bin/sh", forget=True)
        time.sleep(0.2)
        assert subprocess.run(["pgrep", "-x", "-f", marker], capture_output=True).returncode == 1, (
            "the detached one survived"
        )
    finally:
        leader.kill()
        leader.wait()
        subprocess.run(["pkill", "-f", marker])


def test_a_process_of_another_run_is_left_alone(tmp_path):
    other = subprocess.Popen(
        ["sleep", "30"],
        start_new_session=True,
        env={**os.environ, "KANBAN_AGENT_PID_FILE": str(tmp_path / "run-2.pgid")},
    )
    _wait_for_exec(other.pid, b"sleep")
    (tmp_path / "run-1.pgid").write_text("999999999")  # this run's group is long gone
    try:
        assert not kill_process_group(str(tmp_path / "run-1.pgid"))
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()

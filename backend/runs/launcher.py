"""Starts the agent CLI in a process group of its own, at the agents' CPU priority.

`processes.write_launcher` copies this file into the data dir, behind a `#!` line naming
this interpreter, and the SDK starts that copy as the CLI: it becomes a new session (so a
cancel, or a restart after a crash, can signal the CLI and everything it started), lowers
its priority, records its process group id and `exec`s the CLI with the SDK's arguments.
It also runs as `python -m backend.runs.launcher`. Standard library only, and little of
it: every agent run pays for its start-up.

Environment: KANBAN_AGENT_CLI (the CLI to run), KANBAN_AGENT_NICE (added to the nice
value), KANBAN_AGENT_PID_FILE (where the group id goes; optional).
"""

import os
import sys


def main() -> None:
    os.setsid()
    nice = int(os.environ.get("KANBAN_AGENT_NICE") or 0)
    os.nice(nice)
    # Linux puts each new session in a scheduling group of its own, weighted apart from
    # the nice values inside it: lower the group too, or ten agents get ten server shares.
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:
        pass
    pid_file = os.environ.get("KANBAN_AGENT_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as handle:
            handle.write(str(os.getpgrp()))
    cli = os.environ["KANBAN_AGENT_CLI"]
    os.execv(cli, [cli, *sys.argv[1:]])


if __name__ == "__main__":
    main()

"""What `kanban mcp` reads from its environment.

Standard library only: the stdio bridge reads this before it knows whether it needs the MCP
SDK at all (the board's own server answers when it can; see stdio_bridge.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000"


@dataclass
class RunContext:
    project_id: int | None = None
    task_id: int | None = None
    run_id: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] = os.environ) -> RunContext:
        def number(name: str) -> int | None:
            value = env.get(name, "")
            return int(value) if value.isdigit() else None

        return cls(number("KANBAN_PROJECT_ID"), number("KANBAN_TASK_ID"), number("KANBAN_RUN_ID"))

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.project_id, self.task_id, self.run_id))


def log_to_stderr(level_name: str | None, loggers: tuple[str, ...], *filters: logging.Filter) -> None:
    """Plain records of `loggers` on stderr (Claude Code shows a stdio server's stderr as
    errors): warnings and worse by default; `KANBAN_LOG_LEVEL=debug` (or info) for more."""
    level = getattr(logging, (level_name or "warning").strip().upper(), None)
    if not isinstance(level, int):
        raise SystemExit(f"KANBAN_LOG_LEVEL: expected debug, info, warning or error, got {level_name!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kanban mcp: %(levelname)s %(name)s: %(message)s"))
    for log_filter in filters:
        handler.addFilter(log_filter)
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def exit_at_once(signum: int, _frame: Any) -> None:
    """SIGINT and SIGTERM: nothing to save (every change went to the board already); exit
    without the traceback an interrupt would print from inside an event loop or a read."""
    os._exit(130 if signum == signal.SIGINT else 0)

"""The `kanban` command: serve the board, migrate the database, show its status, work with workflow templates."""

from __future__ import annotations

import argparse
import gc
import logging
import socket
import sys
from typing import TYPE_CHECKING, Any

from . import __version__, data_dir

if TYPE_CHECKING:
    from .config import Settings

# `kanban mcp` imports only what its bridge to the board needs (the standard library and httpx):
# Claude Code waits about two seconds for a stdio server's tools before its first turn.
# Settings (pydantic-settings and the registry clients) and the app are imported by the
# commands that use them.


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="Data folder (env KANBAN_DATA_DIR; default ~/.local/share/kanban-orchestrator)"
    )
    parser.add_argument("--database-url", help="Database URL (env KANBAN_DATABASE_URL; default SQLite in the data dir)")


def _settings(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    from .config import Settings

    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("data_dir", "database_url", "host", "port", "worker_id")
        if getattr(args, name, None) is not None
    }
    try:
        settings = Settings(**overrides)
        settings.resolved_database_url  # noqa: B018 - validates the URL
    except (ValidationError, ValueError) as exc:
        raise SystemExit(f"kanban: invalid configuration: {exc}") from None
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanban", description="Kanban Orchestrator: a board that runs AI agents.")
    parser.add_argument("--version", action="version", version=f"kanban-orchestrator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="Apply migrations and serve the board and API")
    serve.add_argument("--host", help="Interface to bind (env KANBAN_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="Port (env KANBAN_PORT; default 8000)")
    _add_database_options(serve)

    worker = commands.add_parser(
        "worker",
        help="Run agents against a PostgreSQL database (nothing of the API): takes queued runs, leases them, "
        "takes over the runs of workers that died",
    )
    worker.add_argument("--id", dest="worker_id", help="Worker id (env KANBAN_WORKER_ID; default <host>:<pid>)")
    _add_database_options(worker)

    commands.add_parser(
        "mcp",
        help="The board's MCP server on stdio (for Claude Code); talks to KANBAN_API_URL",
    )

    from .workflows.cli import add_parser as add_workflow_parser

    add_workflow_parser(commands)

    status = commands.add_parser(
        "status",
        help="What the database says: schema, runs by state, the queue, running runs, who runs agents (read only)",
    )
    status.add_argument("--json", action="store_true", help="Print JSON instead of text")
    _add_database_options(status)

    db = commands.add_parser("db", help="Database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="Apply all migrations")
    _add_database_options(upgrade)
    return parser


def _bind(settings: Settings) -> socket.socket:
    """The listening socket, bound before anything else happens (uvicorn serves on it)."""
    host = settings.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, settings.port), family=family, backlog=2048)
    except OSError as exc:
        holder = data_dir.in_use(settings.data_dir) if settings.database_kind == "sqlite" else None
        if holder is not None:
            raise SystemExit(f"kanban: {holder}") from None
        raise SystemExit(f"kanban: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None


def serve(settings: Settings) -> None:
    """Start-up order: port, data-dir lock, modes, migrations, then the app (whose start-up
    recovers the runs a previous server left): a second server on the same data dir stops
    before it could touch the first one's agents."""
    import uvicorn

    from .main import create_app
    from .migrations_runner import upgrade

    if settings.binds_beyond_loopback and settings.api_token is None:
        raise SystemExit(
            f"kanban: refusing to serve on {settings.host} without an API token: anyone who can reach "
            "this machine could run agents in your repositories. Set KANBAN_API_TOKEN (e.g. "
            "`export KANBAN_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`) "
            "or bind 127.0.0.1."
        )
    listener = _bind(settings)
    if settings.database_kind == "sqlite":
        try:
            data_dir.lock(settings.data_dir)
        except data_dir.DataDirInUse as exc:
            listener.close()
            raise SystemExit(f"kanban: {exc}") from None
    data_dir.secure(settings.data_dir)
    upgrade(settings)
    display_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logging.getLogger("backend").info("Kanban Orchestrator on http://%s:%s", display_host, settings.port)
    app = create_app(settings)
    # Everything imported so far lives as long as the process. Frozen, the collector no
    # longer walks it: a full collection took ~240 ms here (a latency spike on whatever
    # request triggered it) and takes ~10 ms after.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(),
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[listener])


def work(settings: Settings) -> None:
    """`kanban worker`: PostgreSQL only (on SQLite one process, `kanban serve`, runs everything)."""
    import asyncio

    from .worker import SchemaNotCurrent
    from .worker import work as run_worker

    if settings.database_kind != "postgresql":
        raise SystemExit(
            "kanban: `kanban worker` needs a PostgreSQL database (KANBAN_DATABASE_URL): on SQLite one process "
            "serves the board and runs the agents, `kanban serve`."
        )
    if not settings.run_agents:
        raise SystemExit("kanban: KANBAN_RUN_AGENTS=false: a worker that runs no agents has nothing to do.")
    data_dir.secure(settings.data_dir)
    try:
        asyncio.run(run_worker(settings))
    except SchemaNotCurrent as exc:
        raise SystemExit(f"kanban: {exc}") from None


def _uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging, with `?token=` values masked in the access log."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_token"] = {"()": "backend.security.RedactTokenFilter"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_token"]
    return config


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "mcp":
        from mcp_servers.stdio_bridge import main as mcp_main

        mcp_main()
        return
    if args.command == "workflow":
        from .workflows.cli import run as workflow_command

        raise SystemExit(workflow_command(args))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = _settings(args)
    if args.command == "serve":
        serve(settings)
    elif args.command == "worker":
        work(settings)
    elif args.command == "status":
        from .status import main as status

        raise SystemExit(status(settings, as_json=args.json))
    elif args.command == "db" and args.db_command == "upgrade":
        from .migrations_runner import upgrade

        if settings.database_kind == "sqlite":
            try:  # a running server would find its tables changed under it
                data_dir.lock(settings.data_dir)
            except data_dir.DataDirInUse as exc:
                raise SystemExit(f"kanban: {exc}: stop it before upgrading its database.") from None
        upgrade(settings)
        print(f"Database at head ({settings.database_kind}).")


if __name__ == "__main__":
    main(sys.argv[1:])

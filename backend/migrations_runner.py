"""Alembic, driven from code: `kanban db upgrade`, `kanban serve` and the tests use this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from .config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    config.attributes["settings"] = settings
    return config


def _outside_event_loop(function: Callable[[], None]) -> None:
    """Alembic's env.py starts its own event loop: from inside one, run it on a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        function()
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(function).result()


def upgrade(settings: Settings, revision: str = "head") -> None:
    _outside_event_loop(lambda: command.upgrade(alembic_config(settings), revision))


def downgrade(settings: Settings, revision: str = "base") -> None:
    _outside_event_loop(lambda: command.downgrade(alembic_config(settings), revision))


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()

"""Alembic environment: async engine from the app's settings, batch mode for SQLite."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.db import create_engine
from backend.models import Base
from backend.models.knowledge import is_keyword_index

config = context.config
target_metadata = Base.metadata


def _settings() -> Settings:
    return config.attributes.get("settings") or Settings()


def _run(connection: Connection) -> None:
    _migrate(connection)
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:  # rolls the migration back
            raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


def _without_cascades(engine: AsyncEngine) -> None:
    """SQLite: batch mode changes a table by copying it into a new one and dropping the old, and
    with foreign keys enforced that drop deletes (ON DELETE CASCADE) or orphans every row that
    refers to it: a migration of `projects` would empty `tasks`. So the migration's connections
    have them off (the pragma takes effect only outside a transaction: here, on connect), and
    `_run` checks them before the migration commits."""

    @event.listens_for(engine.sync_engine, "connect")
    def _foreign_keys_off(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=is_keyword_index,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_settings())
    if engine.dialect.name == "sqlite":
        _without_cascades(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # called with an open connection (tests)
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    raise SystemExit("Offline SQL generation is not supported; run `kanban db upgrade`.")
run_migrations_online()

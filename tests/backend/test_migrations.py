"""Alembic alone makes the schema: up, down, up again, and the models agree with it."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from backend.db import create_engine
from backend.migrations_runner import downgrade, head_revision, upgrade
from backend.models import Base
from backend.models.knowledge import FTS_TABLE, is_keyword_index
from tests.conftest import DATABASE_KINDS, make_settings


def inspect_database(settings):
    async def run():
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:

                def check(sync_connection):
                    context = MigrationContext.configure(
                        sync_connection, opts={"compare_type": True, "include_object": is_keyword_index}
                    )
                    tables = set(inspect(sync_connection).get_table_names())
                    return context.get_current_revision(), tables, compare_metadata(context, Base.metadata)

                return await connection.run_sync(check)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_upgrade_downgrade_upgrade_and_models_match(kind, tmp_path):
    settings, drop = make_settings(kind, tmp_path)  # already upgraded to head
    try:
        revision, tables, diff = inspect_database(settings)
        assert revision == head_revision()
        assert {
            "projects",
            "tasks",
            "board_events",
            "agent_runs",
            "run_events",
            "approvals",
            "plugins",
            "plugin_projects",
            "knowledge_collections",
            "knowledge_documents",
            "knowledge_chunks",
            "project_knowledge",
        } <= tables
        if kind == "sqlite":
            assert FTS_TABLE in tables
        assert diff == [], f"models and migrations disagree: {diff}"

        downgrade(settings, "base")
        revision, tables, _ = inspect_database(settings)
        assert revision is None
        assert tables <= {"alembic_version"}

        upgrade(settings)
        revision, _, diff = inspect_database(settings)
        assert revision == head_revision()
        assert diff == []
    finally:
        drop()


def test_app_refuses_an_unmigrated_database(tmp_path):
    from backend.config import Settings
    from backend.main import SchemaNotCurrent, create_app

    app = create_app(Settings(data_dir=tmp_path))

    async def start():
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SchemaNotCurrent, match="kanban db upgrade"):
        asyncio.run(start())


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_every_upgrade_from_the_first_keeps_every_row(kind, tmp_path):
    """On SQLite, batch mode rebuilds a table by copying it and dropping the old one: with
    foreign keys enforced, that drop would cascade (rebuilding `projects` emptied `tasks`)."""
    from tests.backend.test_run_cost_migration import sql

    settings, drop = make_settings(kind, tmp_path)
    try:
        downgrade(settings, "0001")
        statements = [
            "INSERT INTO projects (id, name, key, workspace_path, base_branch, last_task_number, created_at, updated_at) "
            "VALUES (1, 'p', 'P', '/tmp', 'main', 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            *(
                "INSERT INTO tasks (id, project_id, number, short_id, title, description, status, position, priority, "
                f"labels, version, created_at, updated_at) VALUES ({task}, 1, {task}, 'P-{task}', 't', '', 'todo', "
                f"'a{task}', 'none', '[]', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                for task in (1, 2)
            ),
        ]
        asyncio.run(sql(settings, statements))
        count = "SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM tasks)"
        for revision in ("0002", "0003", "0004", "0005", "0006", "0007", "head"):
            upgrade(settings, revision)
            assert tuple(asyncio.run(sql(settings, [], count))[0]) == (1, 2), f"rows lost upgrading to {revision}"
    finally:
        drop()

"""Migration 0007 adds task dependencies to a database with tasks in it, and takes them away again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from backend.migrations_runner import downgrade, upgrade
from tests.backend.test_run_cost_migration import sql
from tests.conftest import DATABASE_KINDS, make_settings


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_existing_tasks_get_no_links_and_no_start_intent(kind, tmp_path):
    settings, drop = make_settings(kind, tmp_path)
    try:
        downgrade(settings, "0006")
        statements = [
            "INSERT INTO projects (id, name, key, workspace_path, base_branch, last_task_number, created_at, updated_at) "
            "VALUES (1, 'p', 'P', '/tmp', 'main', 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        ]
        for task in (1, 2):
            statements.append(
                "INSERT INTO tasks (id, project_id, number, short_id, title, description, status, position, priority, "
                f"labels, version, created_at, updated_at) VALUES ({task}, 1, {task}, 'P-{task}', 't', '', 'todo', "
                f"'a{task}', 'none', '[]', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        asyncio.run(sql(settings, statements))
        upgrade(settings)
        rows = asyncio.run(sql(settings, [], "SELECT id, start_when_unblocked FROM tasks ORDER BY id"))
        assert [(row[0], bool(row[1])) for row in rows] == [(1, False), (2, False)]

        link = (
            "INSERT INTO task_dependencies (task_id, blocked_by_id, blocked_by_short_id, created_at) "
            "VALUES (2, 1, 'P-1', CURRENT_TIMESTAMP)"
        )
        asyncio.run(sql(settings, [link]))
        with pytest.raises(IntegrityError):  # one link per pair
            asyncio.run(sql(settings, [link]))
        # Deleting the predecessor keeps the link, without its id; deleting the dependent removes it.
        asyncio.run(sql(settings, ["DELETE FROM tasks WHERE id = 1"]))
        rows = asyncio.run(
            sql(settings, [], "SELECT task_id, blocked_by_id, blocked_by_short_id FROM task_dependencies")
        )
        assert [tuple(row) for row in rows] == [(2, None, "P-1")]
        asyncio.run(sql(settings, ["DELETE FROM tasks WHERE id = 2"]))
        assert asyncio.run(sql(settings, [], "SELECT count(*) FROM task_dependencies"))[0][0] == 0

        downgrade(settings, "0006")
        for gone in ("SELECT start_when_unblocked FROM tasks", "SELECT id FROM task_dependencies"):
            with pytest.raises(DBAPIError):
                asyncio.run(sql(settings, [], gone))
        upgrade(settings)
    finally:
        drop()

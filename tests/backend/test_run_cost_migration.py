"""Migration 0005 turns the session totals older versions stored as runs' costs into each
run's own cost, and gives every run the task's total up to it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from backend.db import create_engine
from backend.migrations_runner import downgrade, upgrade
from tests.conftest import DATABASE_KINDS, make_settings

ROWS = [  # id, task, session, cost as stored before 0005 (the CLI's session total)
    (1, 1, "s-1", 0.3),
    (2, 1, "s-1", 0.5),  # resumed s-1: its own part is 0.2
    (3, 1, "s-2", 0.1),  # a new session of the same task
    (4, 1, "s-2", None),  # cancelled, no cost
    (5, 1, "s-2", 0.4),
    (6, 2, "s-1", 0.7),  # another task (same session id by chance): counted apart
]


async def sql(settings, statements: list[str], query: str | None = None):
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
            if query:
                return (await connection.execute(text(query))).all()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_costs_become_each_runs_own(kind, tmp_path):
    settings, drop = make_settings(kind, tmp_path)
    try:
        downgrade(settings, "0004")
        statements = [
            "INSERT INTO projects (id, name, key, workspace_path, base_branch, last_task_number, created_at, updated_at) "
            "VALUES (1, 'p', 'P', '/tmp', 'main', 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        ]
        for task in (1, 2):
            statements.append(
                "INSERT INTO tasks (id, project_id, number, short_id, title, description, status, position, priority, labels, "
                f"version, created_at, updated_at) VALUES ({task}, 1, {task}, 'P-{task}', 't', '', 'todo', 'a{task}', 'medium', "
                "'[]', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        for run_id, task, session, cost in ROWS:
            statements.append(
                "INSERT INTO agent_runs (id, task_id, project_id, attempt, status, prompt, session_id, cost_usd, starts, "
                f"cancel_requested, created_at, updated_at) VALUES ({run_id}, {task}, 1, {run_id}, 'succeeded', 'x', "
                f"'{session}', {'NULL' if cost is None else cost}, 1, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        asyncio.run(sql(settings, statements))
        upgrade(settings)
        rows = asyncio.run(
            sql(settings, [], "SELECT id, cost_usd, session_cost_usd, task_cost_usd FROM agent_runs ORDER BY id")
        )
        own = {row[0]: row[1] for row in rows}
        assert own == pytest.approx({1: 0.3, 2: 0.2, 3: 0.1, 4: None, 5: 0.3, 6: 0.7})
        assert [row[2] for row in rows] == pytest.approx([0.3, 0.5, 0.1, None, 0.4, 0.7])
        assert [row[3] for row in rows] == pytest.approx([0.3, 0.5, 0.6, 0.6, 0.9, 0.7])

        downgrade(settings, "0004")  # back to the session totals
        rows = asyncio.run(sql(settings, [], "SELECT cost_usd FROM agent_runs ORDER BY id"))
        assert [row[0] for row in rows] == pytest.approx([cost for *_, cost in ROWS])
    finally:
        drop()

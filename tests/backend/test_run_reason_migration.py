"""Migration 0010 gives the runs from before it the reason their prompts show, so an old
task's runs read as one conversation too."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError

from backend.migrations_runner import downgrade, upgrade
from tests.backend.test_run_cost_migration import sql
from tests.conftest import DATABASE_KINDS, make_settings

ROWS = [  # id, attempt, kind, resume_session_id, prompt, the reason 0010 gives it
    (1, 1, "agent", None, "You are working on task P-1: t", "start"),
    (2, 2, "agent", "s-1", "Use a list instead", "changes_requested"),
    (3, 3, "agent", "s-1", "The check `make test` failed (exit code 1) after your attempt 2", "check_failed"),
    (4, 4, "agent", "s-1", "A person reviewing P-2 (Approve) sent your work back", "sent_back"),
    (5, 5, "agent", None, "You are working on task P-1: t", "start"),  # Run again after a failure
    (6, 6, "agent", "s-2", "You are working on task P-1: t", "start"),  # resumed after a restart
    (7, 7, "check", "s-2", "make test", "start"),
]


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_old_runs_get_the_reason_their_prompt_shows(kind, tmp_path):
    settings, drop = make_settings(kind, tmp_path)
    try:
        downgrade(settings, "0009")
        statements = [
            "INSERT INTO projects (id, name, key, workspace_path, base_branch, last_task_number, created_at, updated_at) "
            "VALUES (1, 'p', 'P', '/tmp', 'main', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            "INSERT INTO tasks (id, project_id, number, short_id, title, description, status, position, priority, labels, "
            "version, created_at, updated_at) VALUES (1, 1, 1, 'P-1', 't', '', 'todo', 'a1', 'medium', "
            "'[]', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        ]
        for run_id, attempt, run_kind, resumed, prompt, _ in ROWS:
            resume = "NULL" if resumed is None else f"'{resumed}'"
            statements.append(
                "INSERT INTO agent_runs (id, task_id, project_id, attempt, kind, status, prompt, resume_session_id, "
                f"starts, cancel_requested, created_at, updated_at) VALUES ({run_id}, 1, 1, {attempt}, '{run_kind}', "
                f"'succeeded', '{prompt}', {resume}, 1, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        asyncio.run(sql(settings, statements))
        upgrade(settings)
        rows = asyncio.run(sql(settings, [], "SELECT id, reason FROM agent_runs ORDER BY id"))
        assert rows == [(run_id, reason) for run_id, *_, reason in ROWS]

        with pytest.raises(IntegrityError):  # the column only holds the known reasons
            asyncio.run(sql(settings, ["UPDATE agent_runs SET reason = 'whim' WHERE id = 1"]))

        downgrade(settings, "0009")
        upgrade(settings)
    finally:
        drop()

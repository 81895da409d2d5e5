"""Malformed requests: each gets a 4xx with a message a person can act on, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.backend.factories import create_project, create_task

HUGE = "9" * 30
INT32_OVERFLOW = 2**31  # PostgreSQL's INTEGER ends at 2**31 - 1
ZERO_WIDTH = "\u200b\ufeff\u200d"


async def snapshot(app) -> dict[str, list]:
    async with app.state.database.session() as session:
        return {
            table: [tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()]
            for table in ("projects", "tasks", "board_events", "agent_runs", "plugins", "workflows")
        }


def cases(project_id: int, task_id: int, workspace: str) -> list[tuple[str, str, object, int, str]]:
    """(method, path, body, expected status, text the detail must contain)."""
    t = f"/api/tasks/{task_id}"
    return [
        ("POST", "/api/tasks", {"project_id": project_id, "title": ""}, 422, "title"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "   "}, 422, "title"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "x" * 201}, 422, "at most 200"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "colour": "red"}, 422, "unknown field"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "status": "doing"}, 422, "status"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "priority": "p0"}, 422, "priority"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "nul\x00byte"}, 422, "NUL"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "labels": "ui"}, 422, "labels"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "labels": ["a,b"]}, 422, "labels"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "parent_id": 987654}, 422, "does not exist"),
        ("POST", "/api/tasks", {"project_id": 987654, "title": "ok"}, 422, "does not exist"),
        ("POST", "/api/tasks", {"project_id": int(HUGE), "title": "ok"}, 422, "project_id"),
        ("POST", "/api/tasks", {"project_id": "abc", "title": "ok"}, 422, "project_id"),
        ("POST", "/api/tasks", {"title": "ok"}, 422, "project_id: Field required"),
        ("POST", "/api/tasks", "{not json", 422, "not valid JSON"),
        ("POST", "/api/tasks", [1, 2], 422, ""),
        ("GET", f"/api/tasks/{HUGE}", None, 422, "task_id"),
        ("GET", "/api/tasks/abc", None, 422, "task_id"),
        ("GET", "/api/tasks/0", None, 422, "task_id"),
        ("GET", "/api/tasks/-1", None, 422, "task_id"),
        ("GET", "/api/tasks/987654", None, 404, "Task 987654 not found"),
        ("GET", "/api/tasks?status=doing", None, 422, "status"),
        ("GET", "/api/tasks?cursor=garbage", None, 422, "cursor"),
        ("GET", "/api/tasks?limit=0", None, 422, "limit"),
        ("GET", "/api/tasks?limit=100000", None, 422, "limit"),
        ("GET", f"/api/tasks?project_id={HUGE}", None, 422, "project_id"),
        ("GET", "/api/tasks?q=%00", None, 422, "NUL"),
        ("PATCH", t, {"title": "no version"}, 422, "version: Field required"),
        ("PATCH", t, {"version": 1, "title": None}, 422, "title cannot be null"),
        ("PATCH", t, {"version": 1, "status": "archived"}, 422, "status"),
        ("PATCH", t, {"version": 1, "id": 5}, 422, "unknown field"),
        ("PATCH", t, {"version": 1, "parent_id": task_id}, 422, "own parent"),
        ("PATCH", t, {"version": 99, "title": "stale"}, 409, "changed by someone else"),
        ("PATCH", "/api/tasks/987654", {"version": 1}, 404, "not found"),
        ("POST", f"{t}/move", {}, 422, "status"),
        ("POST", f"{t}/move", {"status": "nowhere"}, 422, "status"),
        ("POST", f"{t}/move", {"status": "done", "index": -1}, 422, "index"),
        ("POST", f"{t}/move", {"status": "todo", "before_id": task_id}, 422, "next to itself"),
        ("POST", f"{t}/move", {"status": "todo", "after_id": 987654}, 422, "not on this board"),
        ("DELETE", "/api/tasks/987654", None, 404, "not found"),
        ("POST", "/api/projects", {"name": "", "workspace_path": workspace}, 422, "name"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "/definitely/not/here"}, 422, "does not exist"),
        (
            "POST",
            "/api/projects",
            {"name": "x", "workspace_path": workspace, "base_branch": "bad branch"},
            422,
            "branch",
        ),
        ("POST", "/api/projects", {"name": "x", "workspace_path": workspace, "base_branch": "a..b"}, 422, "branch"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": workspace, "key": "lower"}, 422, "key"),
        ("POST", "/api/projects", '{"name": "x", "workspace_path": "\\ud800"}', 422, "unicode"),
        ("POST", "/api/tasks", f'{{"project_id": {project_id}, "title": "a\\ud800"}}', 422, "unicode"),
        ("POST", "/api/projects", {"name": "x"}, 422, "workspace_path: Field required"),
        ("PATCH", f"/api/projects/{project_id}", {"owner": "me"}, 422, "unknown field"),
        ("PATCH", f"/api/projects/{project_id}", {"workspace_path": "/definitely/not/here"}, 422, "does not exist"),
        ("GET", "/api/projects/abc", None, 422, "project_id"),
        ("GET", f"/api/projects/{HUGE}/board", None, 422, "project_id"),
        ("GET", "/api/events?last_event_id=abc", None, 422, "last_event_id"),
        ("GET", "/api/events?project_id=987654", None, 404, "not found"),
        ("PUT", t, {"version": 1}, 405, ""),
        # ids beyond a 32-bit column, in paths, queries and bodies
        ("GET", f"/api/tasks/{INT32_OVERFLOW}", None, 422, "task_id"),
        ("GET", f"/api/projects/{INT32_OVERFLOW}", None, 422, "project_id"),
        ("GET", f"/api/runs/{INT32_OVERFLOW}", None, 422, "run_id"),
        ("GET", f"/api/plugins/{INT32_OVERFLOW}", None, 422, "plugin_id"),
        ("POST", f"/api/approvals/{INT32_OVERFLOW}", {"decision": "allow"}, 422, "approval_id"),
        ("GET", f"/api/tasks?project_id={INT32_OVERFLOW}", None, 422, "project_id"),
        ("GET", f"/api/tasks?parent_id={INT32_OVERFLOW}", None, 422, "parent_id"),
        ("GET", f"/api/events?project_id={INT32_OVERFLOW}", None, 422, "project_id"),
        ("GET", f"/api/runs/1/events?after_seq={INT32_OVERFLOW}", None, 422, "after_seq"),
        ("POST", "/api/tasks", {"project_id": INT32_OVERFLOW, "title": "ok"}, 422, "project_id"),
        (
            "POST",
            "/api/tasks",
            {"project_id": project_id, "title": "ok", "parent_id": INT32_OVERFLOW},
            422,
            "parent_id",
        ),
        (
            "POST",
            "/api/tasks",
            {"project_id": project_id, "title": "ok", "created_by_run_id": INT32_OVERFLOW},
            422,
            "created_by_run_id",
        ),
        ("PATCH", t, {"version": 1, "parent_id": INT32_OVERFLOW}, 422, "parent_id"),
        ("POST", f"{t}/move", {"status": "todo", "before_id": INT32_OVERFLOW}, 422, "before_id"),
        ("POST", f"{t}/move", {"status": "todo", "after_id": INT32_OVERFLOW}, 422, "after_id"),
        ("PUT", f"/api/plugins/1/projects/{INT32_OVERFLOW}", {"enabled": True}, 422, "project_id"),
        # cursors and event ids: digits only (not "²"), within range
        ("GET", "/api/tasks?cursor=t9999999999999999999", None, 422, "cursor"),
        ("GET", "/api/tasks?cursor=t%C2%B2", None, 422, "cursor"),
        ("GET", "/api/tasks?cursor=t", None, 422, "cursor"),
        ("GET", "/api/events?last_event_id=%C2%B2", None, 422, "last_event_id"),
        ("GET", f"/api/events?last_event_id={'9' * 20}", None, 422, "last_event_id"),
        ("GET", "/api/runs/1/stream?last_event_id=%C2%B2", None, 422, "last_event_id"),
        ("GET", f"/api/runs/1/stream?last_event_id={INT32_OVERFLOW}", None, 422, "last_event_id"),
        # NUL characters never reach the database
        ("PATCH", t, {"version": 1, "description": "a\x00b"}, 422, "NUL"),
        ("PATCH", t, {"version": 1, "result": "a\x00b"}, 422, "NUL"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "labels": ["a\x00"]}, 422, "labels"),
        ("POST", "/api/projects", {"name": "n\x00", "workspace_path": workspace}, 422, "NUL"),
        ("PATCH", f"/api/projects/{project_id}", {"agent_model": "m\x00"}, 422, "NUL"),
        ("POST", "/api/plugins", {"name": "nul", "url": "http://127.0.0.1/\x00"}, 422, "url"),
        ("POST", "/api/plugins", {"name": "nul", "command": "x\x00"}, 422, "NUL"),
        ("POST", "/api/plugins", {"name": "nul", "command": "x", "env": {"A": "b\x00"}}, 422, "NUL"),
        ("POST", f"{t}/runs", {"instructions": "go\x00"}, 422, "NUL"),
        # text that is only invisible characters is empty
        ("POST", "/api/tasks", {"project_id": project_id, "title": ZERO_WIDTH}, 422, "title"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": " \u200b "}, 422, "title"),
        ("POST", "/api/tasks", {"project_id": project_id, "title": "ok", "labels": [ZERO_WIDTH]}, 422, "labels"),
        ("PATCH", t, {"version": 1, "title": ZERO_WIDTH}, 422, "title"),
        ("POST", "/api/projects", {"name": ZERO_WIDTH, "workspace_path": workspace}, 422, "name"),
        ("PATCH", f"/api/projects/{project_id}", {"name": "\ufeff"}, 422, "name"),
        ("POST", "/api/plugins", {"name": "zw", "title": ZERO_WIDTH, "command": "x"}, 422, "title"),
        ("POST", f"/api/tasks/{task_id}/request-changes", {"feedback": ZERO_WIDTH}, 422, "feedback"),
        # agent settings: no blank items, no path that names the project folder itself
        ("PATCH", f"/api/projects/{project_id}", {"allowed_tools": ["Bash", " "]}, 422, "allowed_tools"),
        ("PATCH", f"/api/projects/{project_id}", {"copy_files": ["   "]}, 422, "copy_files"),
        ("PATCH", f"/api/projects/{project_id}", {"copy_files": ["./"]}, 422, "project folder itself"),
        (
            "POST",
            "/api/projects",
            {"name": "x", "workspace_path": workspace, "copy_files": ["../x"]},
            422,
            "inside the project",
        ),
        # folders
        ("POST", "/api/projects", {"name": "x", "workspace_path": "~nosuchuser-kanban"}, 422, "does not exist"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "~nosuchuser-kanban/code"}, 422, "does not exist"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "relative/folder"}, 422, "absolute path"),
        ("PATCH", f"/api/projects/{project_id}", {"workspace_path": "~nosuchuser-kanban"}, 422, "does not exist"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "/", "init_git": True}, 422, "system folder"),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "/etc", "init_git": True}, 422, "system folder"),
        (
            "POST",
            "/api/projects",
            {"name": "x", "workspace_path": "/usr/share", "init_git": True},
            422,
            "system folder",
        ),
        ("POST", "/api/projects", {"name": "x", "workspace_path": "~", "init_git": True}, 422, "home folder"),
        # workflows
        ("POST", "/api/workflows", {"project_id": project_id, "template": "feature"}, 422, "feature"),
        ("POST", "/api/workflows", {"project_id": project_id, "template": "Feature!"}, 422, "template"),
        ("POST", "/api/workflows", {"project_id": project_id, "template": "no-such"}, 404, "no-such"),
        ("POST", "/api/workflows", {"project_id": INT32_OVERFLOW, "template": "feature"}, 422, "project_id"),
        ("POST", "/api/workflows", {"project_id": 987654, "template": "feature"}, 422, "does not exist"),
        (
            "POST",
            "/api/workflows",
            {"project_id": project_id, "template": "bugfix", "inputs": {"bug": "a\x00b"}},
            422,
            "NUL",
        ),
        (
            "POST",
            "/api/workflows",
            {"project_id": project_id, "template": "bugfix", "inputs": {"bug": "x", "bugg": "y"}},
            422,
            "bugg",
        ),
        (
            "POST",
            "/api/workflows",
            {"project_id": project_id, "template": "bugfix", "inputs": {"bug": ["x"]}},
            422,
            "bug",
        ),
        (
            "POST",
            "/api/workflows",
            {"project_id": project_id, "template": "bugfix", "inputs": {"bug": "   "}},
            422,
            "bug",
        ),
        (
            "POST",
            "/api/workflows",
            {"project_id": project_id, "template": "bugfix", "inputs": {"bug": "x"}, "title": ZERO_WIDTH},
            422,
            "title",
        ),
        ("GET", f"/api/workflows/{INT32_OVERFLOW}", None, 422, "workflow_id"),
        ("GET", "/api/workflows/987654", None, 404, "Workflow 987654 not found"),
        ("GET", "/api/workflows", None, 422, "project_id"),
        ("GET", "/api/workflows?project_id=987654", None, 404, "987654"),
        ("GET", f"/api/workflow-templates?project_id={INT32_OVERFLOW}", None, 422, "project_id"),
        ("GET", "/api/workflow-templates?project_id=987654", None, 404, "987654"),
        ("POST", "/api/workflows/987654/cancel", None, 404, "Workflow 987654 not found"),
    ]


@pytest.fixture
async def targets(client):
    project = await create_project(client)
    task = await create_task(client, project["id"])
    return project, task


async def test_bad_requests_get_4xx_with_a_message_and_change_nothing(app, client, targets, workspace):
    project, task = targets
    before = await snapshot(app)
    home_had_git = (Path.home() / ".git").exists()
    failures = []
    for method, path, body, expected, needle in cases(project["id"], task["id"], str(workspace)):
        if isinstance(body, str):
            response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
        else:
            response = await client.request(method, path, json=body)
        detail = (
            response.json().get("detail")
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if response.status_code != expected or not isinstance(detail, str) or needle not in detail:
            failures.append((method, path, body, response.status_code, response.text[:300]))
    assert not failures, "\n".join(map(str, failures))
    assert await snapshot(app) == before
    assert (Path.home() / ".git").exists() == home_had_git
    assert not (workspace / ".git").exists()


@pytest.mark.parametrize("header", ["\u00b2", "9" * 20, "-1", " 1"])
async def test_a_bad_last_event_id_header_gets_422(client, targets, header):
    _, task = targets
    for path in ("/api/events", "/api/runs/1/stream"):
        response = await client.get(path, headers={"Last-Event-ID": header.encode("latin-1")})
        assert response.status_code == 422, (path, response.text)
        assert "Last-Event-ID" in response.json()["detail"] or "last_event_id" in response.json()["detail"]

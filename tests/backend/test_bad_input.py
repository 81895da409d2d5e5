"""Malformed requests: each gets a 4xx with a message a person can act on, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.backend.factories import create_project, create_task

HUGE = "9" * 30


async def snapshot(app) -> dict[str, list]:
    async with app.state.database.session() as session:
        return {
            table: [tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()]
            for table in ("projects", "tasks", "board_events")
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
        ("POST", "/api/projects", {"name": "x", "workspace_path": workspace, "base_branch": "bad branch"}, 422, "branch"),
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
    ]


@pytest.fixture
async def targets(client):
    project = await create_project(client)
    task = await create_task(client, project["id"])
    return project, task


async def test_bad_requests_get_4xx_with_a_message_and_change_nothing(app, client, targets, workspace):
    project, task = targets
    before = await snapshot(app)
    failures = []
    for method, path, body, expected, needle in cases(project["id"], task["id"], str(workspace)):
        if isinstance(body, str):
            response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
        else:
            response = await client.request(method, path, json=body)
        detail = response.json().get("detail") if response.headers.get("content-type", "").startswith("application/json") else None
        if response.status_code != expected or not isinstance(detail, str) or needle not in detail:
            failures.append((method, path, body, response.status_code, response.text[:300]))
    assert not failures, "\n".join(map(str, failures))
    assert await snapshot(app) == before

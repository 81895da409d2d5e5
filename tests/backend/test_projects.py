from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from backend.main import create_app
from backend.migrations_runner import head_revision
from tests.backend.factories import create_project, create_task
from tests.conftest import DATABASE_KINDS, make_settings, running


async def test_create_get_list_update_delete(client, workspace: Path):
    response = await client.post(
        "/api/projects",
        json={"name": "  Demo Board  ", "workspace_path": str(workspace / ".." / "workspace"), "init_git": True},
    )
    assert response.status_code == 201, response.text
    project = response.json()
    assert project["name"] == "Demo Board"
    assert project["workspace_path"] == str(workspace.resolve())
    assert project["key"] == "DEM"
    assert project["base_branch"] == "main"

    assert (await client.get(f"/api/projects/{project['id']}")).json() == project
    names = [p["name"] for p in (await client.get("/api/projects")).json()]
    assert "Demo Board" in names

    subprocess.run(["git", "-C", str(workspace), "branch", "develop"], check=True)
    response = await client.patch(
        f"/api/projects/{project['id']}",
        json={
            "base_branch": "develop",
            "key": "DB",
            "copy_files": [".env"],
            "permission_mode": "default",
            "max_turns": 20,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["base_branch"], body["key"], body["copy_files"], body["permission_mode"], body["max_turns"]) == (
        "develop",
        "DB",
        [".env"],
        "default",
        20,
    )
    response = await client.patch(f"/api/projects/{project['id']}", json={"base_branch": "nope"})
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]
    task = await create_task(client, project["id"])
    assert task["short_id"] == "DB-1"

    assert (await client.delete(f"/api/projects/{project['id']}")).status_code == 204
    assert (await client.get(f"/api/projects/{project['id']}")).status_code == 404
    assert (await client.get(f"/api/tasks/{task['id']}")).status_code == 404


async def test_keys_are_unique_so_short_ids_are(client):
    first = await create_project(client, name="Keyed One")
    second = await create_project(client, name="Keyed Two")
    assert first["key"] == "KEY" and second["key"] == "KEY2"
    response = await client.patch(f"/api/projects/{second['id']}", json={"key": "KEY"})
    assert response.status_code == 409
    assert "short ids must stay unique" in response.json()["detail"]
    assert response.json()["field"] == "key"


async def test_the_suggested_key_is_the_key_a_new_project_gets(client):
    async def suggested(name: str) -> str:
        response = await client.get("/api/projects/suggested-key", params={"name": name})
        assert response.status_code == 200, response.text
        return response.json()["key"]

    assert await suggested("Demo App") == "DEM"
    first = await create_project(client, name="Demo App")
    assert first["key"] == "DEM"
    assert await suggested("Demolition") == "DEM2"
    assert (await create_project(client, name="Demolition"))["key"] == "DEM2"
    assert await suggested("  42 x  ") == "TASK"
    for bad in ("", "   ", "a\x00b", "x" * 101):
        response = await client.get("/api/projects/suggested-key", params={"name": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["loc"] == ["query", "name"]


async def test_duplicate_name_is_409(client):
    project = await create_project(client)
    response = await client.post(
        "/api/projects", json={"name": project["name"].upper(), "workspace_path": project["workspace_path"]}
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    other = await create_project(client)
    response = await client.patch(f"/api/projects/{other['id']}", json={"name": project["name"]})
    assert response.status_code == 409
    assert response.json()["field"] == "name"


async def test_workspace_must_be_a_git_repository(client, workspace: Path, tmp_path: Path):
    response = await client.post("/api/projects", json={"name": "Plain", "workspace_path": str(workspace)})
    assert response.status_code == 422
    assert "init_git" in response.json()["detail"]
    assert not (workspace / ".git").exists()

    (workspace / "notes.md").write_text("hello")
    response = await client.post(
        "/api/projects", json={"name": "Plain", "workspace_path": str(workspace), "init_git": True}
    )
    assert response.status_code == 201, response.text
    assert response.json()["base_branch"] == "main"
    log = subprocess.run(
        ["git", "-C", str(workspace), "log", "--format=%s", "--name-only"], capture_output=True, text=True
    )
    assert "notes.md" in log.stdout

    existing = tmp_path / "existing"
    existing.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(existing)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(existing),
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    response = await client.post("/api/projects", json={"name": "Existing", "workspace_path": str(existing)})
    assert response.status_code == 201, response.text
    assert response.json()["base_branch"] == "trunk"
    response = await client.post(
        "/api/projects", json={"name": "Wrong base", "workspace_path": str(existing), "base_branch": "main"}
    )
    assert response.status_code == 422
    assert "'main' does not exist" in response.json()["detail"]


async def test_missing_workspace_is_422(client, tmp_path: Path):
    response = await client.post("/api/projects", json={"name": "Nowhere", "workspace_path": str(tmp_path / "missing")})
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]
    file = tmp_path / "file.txt"
    file.write_text("x")
    response = await client.post("/api/projects", json={"name": "A file", "workspace_path": str(file)})
    assert response.status_code == 422
    assert "not a folder" in response.json()["detail"]


async def test_unknown_project_is_404(client):
    for method, path in [
        ("GET", "/api/projects/999999"),
        ("PATCH", "/api/projects/999999"),
        ("DELETE", "/api/projects/999999"),
        ("GET", "/api/projects/999999/board"),
    ]:
        response = await client.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["detail"] == "Project 999999 not found"


async def test_health(client, settings):
    body = (await client.get("/api/health")).json()
    assert body["status"] == "ok"
    assert body["database"] == settings.database_kind
    assert body["revision"] == head_revision()


async def test_agent_settings_are_taken_on_create(client, workspace: Path):
    response = await client.post(
        "/api/projects",
        json={
            "name": f"Settings {workspace.parent.name}",
            "workspace_path": str(workspace),
            "init_git": True,
            "permission_mode": "plan",
            "allowed_tools": [" Bash ", "Read"],
            "copy_files": [".env"],
            "agent_model": "claude-sonnet-4-5",
            "max_turns": 7,
            "max_budget_usd": 1.5,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["permission_mode"], body["allowed_tools"], body["copy_files"]) == ("plan", ["Bash", "Read"], [".env"])
    assert (body["agent_model"], body["max_turns"], body["max_budget_usd"]) == ("claude-sonnet-4-5", 7, 1.5)


async def test_a_refused_init_git_leaves_the_folder_as_it_was(client, workspace: Path, tmp_path: Path):
    taken = await create_project(client)
    (workspace / "notes.txt").write_text("mine\n")
    for body, status, needle in [
        ({"key": taken["key"]}, 409, "key"),
        ({"name": taken["name"]}, 409, "already exists"),
        ({"base_branch": "a..b"}, 422, "branch"),
    ]:
        response = await client.post(
            "/api/projects",
            json={"name": f"Fresh {tmp_path.name}", "workspace_path": str(workspace), "init_git": True, **body},
        )
        assert response.status_code == status, response.text
        assert needle in response.json()["detail"]
        assert sorted(p.name for p in workspace.iterdir()) == ["notes.txt"]


async def test_init_git_in_a_folder_the_server_cannot_write_is_refused(client, workspace: Path, tmp_path: Path):
    locked = subprocess.run(["chattr", "+i", str(workspace)], capture_output=True).returncode == 0
    if not locked:
        workspace.chmod(0o555)
    try:
        response = await client.post(
            "/api/projects",
            json={"name": f"Locked {tmp_path.name}", "workspace_path": str(workspace), "init_git": True},
        )
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(workspace)], check=True)
        workspace.chmod(0o755)
    assert response.status_code == 422, response.text
    assert "cannot write" in response.json()["detail"]
    assert not (workspace / ".git").exists()


async def test_deleting_a_project_names_what_goes_and_removes_worktrees_only_when_asked(client, app):
    from backend.models import AgentRun, RunStatus

    def git(path: str, *args: str) -> str:
        return subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, check=True).stdout

    async def project_with_worktree() -> tuple[dict, str]:
        project = await create_project(client)
        task = await create_task(client, project["id"])
        repo = project["workspace_path"]
        worktree = os.path.join(repo + "-worktrees", "kanban-task")
        git(repo, "worktree", "add", "-b", "kanban/task", worktree)
        Path(worktree, "scratch.txt").write_text("uncommitted\n")
        async with app.state.database.session(write=True) as session:
            session.add(
                AgentRun(
                    task_id=task["id"], project_id=project["id"], attempt=1, status=RunStatus.succeeded.value,
                    prompt="p", branch="kanban/task", worktree_path=worktree,
                )
            )  # fmt: skip
        return project, worktree

    project, worktree = await project_with_worktree()
    preview = (await client.get(f"/api/projects/{project['id']}/deletion")).json()
    assert preview == {
        "tasks": 1, "runs": 1, "active_runs": 0, "workflows": 0, "worktrees": [worktree],
        "workspace_path": project["workspace_path"],
    }  # fmt: skip
    assert (await client.delete(f"/api/projects/{project['id']}")).status_code == 204
    assert os.path.isdir(worktree)  # kept by default

    project, worktree = await project_with_worktree()
    response = await client.delete(f"/api/projects/{project['id']}", params={"remove_worktrees": "true"})
    assert response.status_code == 204
    assert not os.path.exists(worktree)
    assert "kanban/task" in git(project["workspace_path"], "branch", "--list", "kanban/task")  # the branch stays
    assert os.path.isdir(project["workspace_path"])
    assert (await client.get(f"/api/projects/{project['id']}/deletion")).status_code == 404


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_a_project_with_a_run_in_progress_is_not_deleted_and_the_refusal_names_the_attempt(tmp_path, kind):
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, run_agents=False)  # the run stays queued
    try:
        async with running(create_app(settings)) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                task = await create_task(http, project["id"], title="Busy")
                assert (await http.post(f"/api/tasks/{task['id']}/runs", json={})).status_code == 202
                response = await http.delete(f"/api/projects/{project['id']}")
                assert response.status_code == 409
                assert f"({task['short_id']}, attempt 1); cancel it first" in response.json()["detail"]
                assert (await http.get(f"/api/projects/{project['id']}")).status_code == 200  # nothing removed
    finally:
        await asyncio.to_thread(drop)

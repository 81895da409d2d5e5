"""Plain async helpers that make test data through the public API."""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

import httpx


async def create_project(client: httpx.AsyncClient, **fields: Any) -> dict:
    body = {
        "name": f"Project {uuid.uuid4().hex[:8]}",
        "workspace_path": tempfile.mkdtemp(prefix="kanban-ws-"),
        "init_git": True,
    }
    body.update(fields)
    response = await client.post("/api/projects", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def create_task(client: httpx.AsyncClient, project_id: int, **fields: Any) -> dict:
    body = {"project_id": project_id, "title": f"Task {uuid.uuid4().hex[:6]}"}
    body.update(fields)
    response = await client.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def board_ids(client: httpx.AsyncClient, project_id: int) -> dict[str, list[int]]:
    response = await client.get(f"/api/projects/{project_id}/board")
    assert response.status_code == 200, response.text
    return {column["status"]: [t["id"] for t in column["tasks"]] for column in response.json()["columns"]}

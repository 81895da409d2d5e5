"""Approving a task saves its result to the project's write collection; "Save to knowledge"
saves any run's result. The real CLI against the fake Messages API, real git."""

from __future__ import annotations

import uuid

import pytest

from tests.backend.factories import create_project, create_task
from tests.backend.test_runs import wait_for_status
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn


@pytest.fixture
def agent_env(fake_anthropic: FakeAnthropic, monkeypatch) -> FakeAnthropic:
    for name, value in fake_anthropic.env(max_retries=0).items():
        monkeypatch.setenv(name, value)
    return fake_anthropic


async def _reviewed_task(client, agent_env: FakeAnthropic, project: dict, title: str) -> tuple[dict, dict]:
    task = await create_task(client, project["id"], title=title, description="Write notes.txt")
    marker = f"[{task['short_id']}]"
    agent_env.add_script(
        marker,
        [
            Turn.tool_use("Write", {"file_path": "notes.txt", "content": "remember the milk\n"}),
            Turn.text("Added notes.txt with the shopping reminder"),
        ],
    )
    response = await client.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})
    assert response.status_code == 202, response.text
    run = await wait_for_status(client, task["id"], {"succeeded", "failed"})
    assert run["status"] == "succeeded", run["error"]
    return task, run


async def _documents(client, collection_id: int) -> list[dict]:
    response = await client.get(f"/api/knowledge/collections/{collection_id}/documents")
    assert response.status_code == 200, response.text
    return response.json()


async def test_approving_a_task_saves_its_result_in_the_write_collection(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    collection = (
        await client.post("/api/knowledge/collections", json={"name": f"Results {uuid.uuid4().hex[:6]}"})
    ).json()
    bound = await client.put(f"/api/projects/{project['id']}/knowledge/{collection['id']}", json={"can_write": True})
    assert bound.status_code == 200, bound.text
    task, run = await _reviewed_task(client, agent_env, project, "Shopping reminder")
    assert await _documents(client, collection["id"]) == []

    response = await client.post(f"/api/tasks/{task['id']}/approve")
    assert response.status_code == 200, response.text
    (summary,) = await _documents(client, collection["id"])
    assert summary["kind"] == "task_result" and summary["task_id"] == task["id"] and summary["run_id"] == run["id"]
    document = (await client.get(f"/api/knowledge/documents/{summary['id']}")).json()
    assert document["title"] == f"{task['short_id']}: Shopping reminder"
    assert document["task_short_id"] == task["short_id"] and document["source_uri"] == f"task:{task['short_id']}"
    content = document["content"]
    for expected in ("Shopping reminder", "Added notes.txt with the shopping reminder", "`notes.txt`", run["branch"]):
        assert expected in content, (expected, content)

    # Saving the same run again by hand: the same text is there already.
    again = await client.post(f"/api/runs/{run['id']}/knowledge", json={})
    assert again.status_code == 200 and again.json()["unchanged"] is True and again.json()["id"] == summary["id"]


async def test_save_to_knowledge_and_the_project_switch(client, agent_env: FakeAnthropic):
    project = await create_project(client, save_task_results=False)
    assert project["save_task_results"] is False
    collection = (
        await client.post("/api/knowledge/collections", json={"name": f"Saved {uuid.uuid4().hex[:6]}"})
    ).json()
    task, run = await _reviewed_task(client, agent_env, project, "Not saved on approve")

    response = await client.post(f"/api/runs/{run['id']}/knowledge", json={})
    assert response.status_code == 409 and "write collection" in response.json()["detail"]
    response = await client.post(
        f"/api/runs/{run['id']}/knowledge", json={"collection_id": collection["id"], "title": "Kept by hand"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "task_result" and response.json()["title"] == "Kept by hand"

    await client.put(f"/api/projects/{project['id']}/knowledge/{collection['id']}", json={"can_write": True})
    assert (await client.post(f"/api/tasks/{task['id']}/approve")).status_code == 200
    assert len(await _documents(client, collection["id"])) == 1  # save_task_results is off: nothing more

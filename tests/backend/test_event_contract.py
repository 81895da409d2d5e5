"""Board events and run events have typed payloads, and the OpenAPI document says so."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from backend.board.event_payloads import EVENT_PAYLOADS, BoardEvent, check_payload
from backend.config import Settings
from backend.events import service as event_log
from backend.events.hub import to_live
from backend.events.service import EventPayloadError
from backend.events.types import EVENT_DESCRIPTIONS, BoardEventType
from backend.main import create_app
from backend.models import BoardEvent as BoardEventRow
from backend.runs.event_types import RUN_EVENT_DESCRIPTIONS, RunEventType
from tests.backend.factories import create_project, create_task
from tests.backend.sse import SSEReader


def test_every_event_type_has_a_payload_model_and_a_description():
    assert set(EVENT_PAYLOADS) == set(BoardEventType)
    assert set(EVENT_DESCRIPTIONS) == set(BoardEventType)
    assert set(RUN_EVENT_DESCRIPTIONS) == set(RunEventType)


TASK_DELETED = {"id": 3, "short_id": "KAN-3", "project_id": 1}


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"id": 3, "short_id": "KAN-3"}, "project_id"),  # a field missing
        ({**TASK_DELETED, "title": "x"}, "['title'] are not in TaskDeletedPayload"),  # one too many
        ({**TASK_DELETED, "id": "three"}, "id"),  # the wrong type
    ],
)
def test_a_payload_that_does_not_match_its_type_is_refused(payload, complaint):
    check_payload(BoardEventType.task_deleted, TASK_DELETED)
    with pytest.raises(EventPayloadError, match="task.deleted") as caught:
        check_payload(BoardEventType.task_deleted, payload)
    assert complaint in str(caught.value)


async def test_record_refuses_a_wrong_payload_and_writes_nothing(app):
    database = app.state.database
    async with database.session() as session:
        before = await session.scalar(select(func.count()).select_from(BoardEventRow))
    with pytest.raises(EventPayloadError, match="project.deleted"):
        async with database.session(write=True) as session:
            await event_log.record(session, BoardEventType.project_deleted, None, {"project_id": 1})
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(BoardEventRow)) == before


async def test_the_streams_messages_are_board_events(live_server):
    """What the stream sends parses as the documented union, for every kind of change here."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        async with http.stream("GET", "/api/events") as response:
            reader = SSEReader(response)
            project = await create_project(http)
            await http.patch(f"/api/projects/{project['id']}", json={"name": project["name"] + " renamed"})
            task = await create_task(http, project["id"])
            await http.patch(f"/api/tasks/{task['id']}", json={"title": "Renamed", "version": task["version"]})
            await http.post(f"/api/tasks/{task['id']}/move", json={"status": "done"})
            await http.delete(f"/api/tasks/{task['id']}")
            plugin = (await http.post("/api/plugins", json={"name": "contract-echo", "command": "echo"})).json()
            await http.patch(f"/api/plugins/{plugin['id']}", json={"title": "Echo"})
            await http.delete(f"/api/plugins/{plugin['id']}")
            await http.delete(f"/api/projects/{project['id']}")
            expected = [
                "project.created", "project.updated", "task.created", "task.updated", "task.moved", "task.deleted",
                "plugin.installed", "plugin.updated", "plugin.removed", "project.deleted",
            ]  # fmt: skip
            seen = []
            while len(seen) < len(expected):
                message = await asyncio.wait_for(reader.next(), 5)
                event = BoardEvent.model_validate_json(message.data).root
                assert event.type == message.event
                check_payload(BoardEventType(event.type), message.json["payload"])
                if message.json["project_id"] in (project["id"], None):
                    seen.append(event.type)
    assert seen == expected


async def test_the_log_replays_as_board_events(app):
    async with app.state.database.session() as session:
        rows = await event_log.list_after(session, 0, limit=10_000)
    for row in rows:
        BoardEvent.model_validate(to_live(row).envelope())


async def test_the_openapi_document_describes_the_stream_and_the_run_event_types(client):
    document = (await client.get("/api/openapi.json")).json()
    responses = document["paths"]["/api/events"]["get"]["responses"]
    assert responses["200"]["content"] == {"text/event-stream": {"schema": {"$ref": "#/components/schemas/BoardEvent"}}}
    assert list(responses["422"]["content"]) == ["application/json"]  # errors stay JSON
    run_stream = document["paths"]["/api/runs/{run_id}/stream"]["get"]["responses"]
    assert run_stream["200"]["content"] == {
        "text/event-stream": {"schema": {"$ref": "#/components/schemas/RunEventRead"}}
    }
    assert list(run_stream["404"]["content"]) == ["application/json"]
    schemas = document["components"]["schemas"]
    assert set(schemas["BoardEvent"]["discriminator"]["mapping"]) == {t.value for t in BoardEventType}
    assert schemas["TaskDeletedEvent"]["properties"]["payload"] == {"$ref": "#/components/schemas/TaskDeletedPayload"}
    assert schemas["RunEventRead"]["properties"]["type"]["$ref"] == "#/components/schemas/RunEventType"
    assert schemas["RunEventType"]["enum"] == [t.value for t in RunEventType]


def test_the_app_installs_the_payload_check(monkeypatch, tmp_path):
    # The event log imports no domain: the check comes from the app (backend.board.event_payloads).
    monkeypatch.setattr(event_log, "_payload_check", [])
    create_app(Settings(data_dir=tmp_path))
    assert event_log._payload_check == [check_payload]


def test_every_error_answer_documents_the_one_error_shape(tmp_path):
    """Each 4xx an operation documents has a JSON schema: ErrorResponse, or ValidationErrorResponse
    for a 422 (an answer documented by an example alone is checked against nothing)."""
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    shapes = {"#/components/schemas/ErrorResponse", "#/components/schemas/ValidationErrorResponse"}
    undocumented = [
        (method.upper(), path, code)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for code, answer in operation.get("responses", {}).items()
        if code.startswith("4")
        and answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") not in shapes
    ]
    assert undocumented == []

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import event

from tests.backend.factories import board_ids, create_project, create_task


async def test_short_ids_count_up_per_project(client):
    first = await create_project(client, key=f"A{uuid.uuid4().hex[:6].upper()}")
    second = await create_project(client)
    a1 = await create_task(client, first["id"])
    a2 = await create_task(client, first["id"])
    b1 = await create_task(client, second["id"])
    assert (a1["short_id"], a2["short_id"]) == (f"{first['key']}-1", f"{first['key']}-2")
    assert b1["number"] == 1


async def test_create_get_patch_delete(client):
    project = await create_project(client)
    task = await create_task(
        client, project["id"], title="  Write docs ", description="# Heading", priority="high", labels=["docs", "ui"]
    )
    assert task["title"] == "Write docs"
    assert task["status"] == "todo"
    assert task["version"] == 1
    assert (await client.get(f"/api/tasks/{task['id']}")).json() == task

    response = await client.patch(f"/api/tasks/{task['id']}", json={"version": 1, "result": "Done it", "labels": []})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["version"], updated["result"], updated["labels"]) == (2, "Done it", [])

    subtask = await create_task(client, project["id"], parent_id=task["id"])
    assert subtask["parent_id"] == task["id"]
    listed = (await client.get("/api/tasks", params={"parent_id": task["id"]})).json()["items"]
    assert [t["id"] for t in listed] == [subtask["id"]]

    assert (await client.delete(f"/api/tasks/{task['id']}")).status_code == 204
    assert (await client.get(f"/api/tasks/{task['id']}")).status_code == 404
    assert (await client.get(f"/api/tasks/{subtask['id']}")).json()["parent_id"] is None


async def test_stale_version_is_409_and_nothing_is_written(client):
    project = await create_project(client)
    task = await create_task(client, project["id"], title="Original")
    assert (await client.patch(f"/api/tasks/{task['id']}", json={"version": 1, "title": "First"})).status_code == 200
    response = await client.patch(f"/api/tasks/{task['id']}", json={"version": 1, "title": "Second"})
    assert response.status_code == 409
    body = response.json()
    assert "changed by someone else" in body["detail"]
    assert body["current"]["title"] == "First"
    assert body["current"]["version"] == 2
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["title"] == "First"


async def test_twenty_concurrent_patches_one_wins(client):
    project = await create_project(client)
    task = await create_task(client, project["id"])
    responses = await asyncio.gather(
        *[client.patch(f"/api/tasks/{task['id']}", json={"version": 1, "title": f"Writer {i}"}) for i in range(20)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 19, codes
    winner = next(r.json() for r in responses if r.status_code == 200)
    current = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert current["title"] == winner["title"]
    assert current["version"] == 2


async def test_concurrent_creates_get_distinct_numbers(client):
    project = await create_project(client)
    tasks = await asyncio.gather(*[create_task(client, project["id"]) for _ in range(15)])
    assert sorted(t["number"] for t in tasks) == list(range(1, 16))
    positions = [t["position"] for t in tasks]
    assert len(set(positions)) == 15


async def test_list_filter_search_and_paginate(client):
    project = await create_project(client)
    other = await create_project(client)
    await create_task(client, other["id"], title="needle elsewhere")
    made = [await create_task(client, project["id"], title=f"Task {i}") for i in range(7)]
    await create_task(client, project["id"], title="Find the NEEDLE", status="done")
    await create_task(client, project["id"], title="x", description="a needle in the description")
    await create_task(client, project["id"], title="100% sure")

    found = (await client.get("/api/tasks", params={"project_id": project["id"], "q": "needle"})).json()["items"]
    assert sorted(t["title"] for t in found) == ["Find the NEEDLE", "x"]
    done = (await client.get("/api/tasks", params={"project_id": project["id"], "status": "done"})).json()["items"]
    assert [t["title"] for t in done] == ["Find the NEEDLE"]
    literal = (await client.get("/api/tasks", params={"project_id": project["id"], "q": "0%"})).json()["items"]
    assert [t["title"] for t in literal] == ["100% sure"]

    seen, cursor = [], None
    while True:
        params = {"project_id": project["id"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/tasks", params=params)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 10 and seen == sorted(seen)
    assert seen[:7] == [t["id"] for t in made]


async def test_search_finds_a_task_by_its_short_id_and_its_labels(client):
    project = await create_project(client)
    first = await create_task(client, project["id"], title="Plain")
    await create_task(client, project["id"], title="Tagged", labels=["frontend", "Café"])
    await create_task(client, project["id"], title="Other", labels=["backend"])

    def titles(items: list[dict]) -> list[str]:
        return sorted(t["title"] for t in items)

    async def search(q: str) -> tuple[list[str], list[str]]:
        listed = (await client.get("/api/tasks", params={"project_id": project["id"], "q": q})).json()["items"]
        board = (await client.get(f"/api/projects/{project['id']}/board", params={"q": q})).json()
        return titles(listed), titles([t for column in board["columns"] for t in column["tasks"]])

    assert await search(first["short_id"]) == (["Plain"], ["Plain"])
    assert await search(first["short_id"].lower()) == (["Plain"], ["Plain"])
    assert await search("FRONT") == (["Tagged"], ["Tagged"])
    assert await search("café") == (["Tagged"], ["Tagged"])
    assert await search("end") == (["Other", "Tagged"], ["Other", "Tagged"])
    assert await search(f"{first['short_id']}0") == ([], [])


async def test_move_between_and_within_columns(client):
    project = await create_project(client)
    a, b, c, d = [await create_task(client, project["id"], title=n) for n in "abcd"]
    assert (await board_ids(client, project["id"]))["todo"] == [a["id"], b["id"], c["id"], d["id"]]

    async def move(task, **body):
        response = await client.post(f"/api/tasks/{task['id']}/move", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    await move(d, status="todo", before_id=a["id"])
    assert (await board_ids(client, project["id"]))["todo"] == [d["id"], a["id"], b["id"], c["id"]]
    await move(d, status="todo", after_id=b["id"])
    assert (await board_ids(client, project["id"]))["todo"] == [a["id"], b["id"], d["id"], c["id"]]
    await move(a, status="done")
    await move(b, status="done", index=0)
    moved = await move(c, status="done", index=1)
    assert moved["status"] == "done"
    columns = await board_ids(client, project["id"])
    assert columns["todo"] == [d["id"]]
    assert columns["done"] == [b["id"], c["id"], a["id"]]
    await move(d, status="done", index=99)
    assert (await board_ids(client, project["id"]))["done"] == [b["id"], c["id"], a["id"], d["id"]]

    # Repeated inserts at the same spot keep working (keys never run out, nothing renumbered).
    for _ in range(30):
        await move(d, status="done", before_id=c["id"])
        await move(d, status="done", after_id=b["id"])
    assert (await board_ids(client, project["id"]))["done"] == [b["id"], d["id"], c["id"], a["id"]]
    untouched = (await client.get(f"/api/tasks/{a['id']}")).json()
    assert untouched["version"] == 2  # created, moved once: other moves never rewrote it


async def test_move_checks_version_and_anchor(client):
    project = await create_project(client)
    a = await create_task(client, project["id"])
    b = await create_task(client, project["id"], status="done")
    foreign = await create_task(client, (await create_project(client))["id"])
    response = await client.post(f"/api/tasks/{a['id']}/move", json={"status": "done", "version": 7})
    assert response.status_code == 409
    assert response.json()["current"]["status"] == "todo"
    response = await client.post(f"/api/tasks/{a['id']}/move", json={"status": "todo", "before_id": b["id"]})
    assert response.status_code == 422
    assert "is in column done" in response.json()["detail"]
    response = await client.post(f"/api/tasks/{a['id']}/move", json={"status": "todo", "after_id": foreign["id"]})
    assert response.status_code == 422
    response = await client.post(f"/api/tasks/{a['id']}/move", json={"status": "todo", "before_id": 1, "index": 0})
    assert response.status_code == 422
    assert "at most one" in response.json()["detail"]


async def test_patch_status_moves_to_end_and_parent_cycles_are_refused(client):
    project = await create_project(client)
    parent = await create_task(client, project["id"], status="done")
    child = await create_task(client, project["id"], parent_id=parent["id"])
    response = await client.patch(f"/api/tasks/{child['id']}", json={"version": 1, "status": "done"})
    assert response.status_code == 200
    assert (await board_ids(client, project["id"]))["done"] == [parent["id"], child["id"]]
    response = await client.patch(f"/api/tasks/{parent['id']}", json={"version": 1, "parent_id": child["id"]})
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"]
    response = await client.patch(f"/api/tasks/{parent['id']}", json={"version": 1, "parent_id": parent["id"]})
    assert response.status_code == 422


async def test_board_uses_a_constant_number_of_queries(app, client):
    project = await create_project(client)
    engine = app.state.database.engine.sync_engine
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_):
        # The live stream's tailer and the run scheduler query in the background: not ours.
        background = "board_events.payload" in statement or "agent_runs.status =" in statement
        if statement != "BEGIN" and not background:
            statements.append(statement)

    async def queries_for_board() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert (await client.get(f"/api/projects/{project['id']}/board")).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    await create_task(client, project["id"])
    few = await queries_for_board()
    for status in ["todo", "in_progress", "needs_review", "done"] * 10:
        await create_task(client, project["id"], status=status)
    many = await queries_for_board()
    assert few == many == 5, statements  # event cursor, project, newest runs, tasks, dependency links
    board = (await client.get(f"/api/projects/{project['id']}/board")).json()
    assert [c["status"] for c in board["columns"]] == ["todo", "in_progress", "needs_review", "done"]
    assert [c["title"] for c in board["columns"]] == ["To Do", "Running", "Review", "Done"]
    assert [c["count"] for c in board["columns"]] == [11, 10, 10, 10]
    assert "description" not in board["columns"][0]["tasks"][0]
    assert board["last_event_id"] > 0


async def test_board_cards_match_the_task_api(client):
    """The board's cards are written by the database as JSON: they must say what the task API says."""
    from datetime import datetime

    from backend.board.schemas import BoardRead
    from backend.tasks.schemas import BoardTask

    project = await create_project(client)
    parent = await create_task(client, project["id"], title='Quotes " and \\ backslash', labels=['a "label"', "ünï ✓"])
    child = await create_task(
        client, project["id"], title="Emoji 🚀 and tab\tinside", parent_id=parent["id"], priority="urgent"
    )
    done = await create_task(client, project["id"], status="done", labels=[])
    response = await client.patch(f"/api/tasks/{done['id']}", json={"version": 1, "title": "Renamed"})
    assert response.status_code == 200, response.text

    board = (await client.get(f"/api/projects/{project['id']}/board")).json()
    BoardRead.model_validate(board)  # the shape the OpenAPI schema promises
    cards = {card["id"]: card for column in board["columns"] for card in column["tasks"]}
    assert set(cards) == {parent["id"], child["id"], done["id"]}
    for task_id, card in cards.items():
        task = (await client.get(f"/api/tasks/{task_id}")).json()
        assert set(card) == set(BoardTask.model_fields) | {"run"}
        assert card["run"] is None
        for field in BoardTask.model_fields:
            if field in ("created_at", "updated_at"):
                assert datetime.fromisoformat(card[field]) == datetime.fromisoformat(task[field]), field
                assert card[field].endswith("Z")
            else:
                assert card[field] == task[field], field
    assert cards[done["id"]]["version"] == 2 and cards[done["id"]]["title"] == "Renamed"

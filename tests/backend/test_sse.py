"""The live stream over a real socket (uvicorn on a free port)."""

from __future__ import annotations

import asyncio

import httpx

from tests.backend.factories import create_project, create_task
from tests.backend.sse import SSEReader


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_subscriber_sees_create_move_delete_in_order(live_server):
    hub = live_server.app.state.hub
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        project = await create_project(http)
        before = hub.subscriber_count
        async with http.stream("GET", "/api/events", params={"project_id": project["id"]}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SSEReader(response)
            await wait_for(lambda: hub.subscriber_count == before + 1)
            task = await create_task(http, project["id"])
            await http.post(f"/api/tasks/{task['id']}/move", json={"status": "done"})
            await http.delete(f"/api/tasks/{task['id']}")
            events = [await asyncio.wait_for(reader.next(), 5) for _ in range(3)]
        assert [e.event for e in events] == ["task.created", "task.moved", "task.deleted"]
        ids = [int(e.id) for e in events]
        assert ids == sorted(ids)
        assert [e.json["id"] for e in events] == ids
        assert events[1].json["payload"]["status"] == "done"
        assert events[2].json["payload"] == {
            "id": task["id"],
            "short_id": task["short_id"],
            "project_id": project["id"],
        }
        # A disconnected client leaves no subscription behind.
        await wait_for(lambda: hub.subscriber_count == before)


async def test_reconnect_with_last_event_id_gets_the_rest_exactly_once(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        project = await create_project(http)
        board = (await http.get(f"/api/projects/{project['id']}/board")).json()
        start = board["last_event_id"]
        tasks = [await create_task(http, project["id"], title=f"T{i}") for i in range(6)]

        received: list[int] = []
        headers = {"Last-Event-ID": str(start)}
        async with http.stream("GET", "/api/events", params={"project_id": project["id"]}, headers=headers) as response:
            reader = SSEReader(response)
            for _ in range(3):  # drop after event k = 3
                received.append(int((await asyncio.wait_for(reader.next(), 5)).id))
        k = received[-1]
        more = [await create_task(http, project["id"], title=f"U{i}") for i in range(2)]

        async with http.stream(
            "GET", "/api/events", params={"project_id": project["id"]}, headers={"Last-Event-ID": str(k)}
        ) as response:
            reader = SSEReader(response)
            rest = [await asyncio.wait_for(reader.next(), 5) for _ in range(5)]
            live_task = await create_task(http, project["id"], title="live")
            live = await asyncio.wait_for(reader.next(), 5)
        received += [int(e.id) for e in rest]
        assert len(received) == len(set(received)) == 8
        titles = [e.json["payload"]["title"] for e in rest] + [live.json["payload"]["title"]]
        assert titles == ["T3", "T4", "T5", "U0", "U1", "live"]
        assert live.json["payload"]["id"] == live_task["id"]
        assert {t["id"] for t in tasks + more} >= {e.json["payload"]["id"] for e in rest}

        # Browsers that cannot set the header use ?last_event_id=
        async with http.stream(
            "GET", "/api/events", params={"project_id": project["id"], "last_event_id": str(k)}
        ) as response:
            first = await asyncio.wait_for(SSEReader(response).next(), 5)
        assert first.json["payload"]["title"] == "T3"


async def test_project_filter_and_global_stream(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        mine = await create_project(http)
        other = await create_project(http)
        start = (await http.get(f"/api/projects/{mine['id']}/board")).json()["last_event_id"]
        await create_task(http, other["id"], title="not mine")
        await create_task(http, mine["id"], title="mine")
        async with http.stream(
            "GET", "/api/events", params={"project_id": mine["id"], "last_event_id": start}
        ) as response:
            event = await asyncio.wait_for(SSEReader(response).next(), 5)
        assert event.json["payload"]["title"] == "mine"
        async with http.stream("GET", "/api/events", params={"last_event_id": start}) as response:
            event = await asyncio.wait_for(SSEReader(response).next(), 5)
        assert event.json["payload"]["title"] == "not mine"


async def test_heartbeat_comments(live_server):
    # The test settings send a heartbeat every second (15 s by default).
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        async with http.stream("GET", "/api/events") as response:
            lines = response.aiter_lines()
            line = await asyncio.wait_for(lines.__anext__(), 5)
            while not line.startswith(":"):
                line = await asyncio.wait_for(lines.__anext__(), 5)
        assert line.startswith(": ping")


async def test_a_slow_subscriber_catches_up_from_the_log(live_server, monkeypatch):
    from backend.events import hub as hub_module

    hub = live_server.app.state.hub
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20) as http:
        project = await create_project(http)
        start = (await http.get(f"/api/projects/{project['id']}/board")).json()["last_event_id"]
        async with http.stream(
            "GET", "/api/events", params={"project_id": project["id"], "last_event_id": start}
        ) as response:
            reader = SSEReader(response)
            await wait_for(lambda: any(s.project_id == project["id"] for s in hub._subscriptions))
            subscription = next(s for s in hub._subscriptions if s.project_id == project["id"])
            for i in range(hub_module.SUBSCRIBER_QUEUE_LIMIT + 1):  # overflow its queue
                subscription.offer(hub_module.LiveEvent(10**12 + i, "task.updated", project["id"], {}, ""))
            assert subscription.overflowed
            made = [await create_task(http, project["id"], title=f"C{i}") for i in range(3)]
            got = [await asyncio.wait_for(reader.next(), 5) for _ in range(3)]
        assert [e.json["payload"]["id"] for e in got] == [t["id"] for t in made]

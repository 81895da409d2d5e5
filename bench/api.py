"""Backend benchmarks: task creation throughput, board latency, SSE fan-out."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime

import httpx

from .common import Row, Server, kanban_server, percentile, rss_mb

CREATE_TOTAL = 10_000
CREATE_CLIENTS = 8
BOARD_TASKS = 10_000
BOARD_SAMPLES = 60
SUBSCRIBERS = 200
FANOUT_EVENTS = 1_000
FANOUT_RATE = 100  # events per second, steady


async def _create_load(url: str, project_id: int, total: int, clients: int) -> float:
    """Requests per second for `total` task creations from `clients` concurrent clients."""
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def worker() -> None:
            for i in counter:
                response = await http.post("/api/tasks", json={"project_id": project_id, "title": f"Task {i}"})
                if response.status_code != 201:
                    raise RuntimeError(f"create failed: {response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return total / (time.perf_counter() - started)


async def _new_project(url: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/api/projects",
            json={"name": f"Bench {time.time_ns()}", "workspace_path": tempfile.mkdtemp(), "init_git": True},
        )
        response.raise_for_status()
        return response.json()["id"]


def bench_create(total: int = CREATE_TOTAL) -> list[Row]:
    with Server([sys.executable, "-m", "bench.minimal_app", "{port}", tempfile.mkdtemp()]) as minimal:
        baseline = asyncio.run(_create_load(minimal.url, 1, total, CREATE_CLIENTS))
    with kanban_server() as server:
        project_id = asyncio.run(_new_project(server.url))
        ours = asyncio.run(_create_load(server.url, project_id, total, CREATE_CLIENTS))
    ratio = ours / baseline
    return [
        Row("create tasks", f"{total:,} POST /api/tasks, {CREATE_CLIENTS} clients", f"{ours:,.0f} req/s"),
        Row("create tasks", "minimal FastAPI+SQLAlchemy insert, same load", f"{baseline:,.0f} req/s"),
        Row("create tasks", "ratio (ours / minimal)", f"{ratio:.2f}", "≥ 0.70", ratio >= 0.7),
    ]


def bench_board(tasks: int = BOARD_TASKS) -> list[Row]:
    with kanban_server() as server:
        project_id = asyncio.run(_new_project(server.url))
        asyncio.run(_create_load(server.url, project_id, tasks, CREATE_CLIENTS))
        timings = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            http.get(f"/api/projects/{project_id}/board").raise_for_status()  # warm up
            for _ in range(BOARD_SAMPLES):
                started = time.perf_counter()
                response = http.get(f"/api/projects/{project_id}/board")
                timings.append((time.perf_counter() - started) * 1000)
                assert sum(c["count"] for c in response.json()["columns"]) == tasks
    p95 = percentile(timings, 95)
    return [
        Row("board", f"GET board of {tasks:,} tasks, p50", f"{percentile(timings, 50):.0f} ms"),
        Row("board", f"GET board of {tasks:,} tasks, p95", f"{p95:.0f} ms", "< 250 ms", p95 < 250),
    ]


async def _subscriber(port: int, project_id: int, ready: asyncio.Event, ids: set, latencies: list, done: asyncio.Event):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        f"GET /api/events?project_id={project_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # response headers
    ready.set()
    try:
        while len(ids) < FANOUT_EVENTS:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                received = time.time()
                envelope = json.loads(line[5:])
                if envelope["type"] == "task.created":
                    ids.add(envelope["id"])
                    created = datetime.fromisoformat(envelope["created_at"]).timestamp()
                    latencies.append((received - created) * 1000)
    finally:
        writer.close()
        done.set()


async def _fanout(server: Server, project_id: int) -> tuple[list[float], int, float]:
    rss_before = rss_mb(server.process.pid)
    received: list[set] = [set() for _ in range(SUBSCRIBERS)]
    latencies: list[float] = []
    readies = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    dones = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    tasks = [
        asyncio.create_task(_subscriber(server.port, project_id, readies[i], received[i], latencies, dones[i]))
        for i in range(SUBSCRIBERS)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(1)
    rss_per_subscriber = (rss_mb(server.process.pid) - rss_before) / SUBSCRIBERS
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        started = time.perf_counter()
        for i in range(FANOUT_EVENTS):
            await http.post("/api/tasks", json={"project_id": project_id, "title": f"Fan-out {i}"})
            delay = started + (i + 1) / FANOUT_RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
    try:
        await asyncio.wait_for(asyncio.gather(*(d.wait() for d in dones)), 30)
    except TimeoutError:
        pass
    for task in tasks:
        task.cancel()
    lost = sum(FANOUT_EVENTS - len(ids) for ids in received)
    return latencies, lost, rss_per_subscriber


def bench_fanout() -> list[Row]:
    with kanban_server() as server:
        project_id = asyncio.run(_new_project(server.url))
        latencies, lost, rss_per_subscriber = asyncio.run(_fanout(server, project_id))
    p99 = percentile(latencies, 99)
    label = f"{SUBSCRIBERS} subscribers, {FANOUT_EVENTS:,} events at {FANOUT_RATE}/s"
    return [
        Row("SSE fan-out", f"{label}: latency p50", f"{percentile(latencies, 50):.1f} ms"),
        Row("SSE fan-out", f"{label}: latency p99", f"{p99:.1f} ms", "< 250 ms", p99 < 250),
        Row("SSE fan-out", "events lost", f"{lost}", "0", lost == 0),
        Row("SSE fan-out", "server RSS per subscriber", f"{rss_per_subscriber * 1024:.0f} KiB"),
    ]


def run(quick: bool = False) -> list[Row]:
    rows = bench_create(2_000 if quick else CREATE_TOTAL)
    rows += bench_board(2_000 if quick else BOARD_TASKS)
    rows += bench_fanout()
    return rows

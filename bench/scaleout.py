"""Scale-out on PostgreSQL: 3 API processes and 3 workers on this machine.

30 concurrent runs × 300 events, each queued through one API process and followed live
through another: SSE delivery p99 across processes, runs per minute against one `kanban serve`
(SQLite, agents in-process, the same total concurrency) in the same session, and the takeover
time after kill -9 of the worker that runs a run (p50 / max over 5 kills). Skipped when no
PostgreSQL answers at KANBAN_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1/test).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.fixtures.fake_anthropic import Turn

from .common import REPO, Row, Server, kanban_server, percentile
from .runs import _setup, _stream_latencies, fake_api_process

PROCESSES = 3
RUNS = 30
EVENTS_PER_RUN = 300
RUNS_PER_WORKER = 10  # 30 runs at once over 3 workers
KILLS = 5
POSTGRES_URL = os.environ.get("KANBAN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _sql(statement: str) -> None:
    import asyncpg

    async def execute() -> None:
        connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"), timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute())


def _marker(phase: str, i: int) -> str:
    return f"[{phase}-{i}]"


# A run of 300 instant events takes seconds; a stream still open after this has hung.
STREAM_TIMEOUT_SECONDS = 300


async def _follow(url: str, run_id: int, latencies: list[float]) -> int | None:
    """The text events received on a run's stream, or None: it did not end in time."""
    try:
        return await asyncio.wait_for(_stream_latencies(url, run_id, latencies), STREAM_TIMEOUT_SECONDS)
    except TimeoutError:
        return None


async def _runs_followed_elsewhere(urls: list[str], phase: str) -> tuple[list[float], int, float, list[str]]:
    """30 runs, run i queued through urls[i % n] and followed through urls[(i + 1) % n]:
    delivery latencies of the live text events, events lost, the seconds until all ended, and
    what went wrong (runs that did not succeed, streams that missed events or did not end)."""
    latencies: list[float] = []
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=urls[0], timeout=60) as first:
        project_id = await _setup(first)
    async with httpx.AsyncClient(timeout=60) as http:
        streams, run_ids = [], []
        for i in range(RUNS):
            queue_url, follow_url = urls[i % len(urls)], urls[(i + 1) % len(urls)]
            task = (
                await http.post(f"{queue_url}/api/tasks", json={"project_id": project_id, "title": f"Run {i}"})
            ).json()
            run = (
                await http.post(f"{queue_url}/api/tasks/{task['id']}/runs", json={"instructions": _marker(phase, i)})
            ).json()
            run_ids.append(run["id"])
            streams.append(asyncio.create_task(_follow(follow_url, run["id"], latencies)))
        received = await asyncio.gather(*streams)
        elapsed = time.perf_counter() - started
        problems = []
        for i, (run_id, count) in enumerate(zip(run_ids, received)):
            run = (await http.get(f"{urls[0]}/api/runs/{run_id}")).json()
            if run["status"] != "succeeded":
                problems.append(f"run {run_id} {run['status']} (owner {run['owner']}): {run['error']}")
            if count is None:
                problems.append(f"run {run_id}'s stream on {urls[(i + 1) % len(urls)]} did not end")
            elif count != EVENTS_PER_RUN:
                problems.append(f"run {run_id}'s stream had {count} of {EVENTS_PER_RUN} text events")
    lost = sum(EVENTS_PER_RUN - (count or 0) for count in received)
    return latencies, lost, elapsed, problems


async def _takeover_seconds(api: str, workers: dict[str, subprocess.Popen], start_worker, marker: str) -> float:
    """Kill -9 the worker running a hanging run; seconds until another worker has started it again."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        project_id = await _setup(http)
        task = (await http.post("/api/tasks", json={"project_id": project_id, "title": "Takeover"})).json()
        run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
        deadline = time.monotonic() + 120
        while True:
            current = (await http.get(f"/api/runs/{run['id']}")).json()
            if current["owner"] and current["session_id"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run['id']} did not start in 120 s: {current}")
            await asyncio.sleep(0.1)
        owner = current["owner"]
        killed = time.perf_counter()
        workers[owner].send_signal(signal.SIGKILL)
        workers[owner].wait(10)
        while True:
            current = (await http.get(f"/api/runs/{run['id']}")).json()
            if current["starts"] >= 2:  # claimed again, by another worker
                took = time.perf_counter() - killed
                break
            if time.perf_counter() - killed > 120:
                raise RuntimeError(f"run {run['id']} was not taken over in 120 s: {current}")
            await asyncio.sleep(0.1)
        await http.post(f"/api/runs/{run['id']}/cancel")
        start_worker(owner)  # back to three
        return took


def run(quick: bool = False) -> list[Row]:
    try:
        _sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return [Row("scale-out", "skipped", f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__})")]
    kills = 2 if quick else KILLS
    text = [Turn.text_blocks(EVENTS_PER_RUN)]
    scripts = {
        **{_marker("cluster", i): text for i in range(RUNS)},
        **{_marker("single", i): text for i in range(RUNS)},
        **{_marker("takeover", i): [Turn.hang(600)] for i in range(kills)},
    }
    schema = f"kanban_bench_{uuid.uuid4().hex[:10]}"
    _sql(f'CREATE SCHEMA "{schema}"')
    data_dir = tempfile.mkdtemp(prefix="kanban-bench-cluster-")
    logs = Path(tempfile.mkdtemp(prefix="kanban-bench-cluster-logs-"))
    try:
        with fake_api_process(scripts) as env, ExitStack() as stack:
            shared = {
                **env,
                "KANBAN_DATABASE_URL": POSTGRES_URL,
                "KANBAN_DATABASE_SCHEMA": schema,
                "KANBAN_DATA_DIR": data_dir,
                "KANBAN_LOG_LEVEL": "warning",
            }
            apis = [
                stack.enter_context(
                    Server(
                        [sys.executable, "-m", "backend.cli", "serve", "--port", "{port}"],
                        env={**shared, "KANBAN_RUN_AGENTS": "false"},
                        log_path=logs / f"api-{i}.log",
                        keep_log=True,
                    )
                )
                for i in range(PROCESSES)
            ]
            workers: dict[str, subprocess.Popen] = {}

            def start_worker(worker_id: str) -> None:
                worker_env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
                worker_env.update(
                    shared,
                    KANBAN_API_URL=apis[0].url,
                    KANBAN_MAX_CONCURRENT_RUNS=str(RUNS_PER_WORKER),
                    KANBAN_WORKER_HEARTBEAT_SECONDS="1",
                    KANBAN_WORKER_LEASE_SECONDS="4",
                )
                with (logs / f"{worker_id}.log").open("ab") as log:
                    workers[worker_id] = subprocess.Popen(
                        [sys.executable, "-m", "backend.cli", "worker", "--id", worker_id],
                        env=worker_env,
                        cwd=REPO,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                        start_new_session=True,  # its own scheduling group, as under systemd
                    )

            for i in range(PROCESSES):
                start_worker(f"bench-worker-{i}")
            try:
                urls = [api.url for api in apis]
                latencies, lost, cluster_seconds, failed = asyncio.run(_runs_followed_elsewhere(urls, "cluster"))
                takeovers = [
                    asyncio.run(_takeover_seconds(urls[0], workers, start_worker, _marker("takeover", i)))
                    for i in range(kills)
                ]
            finally:
                for process in workers.values():
                    if process.poll() is None:
                        process.terminate()
                for process in workers.values():
                    process.wait(30)
        with fake_api_process(scripts) as env:
            total = str(PROCESSES * RUNS_PER_WORKER)
            with kanban_server(**env, KANBAN_MAX_CONCURRENT_RUNS=total, KANBAN_LOG_LEVEL="warning") as server:
                single_latencies, single_lost, single_seconds, single_failed = asyncio.run(
                    _runs_followed_elsewhere([server.url], "single")
                )
    finally:
        _sql(f'DROP SCHEMA "{schema}" CASCADE')
    if not failed and not single_failed:
        shutil.rmtree(logs, ignore_errors=True)
    p99 = percentile(latencies, 99)
    per_minute = RUNS / cluster_seconds * 60
    single_per_minute = RUNS / single_seconds * 60
    return [
        Row(
            "scale-out",
            f"{PROCESSES} API + {PROCESSES} workers, {RUNS} runs × {EVENTS_PER_RUN} followed through another API: "
            "SSE delivery p50",
            f"{percentile(latencies, 50):.1f} ms",
        ),
        Row("scale-out", "SSE delivery p99 across processes", f"{p99:.1f} ms", "< 250 ms", p99 < 250),
        Row(
            "scale-out",
            f"the same {RUNS} runs in one kanban serve (SQLite, {total} at once): SSE delivery p50 / p99",
            f"{percentile(single_latencies, 50):.1f} / {percentile(single_latencies, 99):.1f} ms",
        ),
        Row(
            "scale-out", "events lost: cluster, one server", f"{lost}, {single_lost}", "0, 0", lost == single_lost == 0
        ),
        Row(
            "scale-out",
            "problems (runs not succeeded, streams short or not ended): cluster, one server",
            f"{len(failed)}, {len(single_failed)}"
            + (
                f" ({'; '.join((failed + single_failed)[:3])[:300]}; logs in {logs})" if failed or single_failed else ""
            ),
            "0, 0",
            not failed and not single_failed,
        ),
        Row(
            "scale-out",
            f"runs per minute: cluster vs one kanban serve (SQLite, {total} at once)",
            f"{per_minute:.1f} vs {single_per_minute:.1f}",
        ),
        Row(
            "scale-out",
            f"takeover after kill -9 (lease 4 s, heartbeat 1 s): p50 / max of {kills}",
            f"{statistics.median(takeovers):.1f} s / {max(takeovers):.1f} s",
            "≤ 40 s",
            max(takeovers) <= 40,
        ),
    ]

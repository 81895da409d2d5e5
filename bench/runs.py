"""Agent-run benchmarks: orchestrator overhead on a 5,000-message run, live delivery under 10 runs.

Runs the real Claude Code CLI bundled with the SDK against the fake Messages API the tests use.
The fake API stands in for a remote service, so it runs in a process of its own: sharing the
measuring process's interpreter would delay the clients that take the timings.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx
from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, query

from tests.fixtures.fake_anthropic import BUNDLED_CLI, FakeAnthropic, Turn

from .common import Row, kanban_server, percentile

MESSAGES = 5_000
CONCURRENT_RUNS = 10
MESSAGES_PER_CONCURRENT_RUN = 300
REPEATS = 3


def _serve_fake_api(scripts: dict[str, list[Turn]], connection) -> None:
    os.setsid()  # a session, so a scheduling group, of its own: it stands for another machine
    with FakeAnthropic(scripts=scripts) as fake:
        connection.send(fake.env(max_retries=0))
        threading.Event().wait()  # until terminated


@contextmanager
def fake_api_process(scripts: dict[str, list[Turn]]) -> Iterator[dict[str, str]]:
    """The fake Messages API in its own process; yields the CLI's env that points at it."""
    context = multiprocessing.get_context("fork")  # the scripts hold locks: copied, not pickled
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve_fake_api, args=(scripts, sender), daemon=True)
    process.start()
    try:
        yield receiver.recv()
    finally:
        process.terminate()
        process.join(10)


def _concurrent_marker(i: int) -> str:
    return f"[concurrent-{i}]"


async def _bare_sdk(env: dict[str, str], marker: str) -> tuple[float, int]:
    options = ClaudeAgentOptions(cli_path=BUNDLED_CLI, cwd=tempfile.mkdtemp(), env=env, permission_mode="acceptEdits")
    started = time.perf_counter()
    count = 0
    async for message in query(prompt=f"Stream {marker}", options=options):
        if isinstance(message, AssistantMessage):
            count += len(message.content)
    return time.perf_counter() - started, count


async def _setup(http: httpx.AsyncClient) -> int:
    project = (
        await http.post(
            "/api/projects",
            json={"name": f"Bench {time.time_ns()}", "workspace_path": tempfile.mkdtemp(), "init_git": True},
        )
    ).json()
    return project["id"]


async def _run_to_end(http: httpx.AsyncClient, project_id: int, marker: str) -> tuple[int, float]:
    """Queue a run and wait for its `run.finished` on the board's live stream, as the board does."""
    task = (await http.post("/api/tasks", json={"project_id": project_id, "title": "Stream"})).json()
    async with http.stream("GET", "/api/events", params={"project_id": project_id}, timeout=None) as stream:
        started = time.perf_counter()
        run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                envelope = json.loads(line[5:])
                if envelope["type"] == "run.finished" and envelope["payload"]["id"] == run["id"]:
                    return run["id"], time.perf_counter() - started
    raise RuntimeError("the board's stream ended before the run finished")


async def _count_text_events(http: httpx.AsyncClient, run_id: int) -> tuple[int, list[int]]:
    texts, seqs, after = 0, [], 0
    while True:
        page = (await http.get(f"/api/runs/{run_id}/events", params={"after_seq": after, "limit": 1000})).json()
        for event in page["items"]:
            seqs.append(event["seq"])
            texts += event["type"] == "text"
        if page["next_after_seq"] is None:
            return texts, seqs
        after = page["next_after_seq"]


async def _orchestrated(url: str, marker: str) -> tuple[float, int, bool]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        project_id = await _setup(http)
        run_id, elapsed = await _run_to_end(http, project_id, marker)
        texts, seqs = await _count_text_events(http, run_id)
    return elapsed, texts, seqs == list(range(1, len(seqs) + 1))


async def _stream_latencies(url: str, run_id: int, latencies: list[float]) -> int:
    """Follow a run's live log; the delivery latency of each text event written after subscribing."""
    received = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        async with http.stream("GET", f"/api/runs/{run_id}/stream") as response:
            subscribed = time.time()
            event_name = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event_name = line[6:].strip()
                elif line.startswith("data:"):
                    if event_name == "end":
                        return received
                    data = json.loads(line[5:])
                    if data["type"] == "text":
                        received += 1
                        written = datetime.fromisoformat(data["created_at"]).timestamp()
                        if written >= subscribed:  # older ones are replay, not live delivery
                            latencies.append((time.time() - written) * 1000)
    return received


async def _concurrent(url: str) -> tuple[list[float], int]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        project_id = await _setup(http)
        streams = []
        for i in range(CONCURRENT_RUNS):
            task = (await http.post("/api/tasks", json={"project_id": project_id, "title": f"Concurrent {i}"})).json()
            instructions = {"instructions": _concurrent_marker(i)}
            run_id = (await http.post(f"/api/tasks/{task['id']}/runs", json=instructions)).json()["id"]
            # Subscribed as each run is queued, as the board's log panel would be.
            streams.append(asyncio.create_task(_stream_latencies(url, run_id, latencies)))
        received = await asyncio.gather(*streams)
    lost = CONCURRENT_RUNS * MESSAGES_PER_CONCURRENT_RUN - sum(received)
    return latencies, lost


def run(quick: bool = False) -> list[Row]:
    global MESSAGES
    if quick:
        MESSAGES = 1_000
    repeats = 1 if quick else REPEATS
    scripts = {
        **{f"[bare-{i}]": [Turn.text_blocks(MESSAGES)] for i in range(repeats)},
        **{f"[orchestrated-{i}]": [Turn.text_blocks(MESSAGES)] for i in range(repeats)},
        **{_concurrent_marker(i): [Turn.text_blocks(MESSAGES_PER_CONCURRENT_RUN)] for i in range(CONCURRENT_RUNS)},
    }
    bare_times, our_times, lost, gapless = [], [], 0, True
    with fake_api_process(scripts) as env:
        # The bare runs' CLI has the server's CPU priority; so has the orchestrated one here.
        with kanban_server(**env, KANBAN_AGENT_NICE="0") as server:
            for i in range(repeats):  # alternating, so both see the same machine
                bare_seconds, bare_count = asyncio.run(_bare_sdk(env, f"[bare-{i}]"))
                ours_seconds, text_events, run_gapless = asyncio.run(_orchestrated(server.url, f"[orchestrated-{i}]"))
                bare_times.append(bare_seconds)
                our_times.append(ours_seconds)
                lost += MESSAGES - text_events
                gapless = gapless and run_gapless
        # Ten agents at once, with the default settings but the concurrency limit.
        with kanban_server(**env, KANBAN_MAX_CONCURRENT_RUNS=str(CONCURRENT_RUNS)) as server:
            latencies, lost_concurrent = asyncio.run(_concurrent(server.url))
    bare_seconds, ours_seconds = statistics.median(bare_times), statistics.median(our_times)
    ratio = ours_seconds / bare_seconds
    p99 = percentile(latencies, 99)
    of = f"median of {repeats}" if repeats > 1 else "one run"
    return [
        Row(
            "agent run",
            f"{MESSAGES:,} messages via bare claude_agent_sdk.query(), {of}",
            f"{bare_seconds:.2f} s ({bare_count:,} blocks)",
        ),
        Row(
            "agent run",
            f"{MESSAGES:,} messages through the orchestrator (queue→done, agent nice 0), {of}",
            f"{ours_seconds:.2f} s",
        ),
        Row("agent run", "ratio (orchestrator / bare)", f"{ratio:.2f}", "≤ 1.25", ratio <= 1.25),
        Row(
            "agent run",
            "events lost (gapless seq)",
            f"{lost} ({'gapless' if gapless else 'GAPS'})",
            "0",
            lost == 0 and gapless,
        ),
        Row(
            "agent run",
            f"{CONCURRENT_RUNS} concurrent runs × {MESSAGES_PER_CONCURRENT_RUN}: SSE delivery p50",
            f"{percentile(latencies, 50):.1f} ms",
        ),
        Row(
            "agent run", f"{CONCURRENT_RUNS} concurrent runs: SSE delivery p99", f"{p99:.1f} ms", "< 250 ms", p99 < 250
        ),
        Row(
            "agent run",
            f"{CONCURRENT_RUNS} concurrent runs: events lost",
            f"{lost_concurrent}",
            "0",
            lost_concurrent == 0,
        ),
    ]

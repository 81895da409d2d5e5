"""Agent-run benchmarks: orchestrator overhead on a 5,000-message run, live delivery under 10 runs.

Runs the real Claude Code CLI bundled with the SDK against the fake Messages API the tests use.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import datetime

import httpx
from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, query

from tests.fixtures.fake_anthropic import BUNDLED_CLI, FakeAnthropic, Turn

from .common import Row, kanban_server, percentile

MESSAGES = 5_000
CONCURRENT_RUNS = 10
MESSAGES_PER_CONCURRENT_RUN = 300


async def _bare_sdk(fake: FakeAnthropic, marker: str) -> tuple[float, int]:
    options = ClaudeAgentOptions(cli_path=BUNDLED_CLI, cwd=tempfile.mkdtemp(), env=fake.env(max_retries=0), permission_mode="acceptEdits")
    started = time.perf_counter()
    count = 0
    async for message in query(prompt=f"Stream {marker}", options=options):
        if isinstance(message, AssistantMessage):
            count += len(message.content)
    return time.perf_counter() - started, count


async def _setup(http: httpx.AsyncClient) -> int:
    project = (await http.post("/api/projects", json={"name": f"Bench {time.time_ns()}", "workspace_path": tempfile.mkdtemp(), "init_git": True})).json()
    return project["id"]


async def _run_to_end(http: httpx.AsyncClient, project_id: int, fake: FakeAnthropic, turn: Turn) -> tuple[int, float]:
    task = (await http.post("/api/tasks", json={"project_id": project_id, "title": "Stream"})).json()
    marker = f"[{task['short_id']}]"
    fake.add_script(marker, [turn])
    started = time.perf_counter()
    run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    while (await http.get(f"/api/runs/{run['id']}")).json()["status"] not in ("succeeded", "failed", "cancelled"):
        await asyncio.sleep(0.05)
    return run["id"], time.perf_counter() - started


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


async def _orchestrated(url: str, fake: FakeAnthropic) -> tuple[float, int, bool]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        project_id = await _setup(http)
        run_id, elapsed = await _run_to_end(http, project_id, fake, Turn.text_blocks(MESSAGES))
        texts, seqs = await _count_text_events(http, run_id)
    return elapsed, texts, seqs == list(range(1, len(seqs) + 1))


async def _stream_latencies(url: str, run_id: int, latencies: list[float]) -> int:
    received = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        async with http.stream("GET", f"/api/runs/{run_id}/stream") as response:
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
                        latencies.append((time.time() - datetime.fromisoformat(data["created_at"]).timestamp()) * 1000)
    return received


async def _concurrent(url: str, fake: FakeAnthropic) -> tuple[list[float], int]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        project_id = await _setup(http)
        runs = []
        for i in range(CONCURRENT_RUNS):
            task = (await http.post("/api/tasks", json={"project_id": project_id, "title": f"Concurrent {i}"})).json()
            marker = f"[{task['short_id']}]"
            fake.add_script(marker, [Turn.text_blocks(MESSAGES_PER_CONCURRENT_RUN)])
            runs.append((await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()["id"])
        received = await asyncio.gather(*(_stream_latencies(url, run_id, latencies) for run_id in runs))
    lost = CONCURRENT_RUNS * MESSAGES_PER_CONCURRENT_RUN - sum(received)
    return latencies, lost


def run(quick: bool = False) -> list[Row]:
    global MESSAGES
    if quick:
        MESSAGES = 1_000
    with FakeAnthropic(scripts={"[bare]": [Turn.text_blocks(MESSAGES)]}) as fake:
        bare_seconds, bare_count = asyncio.run(_bare_sdk(fake, "[bare]"))
        env = fake.env(max_retries=0)
        with kanban_server(**env, KANBAN_MAX_CONCURRENT_RUNS=str(CONCURRENT_RUNS)) as server:
            ours_seconds, text_events, gapless = asyncio.run(_orchestrated(server.url, fake))
            latencies, lost_concurrent = asyncio.run(_concurrent(server.url, fake))
    ratio = ours_seconds / bare_seconds
    lost = MESSAGES - text_events
    p99 = percentile(latencies, 99)
    return [
        Row("agent run", f"{MESSAGES:,} messages via bare claude_agent_sdk.query()", f"{bare_seconds:.2f} s ({bare_count:,} blocks)"),
        Row("agent run", f"{MESSAGES:,} messages through the orchestrator (queue→done)", f"{ours_seconds:.2f} s"),
        Row("agent run", "ratio (orchestrator / bare)", f"{ratio:.2f}", "≤ 1.25", ratio <= 1.25),
        Row("agent run", "events lost (gapless seq)", f"{lost} ({'gapless' if gapless else 'GAPS'})", "0", lost == 0 and gapless),
        Row("agent run", f"{CONCURRENT_RUNS} concurrent runs × {MESSAGES_PER_CONCURRENT_RUN}: SSE delivery p50", f"{percentile(latencies, 50):.1f} ms"),
        Row("agent run", f"{CONCURRENT_RUNS} concurrent runs: SSE delivery p99", f"{p99:.1f} ms", "< 250 ms", p99 < 250),
        Row("agent run", f"{CONCURRENT_RUNS} concurrent runs: events lost", f"{lost_concurrent}", "0", lost_concurrent == 0),
    ]

"""Workflows: how fast a chain of steps hands over from one step to the next.

A template in a temporary project's `.kanban/workflows/chain.yaml` lays out a chain of agent
steps, each needing the one before, all `review: auto`; the fake Messages API (a process of
its own, as in bench/runs.py) answers every run at once with a short text. A `kanban serve`
subprocess on SQLite runs it with the real Claude Code CLI. Measured:

- per hand-over, from the server's own timestamps: a step's run finished (`finished_at`) → the
  next step's run started (`started_at`), split into the step accepted (its card moved to Done:
  merge and done), the next run queued (`created_at`: wake, start once unblocked) and claimed;
- the workflow's wall time (start request → its card in Done), against the same number of bare
  runs of plain tasks, one after another, in the same server (create the task, run it, wait for
  `run.finished` on the board's stream, approve): the difference per step is what a workflow adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from .common import Row, kanban_server, percentile
from .runs import fake_api_process

SECTION = "workflows"
STEPS = 20
QUICK_STEPS = 5
TARGET_P95_MS = 500


def chain_template(steps: int) -> str:
    lines = ["name: chain", f"title: A chain of {steps} instant steps", "steps:"]
    for i in range(1, steps + 1):
        lines += [f"  - id: s{i:02d}", f"    title: Step {i}", '    prompt: "Answer at once."', "    review: auto"]
        if i > 1:
            lines.append(f"    needs: [s{i - 1:02d}]")
    return "\n".join(lines) + "\n"


def _at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def _project(http: httpx.AsyncClient, steps: int) -> dict[str, Any]:
    workspace = Path(tempfile.mkdtemp(prefix="kanban-bench-wf-"))
    folder = workspace / ".kanban" / "workflows"
    folder.mkdir(parents=True)
    (folder / "chain.yaml").write_text(chain_template(steps))
    # init_git commits the template: the base branch's checkout stays clean for the merges.
    response = await http.post(
        "/api/projects", json={"name": f"Bench {time.time_ns()}", "workspace_path": str(workspace), "init_git": True}
    )
    response.raise_for_status()
    return response.json()


class BoardEvents:
    """The project's board events as they arrive, kept for the timings afterwards."""

    def __init__(self, http: httpx.AsyncClient, project_id: int) -> None:
        self.http, self.project_id = http, project_id
        self.seen: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BoardEvents:
        self._task = asyncio.create_task(self._follow())
        await asyncio.wait_for(self._ready.wait(), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _follow(self) -> None:
        params = {"project_id": self.project_id}
        async with self.http.stream("GET", "/api/events", params=params, timeout=None) as stream:
            self._ready.set()
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    async with self._arrived:
                        self.seen.append(json.loads(line[5:]))
                        self._arrived.notify_all()

    async def wait_for(self, predicate, timeout: float = 120) -> dict[str, Any]:
        """The first event (seen so far or to come) that fits."""
        async with self._arrived:
            found: list[dict[str, Any]] = []

            def fits() -> bool:
                found[:] = [event for event in self.seen if predicate(event)][:1]
                return bool(found)

            await asyncio.wait_for(self._arrived.wait_for(fits), timeout)
            return found[0]


def _moved_to_done(task_id: int):
    return lambda e: e["type"] == "task.moved" and e["payload"]["id"] == task_id and e["payload"]["status"] == "done"


async def _bare_runs(http: httpx.AsyncClient, project_id: int, count: int) -> tuple[float, list[dict[str, Any]]]:
    """`count` plain tasks one after another: create, run, wait for the run's end, approve.
    The wall time, and the runs."""
    runs = []
    async with BoardEvents(http, project_id) as events:
        started = time.perf_counter()
        for i in range(count):
            task = (await http.post("/api/tasks", json={"project_id": project_id, "title": f"Bare {i}"})).json()
            run = (await http.post(f"/api/tasks/{task['id']}/runs", json={})).json()
            finished = await events.wait_for(
                lambda e, run_id=run["id"]: e["type"] == "run.finished" and e["payload"]["id"] == run_id
            )
            approved = await http.post(f"/api/tasks/{task['id']}/approve")
            if approved.status_code != 200 or approved.json()["status"] != "done":
                raise RuntimeError(f"approving a bare run's task failed: {approved.status_code} {approved.text}")
            runs.append(finished["payload"])
        return time.perf_counter() - started, runs


def _in_runs(runs: list[dict[str, Any]]) -> float:
    """Seconds the runs took, claimed to finished (the agent: mostly the CLI's start)."""
    return sum(_at(run["finished_at"]) - _at(run["started_at"]) for run in runs)


async def _workflow(http: httpx.AsyncClient, project_id: int) -> tuple[float, dict[str, Any], list[dict[str, Any]]]:
    """The chain, start request to its card in Done; the workflow and the events it made."""
    async with BoardEvents(http, project_id) as events:
        started = time.perf_counter()
        response = await http.post("/api/workflows", json={"project_id": project_id, "template": "chain"})
        if response.status_code != 201:
            raise RuntimeError(f"starting the workflow failed: {response.status_code} {response.text}")
        workflow = response.json()
        await events.wait_for(_moved_to_done(workflow["parent_task_id"]), timeout=60 + 30 * len(workflow["steps"]))
        elapsed = time.perf_counter() - started
        return elapsed, (await http.get(f"/api/workflows/{workflow['id']}")).json(), list(events.seen)


async def _step_runs(
    http: httpx.AsyncClient, workflow: dict[str, Any], events: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], float]]:
    """Each step's run, and when its card moved to Done."""
    runs = []
    for step in workflow["steps"]:
        (run,) = (await http.get(f"/api/tasks/{step['task_id']}/runs")).json()  # one run per step
        done = next(e for e in events if _moved_to_done(step["task_id"])(e))
        runs.append((run, _at(done["created_at"])))
    return runs


def _handovers(runs: list[tuple[dict[str, Any], float]]) -> list[dict[str, float]]:
    """Per hand-over (ms): finished → accepted (card in Done) → next queued → next started."""
    gaps = []
    for (run, done_at), (following, _) in zip(runs, runs[1:], strict=False):
        finished, queued, started = _at(run["finished_at"]), _at(following["created_at"]), _at(following["started_at"])
        gaps.append(
            {
                "handover": (started - finished) * 1000,
                "accept": (done_at - finished) * 1000,
                "queue": (queued - done_at) * 1000,
                "claim": (started - queued) * 1000,
            }
        )
    return gaps


@dataclass
class Figures:
    bare_seconds: float
    bare_in_runs: float
    workflow_seconds: float
    workflow_in_runs: float
    gaps: list[dict[str, float]]
    load_at_end: float


async def _measure(url: str, steps: int) -> Figures:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        warm = await _project(http, steps)
        await _bare_runs(http, warm["id"], 1)  # the first run's start-up costs are no one's overhead
        bare_project = await _project(http, steps)
        bare_seconds, bare_runs = await _bare_runs(http, bare_project["id"], steps)
        chain_project = await _project(http, steps)
        workflow_seconds, workflow, events = await _workflow(http, chain_project["id"])
        if workflow["status"] != "done":
            raise RuntimeError(f"the workflow ended {workflow['status']}: {workflow}")
        step_runs = await _step_runs(http, workflow, events)
        return Figures(
            bare_seconds,
            _in_runs(bare_runs),
            workflow_seconds,
            _in_runs([run for run, _ in step_runs]),
            _handovers(step_runs),
            os.getloadavg()[0],
        )


def run(quick: bool = False) -> list[Row]:
    steps = QUICK_STEPS if quick else STEPS
    load_at_start = os.getloadavg()[0]
    with fake_api_process({}) as env:  # every run: the default short answer at once
        with kanban_server(**env) as server:
            f = asyncio.run(_measure(server.url, steps))
    handovers = [gap["handover"] for gap in f.gaps]
    p95 = percentile(handovers, 95)
    per_step_ms = (f.workflow_seconds - f.bare_seconds) / steps * 1000
    # The same without the runs themselves, whose time (the CLI starting) varies by more
    # than the difference on a busy machine.
    outside_ms = ((f.workflow_seconds - f.workflow_in_runs) - (f.bare_seconds - f.bare_in_runs)) / steps * 1000

    def median(part: str) -> float:
        return statistics.median(gap[part] for gap in f.gaps)

    return [
        Row(
            SECTION,
            f"chain of {steps}: {len(f.gaps)} hand-overs, run finished → next run started, p50",
            f"{percentile(handovers, 50):.0f} ms",
        ),
        Row(
            SECTION,
            f"chain of {steps}: hand-over p95 (max)",
            f"{p95:.0f} ms ({max(handovers):.0f} ms)",
            f"< {TARGET_P95_MS} ms",
            p95 < TARGET_P95_MS,
        ),
        Row(
            SECTION,
            "hand-over medians: finished → step done (accept, merge) / → next queued / → claimed",
            f"{median('accept'):.0f} / {median('queue'):.0f} / {median('claim'):.0f} ms",
        ),
        Row(
            SECTION,
            f"chain of {steps}: workflow wall time (start → its card done; in runs)",
            f"{f.workflow_seconds:.2f} s ({f.workflow_in_runs:.2f} s)",
        ),
        Row(
            SECTION,
            f"{steps} bare runs one after another (create, run, approve; in runs)",
            f"{f.bare_seconds:.2f} s ({f.bare_in_runs:.2f} s)",
        ),
        Row(SECTION, "workflow overhead per step ((workflow − bare) / steps)", f"{per_step_ms:.0f} ms"),
        Row(SECTION, "the same, outside the runs (claimed → finished left out)", f"{outside_ms:.0f} ms"),
        Row(SECTION, "load average (1 min) at start → end", f"{load_at_start:.1f} → {f.load_at_end:.1f}"),
    ]

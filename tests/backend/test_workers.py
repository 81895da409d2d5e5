"""Scale-out on PostgreSQL: API processes and `kanban worker` processes on one database.

Real processes (`kanban serve` with agents off, `kanban worker`), the real Claude CLI against
the fake Messages API, real git repositories. Leases are short here (1 s heartbeat, 4 s lease)
so takeovers happen within seconds. The lease and fencing rules themselves are checked on both
databases without processes at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from backend.config import Settings
from backend.db import Database
from backend.models import AgentRun
from backend.runs import leases
from backend.runs import service as run_service
from backend.runs.leases import Lease, LeaseLost, WorkerIdentity
from tests.backend.factories import create_project, create_task
from tests.backend.sse import SSEReader
from tests.backend.test_runs import all_events, wait_for_status
from tests.conftest import DATABASE_KINDS, free_port, make_settings
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

HEARTBEAT_SECONDS = 1.0
LEASE_SECONDS = 4.0


class Cluster:
    """API processes and workers on one PostgreSQL schema and one data dir (one host)."""

    def __init__(self, settings: Settings, fake: FakeAnthropic, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.apis: list[tuple[str, subprocess.Popen]] = []
        self.workers: dict[str, subprocess.Popen] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        env.update(fake.env(max_retries=0))
        assert settings.database_url and settings.database_schema
        env.update(
            {
                "KANBAN_DATABASE_URL": settings.database_url,
                "KANBAN_DATABASE_SCHEMA": settings.database_schema,
                "KANBAN_DATA_DIR": str(settings.data_dir),
                "KANBAN_WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                "KANBAN_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
                "KANBAN_CANCEL_GRACE_SECONDS": "1",
                "KANBAN_EVENT_POLL_SECONDS": "1",
            }
        )
        self.env = env

    def _log(self, name: str):
        return (self.logs / f"{name}.log").open("ab")

    def start_api(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        name = f"api-{len(self.apis)}"
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            env={**self.env, "KANBAN_RUN_AGENTS": "false"},
            stdout=subprocess.DEVNULL,
            stderr=self._log(name),
            start_new_session=True,
        )
        self.apis.append((url, process))
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health/ready", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert process.poll() is None, self.log_text(name)
            assert time.monotonic() < deadline, self.log_text(name)
            time.sleep(0.2)

    def start_worker(self, worker_id: str, **env: str) -> subprocess.Popen:
        """A worker whose agents' tools talk to the first API process."""
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker", "--id", worker_id],
            env={**self.env, "KANBAN_API_URL": self.apis[0][0], **env},
            stdout=subprocess.DEVNULL,
            stderr=self._log(worker_id),
            start_new_session=True,
        )
        self.workers[worker_id] = process
        return process

    def wait_alive(self, *worker_ids: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            report = self.status()
            alive = {worker["id"] for worker in report.get("workers", []) if worker["alive"]}
            if set(worker_ids) <= alive:
                return
            for worker_id in worker_ids:
                assert self.workers[worker_id].poll() is None, self.log_text(worker_id)
            assert time.monotonic() < deadline, report
            time.sleep(0.3)

    def status(self) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", "status", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        processes = [process for _, process in self.apis] + list(self.workers.values())
        for process in processes:
            if process.poll() is None:
                with _suppress_lookup():
                    os.killpg(process.pid, signal.SIGCONT)
                    os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is ProcessLookupError


@pytest.fixture
def cluster(tmp_path) -> Iterator[tuple[Cluster, FakeAnthropic]]:
    settings, drop = make_settings("postgresql", tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    with FakeAnthropic() as fake:
        group = Cluster(settings, fake, logs)
        try:
            yield group, fake
        finally:
            group.stop()
            drop()


def _assert_gapless(events: list[dict]) -> None:
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))


def _workers_of(events: list[dict]) -> list[str]:
    """The workers that started the run, in order (each start's first event names it)."""
    return [
        event["payload"]["worker"]
        for event in events
        if event["type"] == "status" and event["payload"].get("status") == "running" and "worker" in event["payload"]
    ]


async def _wait_for(condition, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def _hanging_run(http: httpx.AsyncClient, fake: FakeAnthropic, project_id: int, title: str):
    """A run that wrote a file and now waits for a model reply that does not come: its task,
    the run as it is then (owner, session), and the hanging turn."""
    task = await create_task(http, project_id, title=title)
    marker = f"[{task['short_id']}]"
    hang = Turn.hang(300)
    fake.add_script(marker, [Turn.tool_use("Write", {"file_path": "before.txt", "content": "x\n"}), hang])
    run = (await http.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
    await asyncio.to_thread(hang.wait_started, 60)
    await asyncio.sleep(0.5)  # the batch with the tool result reaches the database
    return task, (await http.get(f"/api/runs/{run['id']}")).json(), hang


async def test_two_apis_and_two_workers_run_30_runs_each_exactly_once(cluster):
    group, fake = cluster
    api_a = await asyncio.to_thread(group.start_api)
    api_b = await asyncio.to_thread(group.start_api)
    group.start_worker("worker-1")
    group.start_worker("worker-2")
    await asyncio.to_thread(group.wait_alive, "worker-1", "worker-2")
    async with httpx.AsyncClient(base_url=api_a, timeout=30) as a, httpx.AsyncClient(base_url=api_b, timeout=30) as b:
        projects = [await create_project(a), await create_project(b)]
        tasks = []
        for index in range(30):
            client = (a, b)[index % 2]
            task = await create_task(client, projects[index % 2]["id"], title=f"Job {index}")
            marker = f"[{task['short_id']}]"
            fake.add_script(
                marker,
                [
                    Turn.tool_use("Write", {"file_path": f"job-{index}.txt", "content": f"{index}\n"}),
                    Turn.text(f"Wrote job {index}"),
                ],
            )
            tasks.append(task)
        started = time.monotonic()
        runs = []
        for index, task in enumerate(tasks):
            client = (a, b)[index % 2]
            response = await client.post(
                f"/api/tasks/{task['id']}/runs", json={"instructions": f"[{task['short_id']}]"}
            )
            assert response.status_code == 202, response.text
            runs.append(response.json())
        finished = [await wait_for_status(a, task["id"], {"succeeded", "failed"}, timeout=600) for task in tasks]
        elapsed = time.monotonic() - started
        by_worker: dict[str, int] = {}
        for run in finished:
            assert run["status"] == "succeeded", (run["error"], group.log_text("worker-1"), group.log_text("worker-2"))
            assert run["starts"] == 1 and run["owner"] is None and run["host"]
            events = await all_events(b, run["id"])
            _assert_gapless(events)
            [worker] = _workers_of(events)  # started once, by one worker
            by_worker[worker] = by_worker.get(worker, 0) + 1
            assert sum(1 for event in events if event["type"] == "result") == 1
        assert set(by_worker) == {"worker-1", "worker-2"}, by_worker
    requests = len(fake.main_requests())
    print(f"30 runs on 2 workers in {elapsed:.1f} s ({by_worker}); {requests} model requests")
    report = await asyncio.to_thread(group.status)
    assert {worker["id"] for worker in report["workers"] if worker["alive"]} == {"worker-1", "worker-2"}
    assert report["queue_depth"] == 0 and report["runs"]["succeeded"] == 30
    assert report["duties"]["held"]  # one of the workers ingests knowledge and sends notifications


async def test_a_killed_worker_is_taken_over_and_a_paused_one_is_fenced(cluster):
    group, fake = cluster
    api = await asyncio.to_thread(group.start_api)
    group.start_worker("worker-1")
    group.start_worker("worker-2")
    await asyncio.to_thread(group.wait_alive, "worker-1", "worker-2")
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        project = await create_project(http)

        # kill -9 the worker running a run: another takes it over and resumes its session.
        task, run, hang = await _hanging_run(http, fake, project["id"], "Survive a dead worker")
        before = await all_events(http, run["id"])
        owner, session_id = run["owner"], run["session_id"]
        assert owner in group.workers and session_id and run["lease_expires_at"]
        assert any(event["type"] == "tool_result" for event in before)
        fake.add_script(session_id, [Turn.text("Finished after the takeover")])
        killed_at = time.monotonic()
        os.kill(group.workers[owner].pid, signal.SIGKILL)  # the worker only: its agent lives on, orphaned
        group.workers[owner].wait(10)
        survivor = next(worker for worker in group.workers if worker != owner)
        resumed = await wait_for_status(http, task["id"], {"succeeded", "failed", "interrupted"}, timeout=40)
        took = time.monotonic() - killed_at
        assert resumed["status"] == "succeeded", (resumed["error"], group.log_text(survivor))
        assert took < 40
        assert resumed["id"] == run["id"] and resumed["session_id"] == session_id and resumed["starts"] == 2
        after = await all_events(http, run["id"])
        assert after[: len(before)] == before  # nothing written before the kill is lost
        _assert_gapless(after)
        assert _workers_of(after) == [owner, survivor]
        print(f"taken over and finished {took:.1f} s after kill -9")
        report = await asyncio.to_thread(group.status)
        assert [worker["takeovers"] for worker in report["workers"] if worker["id"] == survivor] == [1]
        metrics = (await http.get("/metrics")).text
        assert "kanban_lease_takeovers_total 1.0" in metrics, metrics

        # SIGSTOP a worker mid-run: it is taken over; resumed (SIGCONT), its late writes are refused.
        group.start_worker("worker-3")
        await asyncio.to_thread(group.wait_alive, survivor, "worker-3")
        task, run, hang = await _hanging_run(http, fake, project["id"], "Survive a paused worker")
        paused, session_id = run["owner"], run["session_id"]
        fake.add_script(session_id, [Turn.text("Finished while the other worker slept")])
        os.kill(group.workers[paused].pid, signal.SIGSTOP)
        try:
            done = await wait_for_status(http, task["id"], {"succeeded", "failed", "interrupted"}, timeout=40)
            assert done["status"] == "succeeded", done["error"]
            events_done = await all_events(http, run["id"])
        finally:
            os.kill(group.workers[paused].pid, signal.SIGCONT)
        hang.release()  # the paused worker's agent was killed by the takeover; nothing answers it any more
        await asyncio.sleep(LEASE_SECONDS + 2 * HEARTBEAT_SECONDS)  # the paused worker wakes up and tries
        assert group.workers[paused].poll() is None, group.log_text(paused)
        final = (await http.get(f"/api/runs/{run['id']}")).json()
        assert final["status"] == "succeeded" and final["starts"] == 2
        events_late = await all_events(http, run["id"])
        assert events_late == events_done, "the paused worker's late writes were not refused"
        _assert_gapless(events_late)
        taker = _workers_of(events_late)[-1]
        assert _workers_of(events_late) == [paused, taker] and taker != paused
        assert "writing nothing more for it" in group.log_text(paused)
        task_row = (await http.get(f"/api/tasks/{task['id']}")).json()
        assert task_row["status"] == "needs_review"


async def test_a_run_whose_renewal_came_too_late_is_given_up_and_taken_over_again(cluster):
    """A heartbeat held up for longer than a lease (here: the run's row locked by another
    transaction) makes the worker stop its agent, as another worker may have the run now.
    The run must not stay with it: it is no longer renewed, expires, and a worker (here the
    same, the only one) takes it over and resumes its session."""
    group, fake = cluster
    api = await asyncio.to_thread(group.start_api)
    group.start_worker("alone")
    await asyncio.to_thread(group.wait_alive, "alone")
    database = Database(group.settings)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=30) as http:
            project = await create_project(http)
            task, run, hang = await _hanging_run(http, fake, project["id"], "Renewed too late")
            fake.add_script(run["session_id"], [Turn.text("Finished after the run was given up")])
            async with database.session(write=True) as session:  # the heartbeat waits for this lock
                await session.execute(select(AgentRun).where(AgentRun.id == run["id"]).with_for_update())
                await asyncio.sleep(LEASE_SECONDS + 2 * HEARTBEAT_SECONDS)
            hang.release()
            done = await wait_for_status(http, task["id"], {"succeeded", "failed", "interrupted"}, timeout=40)
            assert done["status"] == "succeeded", (done["error"], group.log_text("alone"))
            assert done["id"] == run["id"] and done["session_id"] == run["session_id"] and done["starts"] == 2
            events = await all_events(http, run["id"])
            _assert_gapless(events)
            assert _workers_of(events) == ["alone", "alone"]
            assert "its lease could not be renewed" in group.log_text("alone")
    finally:
        await database.dispose()


async def test_cancel_approval_and_events_cross_processes(cluster):
    group, fake = cluster
    api_a = await asyncio.to_thread(group.start_api)
    api_b = await asyncio.to_thread(group.start_api)
    group.start_worker("worker-1")
    await asyncio.to_thread(group.wait_alive, "worker-1")
    async with httpx.AsyncClient(base_url=api_a, timeout=30) as a, httpx.AsyncClient(base_url=api_b, timeout=30) as b:
        project = await create_project(b)

        # An event the worker writes reaches an SSE subscriber of A; a cancel sent to A stops the run.
        task = await create_task(b, project["id"], title="Long job")
        marker = f"[{task['short_id']}]"
        hang = Turn.hang(120)
        fake.add_script(
            marker, [Turn.tool_use("Write", {"file_path": "a.txt", "content": "a"}, text="Thinking out loud"), hang]
        )
        run = (await b.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})).json()
        async with a.stream("GET", f"/api/runs/{run['id']}/stream") as stream:
            subscribed = datetime.now(UTC)
            reader = SSEReader(stream)
            seen, delays = [], []
            while not any(event["type"] == "tool_result" for event in seen):
                event = (await asyncio.wait_for(reader.next(), 60)).json
                written = datetime.fromisoformat(event["created_at"])
                if written > subscribed:  # written by the worker while A's subscriber waited
                    delays.append((datetime.now(UTC) - written).total_seconds())
                seen.append(event)
        assert any("Thinking out loud" in json.dumps(event) for event in seen)
        # NOTIFY wakes A's follower when the worker's batch commits (the fallback poll is 1 s).
        assert len(delays) >= 2 and statistics.median(delays) < 0.5, delays
        await asyncio.to_thread(hang.wait_started, 60)
        started = time.monotonic()
        response = await a.post(f"/api/runs/{run['id']}/cancel")
        assert response.status_code == 200, response.text
        cancelled = await wait_for_status(a, task["id"], {"cancelled", "failed", "succeeded"}, timeout=10)
        assert cancelled["status"] == "cancelled", cancelled["error"]
        assert time.monotonic() - started < 5

        # An approval answered on A unblocks the worker's agent at once.
        asking = await create_project(b, permission_mode="default")
        task = await create_task(b, asking["id"], title="Needs approval")
        marker = f"[{task['short_id']}]"
        fake.add_script(
            marker,
            [Turn.tool_use("Bash", {"command": "python3 -c \"open('made.txt','w').write('x')\""}), Turn.text("Ran")],
        )
        await b.post(f"/api/tasks/{task['id']}/runs", json={"instructions": marker})
        waiting = await wait_for_status(b, task["id"], {"waiting_approval", "succeeded", "failed"}, timeout=60)
        assert waiting["status"] == "waiting_approval", waiting
        [approval] = waiting["pending_approvals"]
        answered = time.monotonic()
        response = await a.post(f"/api/approvals/{approval['id']}", json={"decision": "allow"})
        assert response.status_code == 200, response.text

        async def back_to_running():
            events = await all_events(a, waiting["id"])
            return any(e["type"] == "approval" and e["payload"].get("status") == "allowed" for e in events)

        await _wait_for(back_to_running, "the agent to get the answer", 10)
        assert time.monotonic() - answered < 1.5  # NOTIFY, not the 1 s poll plus a batch
        done = await wait_for_status(a, task["id"], {"succeeded", "failed"}, timeout=60)
        assert done["status"] == "succeeded", done["error"]


async def test_a_run_waits_for_a_worker_that_reaches_its_folder(cluster):
    group, fake = cluster
    api = await asyncio.to_thread(group.start_api)
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        project = await create_project(http)
        folder = Path(project["workspace_path"])
        hidden = folder.with_name(folder.name + ".elsewhere")
        folder.rename(hidden)  # as on a host that does not have this checkout
        group.start_worker("worker-1")
        await asyncio.to_thread(group.wait_alive, "worker-1")
        task = await create_task(http, project["id"], title="Needs its folder")
        run = (await http.post(f"/api/tasks/{task['id']}/runs", json={})).json()
        reason = f"Waiting for a worker that can reach {folder}"

        async def waiting():
            current = (await http.get(f"/api/runs/{run['id']}")).json()
            return current if current["waiting_for"] == reason else None

        current = await _wait_for(waiting, "the run to say why it waits", 20)
        assert current["status"] == "queued" and current["starts"] == 0
        board = (await http.get(f"/api/projects/{project['id']}/board")).json()
        [card] = [card for column in board["columns"] for card in column["tasks"] if card["id"] == task["id"]]
        assert card["run"]["waiting_for"] == reason
        await asyncio.sleep(2 * HEARTBEAT_SECONDS)
        assert (await http.get(f"/api/runs/{run['id']}")).json()["status"] == "queued"

        hidden.rename(folder)  # the folder appears: the worker serves the project from its next heartbeat
        group.start_worker("worker-2")
        done = await wait_for_status(http, task["id"], {"succeeded", "failed"}, timeout=60)
        assert done["status"] == "succeeded", done["error"]
        assert done["waiting_for"] is None and done["starts"] == 1


# -- the rules, on both databases, without processes -----------------------------------------


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_a_taken_over_lease_refuses_the_old_workers_writes(kind, tmp_path):
    from backend.main import create_app
    from tests.conftest import running

    settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, run_agents=False)
    try:
        async with running(create_app(settings)) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                project = await create_project(http)
                task = await create_task(http, project["id"])
                queued = (await http.post(f"/api/tasks/{task['id']}/runs", json={})).json()
                assert queued["owner"] is None and queued["lease_expires_at"] is None and queued["host"] is None
            database: Database = app.state.database
            old = WorkerIdentity("old:1", "build-1", 1)
            new = WorkerIdentity("new:2", "build-1", 2)
            async with database.session(write=True) as session:
                await leases.register(session, old, 3, [project["id"]])
                await leases.register(session, new, 3, [project["id"]])
            async with database.session(write=True) as session:
                [(run_id, project_id, _folder)] = await run_service.next_queued(session, old, 5)
                assert project_id == project["id"]
                run = await run_service.claim(session, run_id, old, 0.0)  # a lease that is over at once
            assert run is not None and run.owner == "old:1" and run.lease_generation == 1
            lease = Lease(old.id, run.lease_generation)
            async with database.connection(write=True) as connection:
                await run_service.append_events(
                    connection, run_id, 1, [("status", {"status": "running"})], "s-1", lease
                )
            async with database.session(write=True) as session:
                [expired] = await leases.expired(session, leases.utcnow())
                state = await run_service.take_over(session, expired, new, resume=True, interrupted_error="gone")
            assert state.value == "queued"
            with pytest.raises(LeaseLost):
                async with database.connection(write=True) as connection:
                    await run_service.append_events(connection, run_id, 2, [("text", {"text": "late"})], None, lease)
            with pytest.raises(LeaseLost):
                async with database.session(write=True) as session:
                    await run_service.request_approval(session, run_id, "Bash", {"command": "ls"}, lease)
            async with database.session() as session:
                assert await run_service.last_seq(session, run_id) == 1  # the late event was not written
                row = await session.get(AgentRun, run_id)
                assert row is not None and row.status == "queued" and row.owner is None
                assert row.session_id == "s-1" and row.resume_session_id == "s-1" and row.lease_generation == 2
                assert await leases.takeovers_total(session) == 1

            # The run continues its session: only a worker on its host may take it.
            elsewhere = WorkerIdentity("far:3", "build-2", 3)
            async with database.session(write=True) as session:
                await leases.register(session, elsewhere, 3, [project["id"]])
                assert await run_service.next_queued(session, elsewhere, 5) == []
                assert [row[0] for row in await run_service.next_queued(session, new, 5)] == [run_id]
            async with database.session(write=True) as session:
                await leases.stopped(session, old)
                await leases.stopped(session, new)
            async with database.session(write=True) as session:
                assert await run_service.note_waiting(session, 20.0) == 1
            async with database.session() as session:
                row = await session.get(AgentRun, run_id)
                assert (
                    row is not None
                    and row.waiting_for == "Waiting for a worker on build-1 (its Claude session is there)"
                )
            async with database.session(write=True) as session:
                claimed = await run_service.claim(session, run_id, new, 20.0)
            assert claimed is not None and claimed.lease_generation == 3 and claimed.waiting_for is None
            async with database.session(write=True) as session:
                renewed = await leases.heartbeat(session, new, 20.0, None, [run_id])
            assert renewed == {run_id: 3}
            # A run its worker gave up (it stopped the agent) is not renewed: it expires and
            # another worker, or this one, takes it over.
            past = leases.utcnow() - timedelta(seconds=1)
            async with database.session(write=True) as session:
                assert await leases.heartbeat(session, new, 20.0, None, []) == {}
                await session.execute(update(AgentRun).where(AgentRun.id == run_id).values(lease_expires_at=past))
            async with database.session(write=True) as session:
                assert await leases.heartbeat(session, new, 20.0, None, [run_id + 1]) == {}
                assert [run.id for run in await leases.expired(session, leases.utcnow())] == [run_id]
    finally:
        await asyncio.to_thread(drop)


def test_kanban_worker_needs_postgresql_and_a_lease_longer_than_the_heartbeat(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    command = [sys.executable, "-m", "backend.cli", "worker", "--data-dir", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "`kanban worker` needs a PostgreSQL database" in result.stderr, result.stderr
    assert not (tmp_path / "kanban.db").exists()

    env.update(KANBAN_WORKER_HEARTBEAT_SECONDS="10", KANBAN_WORKER_LEASE_SECONDS="5")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "worker_lease_seconds (5) must be longer than worker_heartbeat_seconds (10)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

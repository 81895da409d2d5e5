"""Outgoing notifications on SQLite and PostgreSQL, sent by the real apprise to a local HTTP
server standing in for the chat service (apprise's generic JSON webhook, `json://`).

Agent runs end as the scripted executor says (only the executor is replaced): a task titled
with [fail] fails, one with [ask] asks to run `rm -rf build` first and waits for the answer."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from backend.main import create_app
from backend.models import BoardEvent, NotificationChannel, NotificationCursor
from backend.notifications import urls
from backend.runs.agent import AgentOutcome
from tests.backend.factories import create_project, create_task
from tests.conftest import DATABASE_KINDS, make_settings, running

SECRET_TOKEN = "tok3n-Zq8Wv2Lk9Xr4"
SECRET_PATH = "hooksecret-Pm7Yt3Qa"
SECRET_PASSWORD = "pa55-Hn6Bc1Ve"


# --------------------------------------------------------------------------- the stand-in service


class Hook:
    """A local HTTP server that takes notifications: it keeps what it got (path, JSON body) and
    answers with the codes in `answers`, then `default`. With `hold` cleared, requests wait."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.default = 200
        self.hold = threading.Event()
        self.hold.set()
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.lock:
                    hook.requests.append({"path": self.path, "json": json.loads(data or b"null")})
                hook.hold.wait(30)
                with hook.lock:
                    code = hook.answers.pop(0) if hook.answers else hook.default
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # the server's own access log: not wanted
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "hook", **query: str) -> str:
        """An apprise JSON webhook URL to this server (`-name=value`: a query parameter it sends)."""
        params = urlencode({f"-{key}": value for key, value in query.items()})
        return f"json://127.0.0.1:{self.port}/{path}" + (f"?{params}" if params else "")

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


@contextmanager
def serving() -> Iterator[Hook]:
    hook = Hook()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.hold.set()
        hook.server.shutdown()
        hook.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    with serving() as server:
        yield server


# --------------------------------------------------------------------------- the board


class ScriptedAgent:
    """[fail] in the title: the run fails; [ask]: asks for Bash `rm -rf build` first."""

    async def run(self, request, emit, ask_permission, control) -> AgentOutcome:
        if "[ask]" in request.prompt:
            decision = await ask_permission("Bash", {"command": "rm -rf build"}, "tool-1")
            if not decision.allow:
                return AgentOutcome(is_error=True, error="not allowed")
        if "[fail]" in request.prompt:
            return AgentOutcome(is_error=True, error="it broke: exit 2\nTraceback (most recent call last): …")
        return AgentOutcome(result="Added the toggle.\nAnd its tests.", turns=1)


@dataclass
class Board:
    http: httpx.AsyncClient
    app: FastAPI


async def _board(kind: str, tmp: Path, **overrides: Any) -> AsyncIterator[Board]:
    settings, drop = await asyncio.to_thread(make_settings, kind, tmp, **overrides)
    try:
        async with running(create_app(settings, ScriptedAgent())) as app:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
                yield Board(http, app)
    finally:
        await asyncio.to_thread(drop)


@pytest.fixture(scope="module", params=DATABASE_KINDS)
async def board(request, tmp_path_factory) -> AsyncIterator[Board]:
    """One app per database for the module, retrying after 0.2 s (every test uses projects and
    channels of its own, and deletes its channels)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
        async for value in _board(
            request.param, tmp_path_factory.mktemp(request.param), notification_retry_seconds=[0.2, 0.2]
        ):
            yield value


async def eventually(check, timeout: float = 20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {value!r}")
        await asyncio.sleep(0.05)


async def add_channel(http: httpx.AsyncClient, url: str, **fields: Any) -> dict:
    body = {"name": f"Channel {uuid.uuid4().hex[:8]}", "url": url, **fields}
    response = await http.post("/api/notifications/channels", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@asynccontextmanager
async def channels(http: httpx.AsyncClient, *specs: tuple[str, dict]) -> AsyncIterator[list[dict]]:
    """Channels for the test, deleted after it (the module's app is shared)."""
    made = [await add_channel(http, url, **fields) for url, fields in specs]
    try:
        yield made
    finally:
        for channel in made:
            await http.delete(f"/api/notifications/channels/{channel['id']}")


async def deliveries(http: httpx.AsyncClient, channel: dict, **params: Any) -> list[dict]:
    response = await http.get("/api/notifications/deliveries", params={"channel_id": channel["id"], **params})
    assert response.status_code == 200, response.text
    return response.json()


async def settled(http: httpx.AsyncClient, channel: dict, count: int = 1, timeout: float = 20) -> list[dict]:
    """The channel's deliveries once `count` of them are delivered or failed (oldest first)."""

    async def check():
        items = await deliveries(http, channel)
        done = [d for d in items if d["status"] in ("delivered", "failed")]
        return list(reversed(items)) if len(done) >= count else None

    return await eventually(check, timeout)


async def run_task(http: httpx.AsyncClient, project: dict, title: str) -> tuple[dict, dict]:
    """A task whose run is started and has ended; (task, run)."""
    task = await create_task(http, project["id"], title=title)
    response = await http.post(f"/api/tasks/{task['id']}/runs", json={})
    assert response.status_code in (201, 202), response.text

    async def finished():
        runs = (await http.get(f"/api/tasks/{task['id']}/runs")).json()
        return runs[0] if runs and runs[0]["status"] in ("succeeded", "failed") else None

    return task, await eventually(finished, 30)


def link(project: dict, task: dict, app: FastAPI) -> str:
    return f"{app.state.settings.resolved_api_url}/?project={project['id']}&task={task['id']}"


# --------------------------------------------------------------------------- runs and approvals


async def test_a_finished_run_is_one_notification_with_its_title_body_and_link(board, hook):
    http = board.http
    project = await create_project(http)
    async with channels(http, (hook.url("hook"), {"project_id": project["id"]})) as (channel,):
        task, run = await run_task(http, project, "Add a dark mode toggle")
        assert run["status"] == "succeeded"
        (delivery,) = await settled(http, channel)
        await asyncio.sleep(0.5)  # nothing else comes
        (request,) = hook.received()
    assert request["path"] == "/hook"
    title = f"{task['short_id']} is ready for review: Add a dark mode toggle"
    assert request["json"]["title"] == title and request["json"]["type"] == "success"
    assert request["json"]["message"] == f"Added the toggle.\n{link(project, task, board.app)}"
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["last_error"] is None
    assert delivery["kind"] == "run_succeeded" and delivery["title"] == title
    assert delivery["channel_name"] == channel["name"] and delivery["event_id"] is not None
    assert delivery["delivered_at"] is not None


async def test_a_failed_run_and_an_approval_request_are_told_with_what_happened(board, hook):
    http = board.http
    project = await create_project(http)
    async with channels(http, (hook.url(), {"project_id": project["id"]})) as (channel,):
        failing, run = await run_task(http, project, "Flaky [fail]")
        assert run["status"] == "failed"
        (failed,) = await settled(http, channel)

        asking = await create_task(http, project["id"], title="Clean up [ask]")
        run = (await http.post(f"/api/tasks/{asking['id']}/runs", json={})).json()
        (approval,) = await eventually(
            lambda: _pending(http, run["id"])  # noqa: B023 - used at once
        )
        (failed_again, asked) = await settled(http, channel, 2)
        assert failed_again["id"] == failed["id"]
        response = await http.post(f"/api/approvals/{approval['id']}", json={"decision": "allow"})
        assert response.status_code == 200, response.text
        *_, done = await settled(http, channel, 3)
        sent = [request["json"] for request in hook.received()]
    assert failed["title"] == f"{failing['short_id']}'s run failed: it broke: exit 2"
    assert failed["body"].splitlines() == [
        f"{failing['short_id']} Flaky [fail]",
        "it broke: exit 2",
        "Traceback (most recent call last): …",
        link(project, failing, board.app),
    ]
    assert asked["kind"] == "approval_requested"
    assert asked["title"] == f"{asking['short_id']} needs approval: Bash `rm -rf build`"
    assert link(project, asking, board.app) in asked["body"]
    assert done["kind"] == "run_succeeded" and done["title"].startswith(f"{asking['short_id']} is ready for review")
    assert [(m["title"], m["type"]) for m in sent] == [
        (failed["title"], "failure"),
        (asked["title"], "warning"),
        (done["title"], "success"),
    ]


async def _pending(http: httpx.AsyncClient, run_id: int) -> list[dict]:
    return (await http.get(f"/api/runs/{run_id}")).json()["pending_approvals"]


# --------------------------------------------------------------------------- retries


async def test_a_service_that_fails_twice_gets_it_on_the_third_attempt(board, hook):
    http = board.http
    hook.answers = [500, 500]
    project = await create_project(http)
    async with channels(http, (hook.url(), {"project_id": project["id"]})) as (channel,):
        await run_task(http, project, "Retried")
        (delivery,) = await settled(http, channel)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert "500" in delivery["last_error"]  # why the attempt before failed
    assert len(hook.received()) == 3
    assert len({json.dumps(r["json"], sort_keys=True) for r in hook.received()}) == 1  # the same message


async def test_a_service_that_always_fails_is_a_failed_delivery_with_the_reason(board, hook):
    http = board.http
    hook.default = 500
    project = await create_project(http)
    async with channels(http, (hook.url(), {"project_id": project["id"]})) as (channel,):
        await run_task(http, project, "Never heard of")
        (delivery,) = await settled(http, channel)
        failed = await deliveries(http, channel, status="failed")
        assert await deliveries(http, channel, status="delivered") == []
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is None
    assert "error=500" in delivery["last_error"] and "Failed to send JSON" in delivery["last_error"]
    assert [d["id"] for d in failed] == [delivery["id"]]
    assert len(hook.received()) == 3


# --------------------------------------------------------------------------- the URL is a secret


async def test_the_urls_secret_parts_never_show_in_answers_events_errors_or_logs(board, hook, caplog):
    caplog.set_level(logging.DEBUG)
    http = board.http
    hook.default = 500
    project = await create_project(http)
    secret_url = f"json://user:{SECRET_PASSWORD}@127.0.0.1:{hook.port}/{SECRET_PATH}?-token={SECRET_TOKEN}"
    dead_url = f"json://127.0.0.1:1/{SECRET_PATH}?-token={SECRET_TOKEN}"  # nothing listens: a connection error
    answers: list[str] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await http.request(method, path, **kwargs)
        answers.append(response.text)
        return response

    created = await call(
        "POST", "/api/notifications/channels", json={"name": "Secret", "url": secret_url, "project_id": project["id"]}
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["url_hint"] == f"json://…@127.0.0.1:{hook.port}/…" and "url" not in channel
    try:
        await call("GET", "/api/notifications/channels")
        assert (await call("POST", f"/api/notifications/channels/{channel['id']}/test")).json()["status"] == "failed"
        await run_task(http, project, "Secretive")
        await settled(http, channel, 2)
        changed = await call("PATCH", f"/api/notifications/channels/{channel['id']}", json={"url": dead_url})
        assert changed.status_code == 200 and changed.json()["url_hint"] == "json://127.0.0.1:1/…"
        refused = await call(
            "POST", "/api/notifications/channels", json={"name": "Bad", "url": f"nope://{SECRET_TOKEN}"}
        )
        assert refused.status_code == 422 and "nope://" in refused.json()["detail"]
        tested = await call("POST", f"/api/notifications/channels/{channel['id']}/test")
        assert tested.json()["status"] == "failed" and "Connection error" in tested.json()["last_error"]
        await call("GET", "/api/notifications/deliveries", params={"channel_id": channel["id"]})
        async with board.app.state.database.session() as session:
            events = [json.dumps(p) for p in (await session.scalars(select(BoardEvent.payload))).all()]
            stored = (await session.scalars(select(NotificationChannel.url_encrypted))).all()
    finally:
        await http.delete(f"/api/notifications/channels/{channel['id']}")
    assert hook.received() and all(r["path"] == f"/{SECRET_PATH}?token={SECRET_TOKEN}" for r in hook.received())
    errors = [json.loads(answer).get("last_error") or "" for answer in answers if answer.startswith("{")]
    assert any("error=500" in error for error in errors)  # the reasons are there…
    log = "\n".join(record.getMessage() for record in caplog.records)
    assert "Secretive" in log or "notification" in log  # the log was captured
    for secret in (SECRET_TOKEN, SECRET_PATH, SECRET_PASSWORD):  # …without the secrets
        for where, text in {"answers": answers, "events": events, "stored": stored, "log": [log]}.items():
            assert not any(secret in item for item in text), f"{secret} found in {where}"


def test_the_hint_shows_the_scheme_and_a_named_host_only():
    assert urls.check("json://127.0.0.1:8765/hook?-token=abc").hint == "json://127.0.0.1:8765/…"
    assert urls.check("discord://12345678/abcdefgh").hint == "discord://…/…"
    assert urls.check("ntfy://my-secret-topic").hint == "ntfy://…"
    assert urls.check("ntfy://ntfy.example.com/topic").hint == "ntfy://ntfy.example.com/…"
    assert urls.check("mailto://me:pw123456@example.com").hint == "mailto://…@example.com"
    assert urls.check("tgram://123456:ABCDEF/987").hint == "tgram://…/…"
    hide = urls.redactor(["json://me:pa55word1@example.com/hooksecret1?-token=tok3nvalue"])
    text = hide("POST https://example.com/hooksecret1?token=tok3nvalue as me:pa55word1 failed")
    assert "hooksecret1" not in text and "tok3nvalue" not in text and "pa55word1" not in text
    assert "example.com" in text and "failed" in text


# --------------------------------------------------------------------------- a restart


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_after_a_restart_pending_and_interrupted_deliveries_are_sent(kind, tmp_path, monkeypatch):
    """A delivery waiting for its retry, and one whose send was cut off by the stop (left
    `sending`), are both sent by the next server on the same data dir."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    with serving() as retried, serving() as hanging:
        retried.answers = [500]
        hanging.hold.clear()
        settings, drop = await asyncio.to_thread(make_settings, kind, tmp_path, notification_retry_seconds=[1.0, 1.0])
        try:
            async with _client(settings) as http:
                project = await create_project(http)
                first = await add_channel(http, retried.url(), project_id=project["id"])
                second = await add_channel(http, hanging.url(), project_id=project["id"])
                await run_task(http, project, "Across a restart")
                await eventually(lambda: _one_waiting(http, first, second))
            hanging.hold.set()  # the cut-off request is answered, to a server that is gone
            async with _client(settings.model_copy(update={"notification_retry_seconds": [0.1, 0.1]})) as http:
                (again,) = await settled(http, first)
                (resent,) = await settled(http, second)
        finally:
            await asyncio.to_thread(drop)
        assert again["status"] == "delivered" and again["attempts"] == 2 and "500" in again["last_error"]
        assert resent["status"] == "delivered" and resent["attempts"] == 2 and resent["last_error"] is None
        assert len(retried.received()) == 2
        assert len(hanging.received()) == 2  # at least once: the cut-off one arrived, and again


@asynccontextmanager
async def _client(settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings, ScriptedAgent())) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            yield http


async def _one_waiting(http: httpx.AsyncClient, first: dict, second: dict) -> bool:
    waiting = await deliveries(http, first)
    sending = await deliveries(http, second)
    return [(d["status"], d["attempts"]) for d in waiting] == [("pending", 1)] and [
        (d["status"], d["attempts"]) for d in sending
    ] == [("sending", 1)]


# --------------------------------------------------------------------------- filters


async def test_a_channel_is_told_only_the_kinds_it_chose(board, hook):
    http = board.http
    project = await create_project(http)
    failures, successes = (
        (hook.url("failures"), {"project_id": project["id"], "events": ["run_failed"]}),
        (
            hook.url("successes"),
            {"project_id": project["id"], "events": ["run_succeeded", "run_succeeded"]},
        ),
    )
    async with channels(http, failures, successes) as (only_failures, only_successes):
        assert only_successes["events"] == ["run_succeeded"]  # once
        await run_task(http, project, "Works")
        await run_task(http, project, "Breaks [fail]")
        (failure,) = await settled(http, only_failures)
        (success,) = await settled(http, only_successes)
        await asyncio.sleep(0.5)
    assert failure["kind"] == "run_failed" and success["kind"] == "run_succeeded"
    assert sorted(r["path"] for r in hook.received()) == ["/failures", "/successes"]


async def test_a_project_channel_hears_only_its_project_and_a_switched_off_one_nothing(board, hook):
    http = board.http
    mine, other = await create_project(http), await create_project(http)
    specs = (
        (hook.url("mine"), {"project_id": mine["id"]}),
        (hook.url("all"), {}),
        (hook.url("off"), {"enabled": False}),
    )
    async with channels(http, *specs) as (project_channel, every_project, switched_off):
        assert every_project["project_id"] is None and switched_off["enabled"] is False
        await run_task(http, other, "Elsewhere")
        await run_task(http, mine, "Here")
        await settled(http, every_project, 2)
        (here,) = await settled(http, project_channel)
        await asyncio.sleep(0.5)
        assert await deliveries(http, switched_off) == []
    assert here["title"].endswith("Here")
    assert sorted(r["path"] for r in hook.received()) == ["/all", "/all", "/mine"]


async def test_changing_a_channel_changes_what_it_hears(board, hook):
    http = board.http
    project = await create_project(http)
    async with channels(http, (hook.url("before"), {"project_id": project["id"], "events": ["run_failed"]})) as (
        channel,
    ):
        response = await http.patch(
            f"/api/notifications/channels/{channel['id']}",
            json={"url": hook.url("after"), "events": ["run_succeeded"], "name": "Renamed", "project_id": None},
        )
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["events"] == ["run_succeeded"] and changed["name"] == "Renamed"
        assert changed["project_id"] is None and changed["url_hint"] == f"json://127.0.0.1:{hook.port}/…"
        await run_task(http, project, "After the change")
        (delivery,) = await settled(http, channel)
        off = await http.patch(f"/api/notifications/channels/{channel['id']}", json={"enabled": False})
        assert off.json()["enabled"] is False
        await run_task(http, project, "While off")
        await asyncio.sleep(0.5)
        assert len(await deliveries(http, channel)) == 1
    assert delivery["channel_name"] == "Renamed" and [r["path"] for r in hook.received()] == ["/after"]


# --------------------------------------------------------------------------- workflows


ONE_STEP = """
    name: notify-flow
    title: Notify flow
    steps:
      - id: only
        title: The only step
        prompt: "Do the only thing."
        review: auto
"""


async def test_a_finished_workflow_is_told_once_and_its_auto_accepted_step_not_at_all(board, hook):
    http = board.http
    project = await create_project(http)
    folder = Path(project["workspace_path"]) / ".kanban" / "workflows"
    folder.mkdir(parents=True)
    (folder / "notify-flow.yaml").write_text(textwrap.dedent(ONE_STEP))
    async with channels(http, (hook.url(), {"project_id": project["id"]})) as (channel,):
        response = await http.post("/api/workflows", json={"project_id": project["id"], "template": "notify-flow"})
        assert response.status_code == 201, response.text
        workflow = response.json()

        async def done():
            current = (await http.get(f"/api/workflows/{workflow['id']}")).json()
            return current["status"] == "done"

        await eventually(done, 30)
        (delivery,) = await settled(http, channel)
        parent = (await http.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
        # Moving the done card about later is not another completion.
        moved = await http.post(f"/api/tasks/{parent['id']}/move", json={"status": "needs_review"})
        assert moved.status_code == 200, moved.text
        moved = await http.post(f"/api/tasks/{parent['id']}/move", json={"status": "done"})
        assert moved.status_code == 200, moved.text
        await asyncio.sleep(1)
        assert len(await deliveries(http, channel)) == 1
    assert delivery["kind"] == "workflow_done"
    assert delivery["title"] == f"{parent['short_id']} workflow done: Notify flow"
    assert "1 steps done" in delivery["body"] and link(project, parent, board.app) in delivery["body"]
    assert [r["json"]["title"] for r in hook.received()] == [delivery["title"]]


# --------------------------------------------------------------------------- the test button


async def test_the_test_button_sends_now_and_answers_the_outcome(board, hook):
    http = board.http
    async with channels(http, (hook.url("tested"), {"enabled": False})) as (channel,):
        response = await http.post(f"/api/notifications/channels/{channel['id']}/test")
        assert response.status_code == 200, response.text
        ok = response.json()
        hook.default = 500
        failed = (await http.post(f"/api/notifications/channels/{channel['id']}/test")).json()
        log = await deliveries(http, channel)
    assert ok["status"] == "delivered" and ok["kind"] == "test" and ok["event_id"] is None and ok["attempts"] == 1
    assert failed["status"] == "failed" and "error=500" in failed["last_error"]
    assert [d["id"] for d in log] == [failed["id"], ok["id"]]  # newest first
    assert [r["json"]["type"] for r in hook.received()] == ["info", "info"]
    assert hook.received()[0]["json"]["title"] == "Kanban Orchestrator: test notification"


# --------------------------------------------------------------------------- bad input


async def test_bad_input_is_refused_with_a_clear_answer_and_nothing_is_written(board, hook):
    http = board.http
    async with board.app.state.database.session() as session:
        before = await session.scalar(select(func.count()).select_from(NotificationChannel))
    valid = {"name": "Valid", "url": hook.url()}
    cases = [
        ({**valid, "url": "foo://somewhere"}, 422, "apprise knows no service with the scheme foo://"),
        ({**valid, "url": "not a url"}, 422, "not an apprise URL"),
        ({**valid, "url": "json://"}, 422, "not a valid json:// URL"),
        ({**valid, "url": "json://127.0.0.1/x\u0000y"}, 422, "NUL"),
        ({**valid, "name": "bad\u0000name"}, 422, "NUL"),
        ({**valid, "name": "\u200b "}, 422, "name"),
        ({**valid, "name": "x" * 81}, 422, "name"),
        ({**valid, "events": []}, 422, "events"),
        ({**valid, "events": ["run_exploded"]}, 422, "events"),
        ({**valid, "project_id": 2**31}, 422, "project_id"),
        ({**valid, "project_id": 0}, 422, "project_id"),
        ({**valid, "project_id": 2_000_000_000}, 404, "Project 2000000000 not found"),
        ({**valid, "colour": "red"}, 422, "unknown field"),
    ]
    for body, code, message in cases:
        response = await http.post("/api/notifications/channels", json=body)
        assert response.status_code == code, (body, response.text)
        assert message in response.json()["detail"], (body, response.text)
    async with channels(http, (hook.url(), {"name": f"Taken {uuid.uuid4().hex[:6]}"})) as (channel,):
        taken = await http.post("/api/notifications/channels", json={**valid, "name": channel["name"].upper()})
        assert taken.status_code == 409 and "exists already" in taken.json()["detail"]
        for method, path, body, code in [
            ("PATCH", "/api/notifications/channels/2147483648", {"name": "x"}, 422),
            ("PATCH", "/api/notifications/channels/2000000000", {"name": "x"}, 404),
            ("PATCH", f"/api/notifications/channels/{channel['id']}", {"name": None}, 422),
            ("PATCH", f"/api/notifications/channels/{channel['id']}", {"url": "foo://x"}, 422),
            ("PATCH", f"/api/notifications/channels/{channel['id']}", {"project_id": 2_000_000_000}, 404),
            ("DELETE", "/api/notifications/channels/2147483648", None, 422),
            ("DELETE", "/api/notifications/channels/2000000000", None, 404),
            ("POST", "/api/notifications/channels/2000000000/test", None, 404),
            ("POST", "/api/notifications/channels/0/test", None, 422),
            ("GET", "/api/notifications/deliveries?channel_id=2147483648", None, 422),
            ("GET", "/api/notifications/deliveries?channel_id=2000000000", None, 404),
            ("GET", "/api/notifications/deliveries?status=lost", None, 422),
            ("GET", "/api/notifications/deliveries?limit=501", None, 422),
        ]:
            response = await http.request(method, path, json=body)
            assert response.status_code == code, (method, path, body, response.text)
            assert response.json()["detail"], response.text
        unchanged = (await http.get("/api/notifications/channels")).json()
        assert [c for c in unchanged if c["id"] == channel["id"]] == [channel]
    async with board.app.state.database.session() as session:
        after = await session.scalar(select(func.count()).select_from(NotificationChannel))
    assert after == before
    assert hook.received() == []  # no refused request sent anything


async def test_the_cursor_starts_at_the_newest_event_so_history_is_not_sent(board, hook):
    """Events from before a channel existed are not sent to it (nor those before the upgrade)."""
    http = board.http
    project = await create_project(http)
    await run_task(http, project, "Before the channel")
    async with channels(http, (hook.url(), {"project_id": project["id"]})) as (channel,):
        await asyncio.sleep(1)
        assert await deliveries(http, channel) == []
        async with board.app.state.database.session() as session:
            cursor = await session.get(NotificationCursor, 1)
            newest = await session.scalar(select(func.max(BoardEvent.id)))
        assert cursor is not None and cursor.last_event_id <= newest
    assert hook.received() == []

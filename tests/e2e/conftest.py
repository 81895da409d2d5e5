"""Browser tests: the real `kanban serve` (a subprocess) serving the built frontend, driven by
Playwright with the system's Chromium.

Nothing is built here: `make test` builds frontend/build first. The browser is
$KANBAN_CHROMIUM (default /usr/bin/chromium); the suite is skipped, with the reason, only when
that browser is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_INDEX = REPO / "frontend" / "build" / "index.html"
CHROMIUM = os.environ.get("KANBAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = REPO / "docs" / "screenshots"


def make_git_repository(folder: Path, branch: str = "main") -> Path:
    """A folder that is a git repository with one commit on `branch` (projects point at one)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".git").exists():
        git = [
            "git",
            "-c",
            "user.name=Kanban Tests",
            "-c",
            "user.email=tests@kanban.invalid",
            "-c",
            "init.defaultBranch=" + branch,
        ]
        subprocess.run([*git, "init", "-q", "-b", branch], cwd=folder, check=True)
        (folder / "README.md").write_text("# Test workspace\n")
        subprocess.run([*git, "add", "README.md"], cwd=folder, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "First commit"], cwd=folder, check=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kanban_command() -> list[str]:
    script = REPO / ".venv" / "bin" / "kanban"
    if script.exists():
        return [str(script)]
    found = shutil.which("kanban")
    return [found] if found else [sys.executable, "-m", "backend.cli"]


@dataclass
class Server:
    """A running `kanban serve` and a tiny JSON client for arranging test data behind the page's back."""

    url: str
    token: str | None = None
    log: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        bearer = token if token is not None else self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {data}"
        return data

    def create_project(self, name: str, workspace: Path, **extra: Any) -> dict:
        make_git_repository(workspace)
        return self.api("POST", "/api/projects", {"name": name, "workspace_path": str(workspace), **extra})

    def create_task(self, project_id: int, title: str, **extra: Any) -> dict:
        return self.api("POST", "/api/tasks", {"project_id": project_id, "title": title, **extra})

    def board(self, project_id: int) -> dict[str, list[str]]:
        """Column status -> task titles, in board order."""
        data = self.api("GET", f"/api/projects/{project_id}/board")
        return {column["status"]: [t["title"] for t in column["tasks"]] for column in data["columns"]}


def _start_server(tmp: Path, token: str | None = None, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    if not BUILD_INDEX.is_file():
        message = f"{BUILD_INDEX} is missing: build the frontend first (`make frontend`, or `make test`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    data_dir = tmp / "data"
    log = tmp / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env["KANBAN_LOG_LEVEL"] = "warning"
    if token:
        env["KANBAN_API_TOKEN"] = token
    env.update(extra_env or {})
    command = [*_kanban_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(url=f"http://127.0.0.1:{port}", token=token, log=log, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"kanban serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                status, body = server.request("GET", "/api/health")
                if status == 200 and body.get("status") == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kanban serve did not answer /api/health within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e"))


@pytest.fixture(scope="package")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start_server(tmp_path_factory.mktemp("kanban-e2e-token"), token="e2e-secret-token")


@pytest.fixture(scope="module")
def fake_api() -> Iterator[Any]:
    """A started, empty fake Messages API for a module's agent server (scripts keyed per task)."""
    from tests.fixtures.fake_anthropic import FakeAnthropic

    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.release_all()  # turns a failed test left hanging
    fake.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM} (install it with `apt-get install chromium`, or set KANBAN_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Open pages in fresh browser contexts (separate storage: like separate people)."""
    contexts = []

    def open_page(url: str | None = None, **context_options: Any) -> Any:
        context = browser.new_context(viewport={"width": 1440, "height": 900}, **context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []  # uncaught page errors, asserted empty by the tests
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        if url:
            page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A git repository on branch main, to point a project at."""
    return make_git_repository(tmp_path / "workspace")

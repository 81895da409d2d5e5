from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend import __version__
from backend.migrations_runner import head_revision
from tests.conftest import free_port


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_db_upgrade_uses_data_dir_from_flag_and_env(tmp_path: Path):
    result = run_cli("db", "upgrade", "--data-dir", str(tmp_path / "flag"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "flag" / "kanban.db").exists()
    result = run_cli("db", "upgrade", env={"KANBAN_DATA_DIR": str(tmp_path / "env")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "env" / "kanban.db").exists()


def test_db_upgrade_refuses_a_data_dir_a_server_uses(tmp_path: Path):
    """The embedded database's tables must not change under a running server."""
    folder = tmp_path / "data"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from backend import data_dir; from pathlib import Path; "
            "data_dir.lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = run_cli("db", "upgrade", "--data-dir", str(folder))
        assert result.returncode != 0
        assert f"pid {holder.pid}" in result.stderr and "stop it before upgrading" in result.stderr, result.stderr
        assert not (folder / "kanban.db").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_cli("db", "upgrade", "--data-dir", str(folder)).returncode == 0  # free again


def test_bad_database_url_is_a_clear_error(tmp_path: Path):
    result = run_cli("db", "upgrade", "--database-url", "mysql://x/y")
    assert result.returncode != 0
    assert "Unsupported database URL scheme" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("sqlite:///x.db?timeout=1", "take no options"),
    ],
)
def test_sqlite_urls_the_server_cannot_use_are_refused(url: str, message: str):
    result = run_cli("db", "upgrade", "--database-url", url)
    assert result.returncode != 0
    assert message in result.stderr


def test_serve_migrates_and_serves(tmp_path: Path):
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert response.json()["revision"] == head_revision()
        assert response.json()["database"] == "sqlite"
    finally:
        process.terminate()
        process.wait(10)


def test_workflow_validate_names_file_line_and_field(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("name: good\ntitle: Good\nsteps:\n  - id: only\n    title: Only\n    prompt: Do it\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\ntitle: Broken\nsteps:\n  - id: a\n    title: A\n    prompt: '{{nope}}'\n    needs: [b]\n"
    )
    result = run_cli("workflow", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert f"{good}: ok: good (Good): only (agent)" in result.stdout
    result = run_cli("workflow", "validate", str(good), str(broken))
    assert result.returncode == 1
    assert f"{broken}:7: steps[0].needs[0]:" in result.stdout and "'b'" in result.stdout
    assert f"{broken}:6: steps[0].prompt:" in result.stdout and "nope" in result.stdout


async def test_workflow_list_and_start_talk_to_the_running_board(live_server, tmp_path: Path):
    import asyncio

    from tests.backend.factories import create_project

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
    env = {"KANBAN_API_URL": live_server.url}
    listed = await asyncio.to_thread(run_cli, "workflow", "list", "--project", project["key"], env=env)
    assert listed.returncode == 0, listed.stderr
    assert "feature  Build a feature  [builtin" in listed.stdout and "--input test_command=" in listed.stdout
    missing = await asyncio.to_thread(
        run_cli, "workflow", "start", "feature", "--project", project["key"], "--input", "oops", env=env
    )
    assert missing.returncode == 1 and "NAME=VALUE" in missing.stderr
    refused = await asyncio.to_thread(run_cli, "workflow", "start", "feature", "--project", project["key"], env=env)
    assert refused.returncode == 1 and "feature" in refused.stderr and "422" in refused.stderr
    started = await asyncio.to_thread(
        run_cli,
        "workflow", "start", "bugfix", "--project", project["key"],
        "--input", "bug=The totals are off by one", "--input", "test_command=true",
        env=env,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "Started workflow" in started.stdout and "reproduce (agent)" in started.stdout
    assert "fix (agent) after reproduce" in started.stdout
    down = run_cli("workflow", "list", env={"KANBAN_API_URL": "http://127.0.0.1:9"})
    assert down.returncode == 1 and "kanban serve" in down.stderr


async def test_workflow_start_wait_says_what_waits_for_a_person(live_server):
    import asyncio

    from tests.backend.factories import create_project

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        project = await create_project(http)
        folder = Path(project["workspace_path"]) / ".kanban" / "workflows"
        folder.mkdir(parents=True)
        (folder / "sign-off.yaml").write_text(
            "name: sign-off\ntitle: Sign off\nsteps:\n  - id: ok\n    title: Looks right?\n    kind: approval\n"
            "    prompt: Have a look.\n"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        command = [sys.executable, "-m", "backend.cli", "workflow", "start", "sign-off", "--project", project["key"]]
        process = subprocess.Popen(
            [*command, "--wait"],
            env={**clean, "KANBAN_API_URL": live_server.url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = []
            while not any("waiting for you in Review" in line for line in lines):
                line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
                assert line, (lines, process.stderr.read() if process.stderr else "")
                lines.append(line)
            waiting = lines[-1]
            assert "0/1 done" in waiting and f"{project['key']}-" in waiting and "approve" in waiting, waiting
            short_id = waiting.split("Review: ")[1].split(";")[0]
            tasks = (await http.get("/api/tasks", params={"project_id": project["id"], "q": short_id})).json()
            [card] = [t for t in tasks["items"] if t["short_id"] == short_id]
            approved = await http.post(f"/api/tasks/{card['id']}/approve")
            assert approved.status_code == 200, approved.text
            out, _ = await asyncio.to_thread(process.communicate, timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0 and "Workflow done." in out, out

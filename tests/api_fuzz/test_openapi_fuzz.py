"""Schemathesis over the served OpenAPI document, against a real server on each database.

Checks: no 5xx, every answer's status code is documented for its operation, and every body
matches its documented schema. The live streams are left out (they never end; their edges
have tests of their own), and so are the plugin connection test (it starts whatever command a
plugin names: the fuzzer would run made-up programs on this machine) and the notification
channel test (it sends to whatever service a channel names).

KANBAN_FUZZ_SECONDS bounds each database's run (default 100); KANBAN_FUZZ_SEED repeats one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.conftest import DATABASE_KINDS, LiveServer, free_port, make_settings

REPO = Path(__file__).resolve().parents[2]
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
EXCLUDED = r"^/api/events$|/stream$|^/api/plugins/\{plugin_id\}/test$|^/api/notifications/channels/\{channel_id\}/test$"


def git_repository(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# Fuzzed\n")
    for args in (["init", "-q", "-b", "main"], ["add", "README.md"], ["commit", "-q", "-m", "start"]):
        subprocess.run(
            ["git", *args],
            cwd=folder,
            check=True,
            env={
                **os.environ,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@t",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t",
            },
        )
    return folder


async def seed(client: httpx.AsyncClient, workspace: Path) -> dict[str, list[int]]:
    """A project with tasks, subtasks, a queued run, a plugin, knowledge collections with
    documents (one bound to the project), notification channels: records the fuzzer can find."""

    async def post(path: str, body: dict) -> dict:
        response = await client.post(path, json=body)
        assert response.status_code in (201, 202), response.text
        return response.json()

    projects = [
        await post("/api/projects", {"name": f"Fuzzed {n}", "workspace_path": str(git_repository(workspace / str(n)))})
        for n in range(3)
    ]
    kept, spare = projects[0]["id"], projects[1]["id"]
    tasks = [await post("/api/tasks", {"project_id": kept, "title": f"Task {n}", "labels": ["ui"]}) for n in range(6)]
    tasks.append(await post("/api/tasks", {"project_id": kept, "title": "Subtask", "parent_id": tasks[0]["id"]}))
    spare_tasks = [await post("/api/tasks", {"project_id": spare, "title": f"Spare {n}"}) for n in range(6)]
    run = await post(f"/api/tasks/{tasks[1]['id']}/runs", {"instructions": "go"})
    plugins = [
        await post("/api/plugins", {"name": f"fuzz-{n}", "command": "true", "env": {"API_TOKEN": "s3cret"}})
        for n in range(2)
    ]
    collections = [await post("/api/knowledge/collections", {"name": f"Knowledge {n}"}) for n in range(2)]
    kept_collection = collections[0]["id"]
    documents = [
        await post(
            f"/api/knowledge/collections/{kept_collection}/notes", {"title": f"Note {n}", "content": f"Text {n}"}
        )
        for n in range(2)
    ]
    dead_hook = f"json://127.0.0.1:{free_port()}/hook"  # nothing listens (and no worker sends: run_agents off)
    channels = [
        await post("/api/notifications/channels", {"name": f"Channel {n}", "url": dead_hook, "project_id": kept})
        for n in range(2)
    ]
    bound = await client.put(f"/api/projects/{kept}/knowledge/{kept_collection}", json={"can_write": True})
    assert bound.status_code == 200, bound.text
    return {
        "collection_id": [kept_collection],
        "document_id": [documents[0]["id"]],
        "delete:collection_id": [collections[1]["id"]],
        "delete:document_id": [documents[1]["id"]],
        "project_id": [kept, spare],
        "task_id": [task["id"] for task in tasks + spare_tasks],
        "run_id": [run["id"]],
        "plugin_id": [plugins[0]["id"]],
        "delete:project_id": [spare, projects[2]["id"]],
        "delete:task_id": [task["id"] for task in spare_tasks],
        "delete:plugin_id": [plugins[1]["id"]],
        "channel_id": [channels[0]["id"]],
        "delete:channel_id": [channels[1]["id"]],
    }


@pytest.fixture(params=DATABASE_KINDS)
def fuzz_settings(request: pytest.FixtureRequest, tmp_path: Path, local_model_dir: Path) -> Iterator[Settings]:
    """A database of its own: the fuzzer deletes and changes whatever it finds."""
    dead_registry = f"http://127.0.0.1:{free_port()}"  # nothing listens: searches report the registry as failed
    settings, drop = make_settings(
        request.param,
        tmp_path,
        run_agents=False,  # also: no ingestion, so the URLs the fuzzer adds are never fetched
        glama_url=dead_registry,
        mcp_registry_url=dead_registry,
        knowledge_model_path=local_model_dir,
    )
    yield settings
    drop()


async def test_fuzzing_the_api_finds_no_server_error_and_no_undocumented_answer(
    fuzz_settings: Settings, tmp_path: Path
) -> None:
    settings, kind = fuzz_settings, fuzz_settings.database_kind
    port = free_port()
    seconds = os.environ.get("KANBAN_FUZZ_SECONDS", "100")
    fuzz_seed = os.environ.get("KANBAN_FUZZ_SEED") or str(random.randrange(2**31))
    async with LiveServer(create_app(settings.model_copy(update={"port": port})), port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            seeds = await seed(client, tmp_path / "workspaces")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/api/openapi.json",
            "--checks",
            CHECKS,
            "--exclude-path-regex",
            EXCLUDED,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-time",
            seconds,
            "--seed",
            fuzz_seed,
            # One worker thread: on Python 3.11, ast.parse in two threads at once (Hypothesis
            # describing its filters) can fail with "AST constructor recursion depth mismatch".
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "SCHEMATHESIS_HOOKS": "tests.api_fuzz.hooks",
                "KANBAN_FUZZ_SEEDS": json.dumps(seeds),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    report = output.decode("utf-8", "replace")
    print(report)
    assert process.returncode == 0, f"schemathesis found problems on {kind} (seed {fuzz_seed}):\n{report[-20000:]}"

"""The diff's API schema: typed in the OpenAPI document, and a real diff goes through it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from backend import git
from backend.config import Settings
from backend.main import create_app
from backend.runs.schemas import DiffRead
from tests.git.helpers import commit, write
from tests.git.helpers import git as run_git


def changed_repository(folder: Path) -> tuple[str, str]:
    """A repository whose last commit has a modified file, a lost final newline, a rename, a binary file."""
    folder.mkdir()
    run_git(folder, "init", "--quiet", "-b", "main")
    write(folder / "a.txt", "one\ntwo\n")
    write(folder / "old.txt", "".join(f"line {n}\n" for n in range(10)))
    write(folder / "data.bin", bytes(range(256)))
    base = commit(folder, "base")
    write(folder / "a.txt", "one\nTWO")
    (folder / "old.txt").rename(folder / "new.txt")
    write(folder / "data.bin", bytes(reversed(range(256))))
    return base, commit(folder, "head")


async def test_a_diff_goes_through_the_response_model_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    base, head = changed_repository(folder)
    produced = git.diff(folder, base, head)
    app = FastAPI()

    @app.get("/diff", response_model=DiffRead)
    async def read() -> dict:
        return {**produced, "branch": "kanban/kan-1-x"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        body = (await client.get("/diff")).json()

    expected = {key: value for key, value in produced.items() if key != "truncated"} | {"branch": "kanban/kan-1-x"}
    assert body == json.loads(json.dumps(expected))
    lines = {file["path"]: [line for hunk in file["hunks"] for line in hunk["lines"]] for file in body["files"]}
    assert lines["a.txt"][-1] == {"type": "add", "old": None, "new": 2, "text": "TWO", "no_newline": True}
    assert all("no_newline" not in line for line in lines["a.txt"][:-1])  # only where it is true
    assert {file["path"]: file["status"] for file in body["files"]} == {
        "a.txt": "modified",
        "data.bin": "modified",
        "new.txt": "renamed",
    }


def test_the_openapi_document_describes_the_diff(tmp_path: Path) -> None:
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    schemas = document["components"]["schemas"]
    diff_read = schemas["DiffRead"]["properties"]
    assert diff_read["files"]["items"] == {"$ref": "#/components/schemas/DiffFile"}
    assert diff_read["stats"] == {"$ref": "#/components/schemas/DiffStats"}
    assert schemas["DiffFile"]["properties"]["hunks"]["items"] == {"$ref": "#/components/schemas/DiffHunk"}
    assert schemas["DiffFile"]["properties"]["status"]["enum"] == ["added", "modified", "deleted", "renamed"]
    assert schemas["DiffHunk"]["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/DiffLine"}
    line = schemas["DiffLine"]
    assert line["properties"]["type"]["enum"] == ["context", "add", "del"]
    assert set(line["required"]) == {"type", "old", "new", "text"}  # no_newline is only there when true

"""`kanban workflow list | validate FILE… | start NAME`.

`validate` reads template files here, without a server. `list` and `start` talk to the
running board's REST API (KANBAN_API_URL, default http://127.0.0.1:8000, and KANBAN_API_TOKEN
when the board has one), so what they show and start is exactly what the board does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

# Imported by `kanban`'s argument parser, which `kanban mcp` uses too: the standard library only
# at the top (httpx pulls in click; templates need pydantic and PyYAML): the commands import
# what they use.
DEFAULT_API_URL = "http://127.0.0.1:8000"


def add_parser(commands: Any) -> None:
    workflow = commands.add_parser("workflow", help="Workflow templates: list, validate, start")
    actions = workflow.add_subparsers(dest="workflow_command", required=True)
    listing = actions.add_parser("list", help="The templates the board offers (for a project: its own too)")
    listing.add_argument("--project", help="Project id, name or key")
    validate = actions.add_parser("validate", help="Check template files; problems name the file, line and field")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    start = actions.add_parser("start", help="Start a workflow on a project")
    start.add_argument("name", help="The template's name (kanban workflow list)")
    start.add_argument("--project", required=True, help="Project id, name or key")
    start.add_argument(
        "--input", action="append", default=[], metavar="NAME=VALUE", help="An input of the template (repeatable)"
    )
    start.add_argument("--title", help="The workflow card's title")
    start.add_argument("--wait", action="store_true", help="Wait until the workflow is done, then print its result")


def run(args: argparse.Namespace) -> int:
    try:
        if args.workflow_command == "validate":
            return _validate(args.files)
        board = Board(os.environ.get("KANBAN_API_URL") or DEFAULT_API_URL, os.environ.get("KANBAN_API_TOKEN"))
        with board:
            if args.workflow_command == "list":
                return _list(board, args.project)
            return _start(board, args)
    except BoardError as exc:
        print(f"kanban workflow: {exc}", file=sys.stderr)
        return 1


def _validate(files: list[Path]) -> int:
    from ..errors import KanbanError
    from . import templates

    failed = 0
    for path in files:
        try:
            template = templates.load_file(path, templates.TemplateOrigin.user)
        except KanbanError as exc:
            failed += 1
            problems = getattr(exc, "problems", None)
            for line in [str(p) for p in problems] if problems else [f"{path}: {exc.message}"]:
                print(line)
            continue
        steps = ", ".join(f"{step.id} ({step.kind.value})" for step in template.ordered_steps())
        print(f"{path}: ok: {template.name} ({template.title}): {steps}")
    return 1 if failed else 0


class BoardError(Exception):
    pass


class Board:
    """The board's REST API, with its errors turned into one-line messages."""

    def __init__(self, url: str, token: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BoardError(
                f"the board at {self.url} cannot be reached ({type(exc).__name__}); start it with `kanban serve`, "
                "or set KANBAN_API_URL"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            if isinstance(detail, list):  # a validation error: field and message each
                detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
            raise BoardError(f"{detail} (HTTP {response.status_code})")
        return response.json()

    def project_id(self, ref: str) -> int:
        projects = self.request("GET", "/api/projects")
        for project in projects:
            if ref.strip().lower() in (str(project["id"]), project["name"].lower(), project["key"].lower()):
                return int(project["id"])
        names = ", ".join(f"{p['name']} ({p['key']})" for p in projects) or "none yet"
        raise BoardError(f"no project {ref!r}; projects: {names}")


def _list(board: Board, project: str | None) -> int:
    params = {"project_id": board.project_id(project)} if project else {}
    catalog = board.request("GET", "/api/workflow-templates", params=params)
    for template in catalog["templates"]:
        print(f"{template['name']}  {template['title']}  [{template['origin']}: {template['source']}]")
        if template["description"]:
            print(f"    {template['description']}")
        print("    steps: " + " → ".join(f"{s['id']} ({s['kind']})" for s in template["steps"]))
        for item in template["inputs"]:
            default = f", default {item['default']!r}" if item["default"] not in (None, "") else ""
            needed = "required" if item["required"] else "optional"
            print(f"    --input {item['name']}=…  {item['type']}, {needed}{default}: {item['title']}")
    for problem in catalog["problems"]:
        line = f":{problem['line']}" if problem["line"] else ""
        print(f"cannot read {problem['source']}{line}: {problem['field']}: {problem['message']}", file=sys.stderr)
    return 0


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise BoardError(f"--input {pair!r}: write NAME=VALUE")
        inputs[name.strip()] = value
    return inputs


def _progress_line(workflow: dict[str, Any]) -> str:
    progress = workflow["progress"]
    line = f"  {progress['done']}/{progress['total']} done"
    if progress["current"]:
        line += ": now " + ", ".join(progress["current"])
    waiting = [
        step["short_id"]
        for step in workflow["steps"]
        if step["status"] == "needs_review" and step["review"] != "auto" and step["short_id"]
    ]
    if waiting:
        line += f" (waiting for you in Review: {', '.join(waiting)}; approve or request changes on the board)"
    elif workflow["phase"] == "stalled":
        reasons = [f"{s['short_id']}: {s['reason']}" for s in workflow["steps"] if s["reason"] and not s["blocked"]]
        line += " (stalled" + (f": {'; '.join(reasons)}" if reasons else "") + ")"
    return line


def _start(board: Board, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "project_id": board.project_id(args.project),
        "template": args.name,
        "inputs": _parse_inputs(args.input),
    }
    if args.title:
        body["title"] = args.title
    workflow = board.request("POST", "/api/workflows", json=body)
    parent = board.request("GET", f"/api/tasks/{workflow['parent_task_id']}")
    print(f"Started workflow {workflow['id']}: {parent['short_id']} {parent['title']}")
    for item in workflow["steps"]:
        needs = f" after {', '.join(item['needs'])}" if item["needs"] else ""
        print(f"  {item['short_id']}  {item['step_id']} ({item['kind']}){needs}: {item['title']}")
    if not args.wait:
        return 0
    said = ""
    while True:
        current = board.request("GET", f"/api/workflows/{workflow['id']}")
        if current["status"] != "running":
            break
        news = _progress_line(current)
        if news != said:  # each change once: what works now, what waits for a person
            print(news, flush=True)
            said = news
        time.sleep(1)
    print(f"Workflow {current['status']}.")
    if current.get("result"):
        print(current["result"])
    return 0 if current["status"] == "done" else 1

"""The board as an MCP server: create, run and collect tasks from Claude Code or from an agent.

Every tool goes through the board's REST API (`KANBAN_API_URL`, default http://127.0.0.1:8000,
with `KANBAN_API_TOKEN` when the server needs one), so changes get the same validation and
live events as changes made in the UI.

Inside an agent run the orchestrator sets `KANBAN_PROJECT_ID`, `KANBAN_TASK_ID` and
`KANBAN_RUN_ID`: tools then default to the run's project and task, and tasks the agent creates
record the run that created them.

The core profile includes the knowledge tools (search_knowledge, read_document, add_note,
list_collections; mcp_servers/knowledge_tools.py).

Tools: profile `core` (default) or `full` (adds delete, approve, request changes, cancel), or a
comma-separated list of tool names, chosen with `KANBAN_MCP_TOOLS`. Parameters are plain
strings, numbers and booleans; allowed values are listed in the descriptions.

Run: `kanban mcp` or `python -m mcp_servers.kanban_server` (stdio). The board also serves the
same tools over streamable HTTP at /mcp.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

from backend import __version__
from mcp_servers.environment import DEFAULT_API_URL, RunContext, exit_at_once, log_to_stderr
from mcp_servers.knowledge_tools import KNOWLEDGE_TOOLS, knowledge_tools
from mcp_servers.params import Flag

__all__ = ["CORE_TOOLS", "DEFAULT_API_URL", "FULL_TOOLS", "KanbanAPI", "RunContext", "build_server", "main"]

CORE_TOOLS = (
    "list_projects",
    "create_task",
    "list_tasks",
    "get_task",
    "update_task",
    "move_task",
    "run_task",
    "wait_for_task",
    "get_task_result",
    "list_workflows",
    "start_workflow",
    *KNOWLEDGE_TOOLS,
)
FULL_TOOLS = (*CORE_TOOLS, "delete_task", "approve_task", "request_changes", "cancel_run")
STATUSES = ("todo", "in_progress", "needs_review", "done")
MAX_WAIT_SECONDS = 600
CONNECT_SECONDS = 3.0  # a board on this machine accepts at once
ANSWER_SECONDS = 5.0  # every plain call answers in well under this
# The event stream carries a heartbeat every 15 s: silence for longer means the connection
# is dead even if the socket says otherwise.
STREAM_SILENCE_SECONDS = 45.0
INSTRUCTIONS = (
    "Kanban Orchestrator board. Tasks have short ids like KAN-12 and move through todo → "
    "in_progress (an agent runs) → needs_review → done. create_task(run=true) or run_task starts an "
    "agent; wait_for_task then get_task_result collect the outcome."
)


class BoardUnreachable(ToolError):
    """The board's API could not be reached or did not answer."""


class KanbanAPI:
    """The REST API, with errors turned into tool errors a model can act on."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        connect_seconds: float = CONNECT_SECONDS,
        answer_seconds: float = ANSWER_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.transport = transport
        self.timeout = httpx.Timeout(answer_seconds, connect=connect_seconds)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # Made on first use: the server lists its tools before anything else is set up.
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=self.transport
            )
        return self._client

    def unreachable(self, exc: httpx.TransportError) -> BoardUnreachable:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return BoardUnreachable(
                f"The board's API at {self.base_url} accepted the connection but did not answer within "
                f"{self.timeout.read:g} s. Is `kanban serve` running there and responsive? (A change may "
                "still have been made: look before repeating it.)"
            )
        return BoardUnreachable(
            f"The board's API at {self.base_url} is unreachable ({type(exc).__name__}). Is `kanban serve` "
            "running? Set KANBAN_API_URL if it runs elsewhere."
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = None
            raise ToolError(detail or f"The board answered {response.status_code} to {method} {path}")
        return response.json() if response.content else None

    @asynccontextmanager
    async def events(
        self, project_id: int, last_event_id: str | None
    ) -> AsyncIterator[AsyncIterator[tuple[str | None, str, str]]]:
        """The project's live events as (id, type, data), after `last_event_id` when given.
        A dropped or silent connection raises BoardUnreachable."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = httpx.Timeout(STREAM_SILENCE_SECONDS, connect=self.timeout.connect)
        try:
            async with self.client.stream(
                "GET", "/api/events", params={"project_id": project_id}, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise ToolError(f"The board's event stream answered {response.status_code}: {response.text[:200]}")
                yield self._parse_events(response)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None

    @staticmethod
    async def _parse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str, str]]:
        event_id, event = None, "message"
        data: list[str] = []
        async for line in response.aiter_lines():
            if not line:
                if data:
                    yield event_id, event, "\n".join(data)
                event, data = "message", []
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


def _compact_task(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "short_id", "title", "status", "priority", "labels", "parent_id", "project_id", "version")
    out = {k: task[k] for k in keys if k in task}
    if task.get("description"):
        out["description"] = task["description"]
    if task.get("result"):
        out["result"] = task["result"]
    if task.get("created_by_run_id"):
        out["created_by_run_id"] = task["created_by_run_id"]
    out.update(_dependencies(task))
    return out


def _dependencies(task: dict[str, Any]) -> dict[str, Any]:
    """What a task waits for, in few tokens: `blocked_by` as "KAN-3 (done)" or the reason it blocks."""
    out: dict[str, Any] = {}
    if task.get("blocked_by"):
        out["blocked_by"] = [b["reason"] or f"{b['short_id']} (done)" for b in task["blocked_by"]]
        out["blocked"] = task["blocked"]
    if task.get("start_when_unblocked"):
        out["start_when_unblocked"] = True
    return out


def build_server(
    api: KanbanAPI, context: RunContext | None = None, tools: str | None = None, *, knowledge: bool = True
) -> FastMCP:
    """The board's tools. `knowledge=False` leaves out the knowledge tools (agent runs get them
    from the `knowledge` plugin, as mcp__knowledge__*)."""
    context = context or RunContext()
    mcp = FastMCP("kanban", instructions=INSTRUCTIONS, version=__version__)

    async def project_id(ref: str) -> int:
        ref = ref.strip()
        if not ref:
            if context.project_id is None:
                raise ToolError("Name the project (id, name or key); list_projects shows them.")
            return context.project_id
        if ref.isdigit():
            return int(ref)
        projects = await api.request("GET", "/api/projects")
        for project in projects:
            if ref.lower() in (project["name"].lower(), project["key"].lower()):
                return project["id"]
        names = ", ".join(p["name"] for p in projects) or "none yet"
        raise ToolError(f"No project {ref!r}. Projects: {names}.")

    async def task_id(ref: str) -> int:
        ref = ref.strip()
        if not ref:
            if context.task_id is None:
                raise ToolError("Name the task (its id or short id like KAN-12).")
            return context.task_id
        if ref.isdigit():
            return int(ref)
        found = (await api.request("GET", "/api/tasks", params={"short_id": ref, "limit": 1}))["items"]
        if not found:
            raise ToolError(f"No task {ref!r}. Use list_tasks to find it.")
        return found[0]["id"]

    async def task_ids(refs: str) -> list[int]:
        """Comma-separated ids or short ids; "none" for no tasks."""
        if refs.strip().lower() == "none":
            return []
        return [await task_id(ref) for ref in refs.split(",") if ref.strip()]

    def check_status(status: str) -> str:
        if status not in STATUSES:
            raise ToolError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
        return status

    async def latest_run(task: dict[str, Any]) -> dict[str, Any] | None:
        runs = await api.request("GET", f"/api/tasks/{task['id']}/runs")
        if not runs:
            return None
        run = runs[0]
        summary = {"run_id": run["id"]} | {
            k: run[k] for k in ("attempt", "status", "branch", "cost_usd", "error") if run.get(k) is not None
        }
        if run.get("base_commit"):
            summary["diff"] = (await api.request("GET", f"/api/tasks/{task['id']}/diff"))["stats"]
        return summary

    registry: dict[str, Callable[..., Any]] = {}

    def tool(function: Callable[..., Any]) -> Callable[..., Any]:
        registry[function.__name__] = function
        return function

    @tool
    async def list_projects() -> list[dict[str, Any]]:
        """List the board's projects (id, name, key, folder, base branch)."""
        projects = await api.request("GET", "/api/projects")
        return [{k: p[k] for k in ("id", "name", "key", "workspace_path", "base_branch")} for p in projects]

    @tool
    async def create_task(
        title: str,
        description: str = "",
        project: str = "",
        status: str = "todo",
        parent: str = "",
        run: Flag = False,
        blocked_by: str = "",
        start_when_unblocked: Flag = False,
    ) -> dict[str, Any]:
        """Create a task. project: id, name or key (default: the current run's project). status: todo,
        in_progress, needs_review or done. parent: id or short id of the parent task (inside a run the
        default is the run's own task; "none" for a top-level task). run: true to start an agent on it.
        blocked_by: comma-separated ids or short ids of tasks it waits for (until all are done).
        start_when_unblocked: true to start an agent by itself once they are done."""
        body: dict[str, Any] = {
            "project_id": await project_id(project),
            "title": title,
            "description": description,
            "status": check_status(status),
        }
        if parent.strip().lower() == "none":
            pass
        elif parent.strip():
            body["parent_id"] = await task_id(parent)
        elif context.task_id is not None and not project.strip():
            body["parent_id"] = context.task_id
        if context.run_id is not None:
            body["created_by_run_id"] = context.run_id
        if blocked_by.strip():
            body["blocked_by"] = await task_ids(blocked_by)
        if start_when_unblocked:
            body["start_when_unblocked"] = True
        task = await api.request("POST", "/api/tasks", json=body)
        result = _compact_task(task)
        if run:
            started = await api.request("POST", f"/api/tasks/{task['id']}/runs", json={})
            result["run"] = {"run_id": started["id"], "attempt": started["attempt"], "status": started["status"]}
        return result

    @tool
    async def list_tasks(project: str = "", status: str = "", query: str = "", limit: int = 20) -> list[dict[str, Any]]:
        """List tasks. project: id, name or key (default: the current run's project; "all" for every
        project). status: todo, in_progress, needs_review or done (default: all). query: text in title or
        description. limit: 1-200."""
        params: dict[str, Any] = {"limit": max(1, min(limit, 200))}
        if project.strip().lower() != "all" and (project.strip() or context.project_id is not None):
            params["project_id"] = await project_id(project)
        if status:
            params["status"] = check_status(status)
        if query:
            params["q"] = query
        page = await api.request("GET", "/api/tasks", params=params)
        return [
            {
                **{k: t[k] for k in ("id", "short_id", "title", "status", "priority", "parent_id")},
                **({"blocked_by": [b["reason"] for b in t["blocked_by"] if b["blocking"]]} if t["blocked"] else {}),
            }
            for t in page["items"]
        ]

    @tool
    async def get_task(task: str = "") -> dict[str, Any]:
        """A task with its latest agent run (status, branch, diff stats, cost). task: id or short id
        (default: the current run's task)."""
        found = await api.request("GET", f"/api/tasks/{await task_id(task)}")
        result = _compact_task(found)
        result["run"] = await latest_run(found)
        return result

    @tool
    async def update_task(
        task: str = "",
        title: str = "",
        description: str = "",
        priority: str = "",
        labels: str = "",
        result: str = "",
        blocked_by: str = "",
        start_when_unblocked: Flag | None = None,
    ) -> dict[str, Any]:
        """Change a task's fields; empty ones stay as they are. task: id or short id (default: the current
        run's task). priority: none, low, medium, high or urgent. labels: comma-separated. result: markdown
        summary of the outcome (an agent reports its work here). blocked_by: comma-separated ids or short
        ids of the tasks it waits for (replaces them; "none" clears). start_when_unblocked: true or false."""
        current = await api.request("GET", f"/api/tasks/{await task_id(task)}")
        body: dict[str, Any] = {"version": current["version"]}
        for name, value in (("title", title), ("description", description), ("priority", priority), ("result", result)):
            if value:
                body[name] = value
        if labels:
            body["labels"] = [label.strip() for label in labels.split(",") if label.strip()]
        if blocked_by.strip():
            body["blocked_by"] = await task_ids(blocked_by)
        if start_when_unblocked is not None:
            body["start_when_unblocked"] = start_when_unblocked
        return _compact_task(await api.request("PATCH", f"/api/tasks/{current['id']}", json=body))

    @tool
    async def move_task(task: str, status: str, before: str = "", after: str = "") -> dict[str, Any]:
        """Move a task to a column: status todo, in_progress, needs_review or done. before/after: id or
        short id of a task in that column to place it next to (default: the end)."""
        body: dict[str, Any] = {"status": check_status(status)}
        if before:
            body["before_id"] = await task_id(before)
        elif after:
            body["after_id"] = await task_id(after)
        return _compact_task(await api.request("POST", f"/api/tasks/{await task_id(task)}/move", json=body))

    @tool
    async def run_task(task: str, instructions: str = "") -> dict[str, Any]:
        """Start an agent on a task (it moves to in_progress). instructions: extra guidance for the agent."""
        run = await api.request("POST", f"/api/tasks/{await task_id(task)}/runs", json={"instructions": instructions})
        return {"run_id": run["id"], "status": run["status"], "attempt": run["attempt"]}

    @tool
    async def wait_for_task(task: str, timeout: int = 300) -> dict[str, Any]:
        """Wait until a task leaves in_progress (its agent, or its workflow, finished) or timeout
        seconds pass (max 600). Returns the task's status, latest run and result."""
        tid = await task_id(task)
        timeout = max(1, min(timeout, MAX_WAIT_SECONDS))
        deadline = time.monotonic() + timeout
        found = await api.request("GET", f"/api/tasks/{tid}")

        async def moved() -> bool:
            current = await api.request("GET", f"/api/tasks/{tid}")
            return current["status"] != "in_progress"

        async def until_moved() -> None:
            # Follows the board's event stream. When the connection drops (the board restarts)
            # it reconnects with Last-Event-ID, so the board replays what was missed, and looks
            # at the task again after each (re)subscription.
            last_event_id: str | None = None
            pause = 0.1
            while True:
                try:
                    async with api.events(found["project_id"], last_event_id) as events:
                        if await moved():
                            return
                        pause = 0.1
                        async for event_id, event, data in events:
                            last_event_id = event_id or last_event_id
                            if event in ("task.moved", "task.deleted"):
                                payload = json.loads(data)["payload"]
                                if payload["id"] == tid and (
                                    event == "task.deleted" or payload["status"] != "in_progress"
                                ):
                                    return
                except BoardUnreachable:
                    pass
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 2.0)

        timed_out = False
        if found["status"] == "in_progress":
            try:
                await asyncio.wait_for(until_moved(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                timed_out = True
        found = await api.request("GET", f"/api/tasks/{tid}")
        answer = {
            "short_id": found["short_id"],
            "status": found["status"],
            "timed_out": timed_out,
            "run": await latest_run(found),
        }
        if found.get("result") and found["status"] in ("needs_review", "done"):
            answer["result"] = found["result"]
        return answer

    @tool
    async def list_workflows(project: str = "") -> list[dict[str, Any]]:
        """Workflow templates a project can start (start_workflow): name, title, steps and inputs
        ("name: type", * = required, = default)."""
        params = {"project_id": await project_id(project)} if project.strip() or context.project_id else {}
        catalog = await api.request("GET", "/api/workflow-templates", params=params)
        return [
            {
                "name": t["name"],
                "title": t["title"],
                "steps": " → ".join(s["id"] for s in t["steps"]),
                "inputs": [
                    f"{i['name']}: {i['type']}"
                    + ("*" if i["required"] else "")
                    + (f" = {i['default']}" if i["default"] not in (None, "") else "")
                    for i in t["inputs"]
                ],
            }
            for t in catalog["templates"]
        ]

    @tool
    async def start_workflow(template: str, inputs: dict[str, Any] | None = None, project: str = "") -> dict[str, Any]:
        """Start a workflow template: one card per step, each starting once the steps it needs are
        done. inputs: {name: value}. Returns the workflow's card: wait_for_task on it ends when every
        step is done, with the final step's result."""
        body = {"project_id": await project_id(project), "template": template.strip(), "inputs": inputs or {}}
        workflow = await api.request("POST", "/api/workflows", json=body)
        parent = await api.request("GET", f"/api/tasks/{workflow['parent_task_id']}")
        return {
            **{k: parent[k] for k in ("id", "short_id", "title", "status")},
            "workflow_id": workflow["id"],
            "steps": [f"{s['short_id']} {s['step_id']} ({s['kind']})" for s in workflow["steps"]],
        }

    @tool
    async def get_task_result(task: str) -> dict[str, Any]:
        """The outcome of a task: its result text, status and latest run (branch, diff stats, cost, error)."""
        found = await api.request("GET", f"/api/tasks/{await task_id(task)}")
        return {
            "short_id": found["short_id"],
            "status": found["status"],
            "result": found.get("result") or "",
            "run": await latest_run(found),
        }

    @tool
    async def delete_task(task: str) -> str:
        """Delete a task (its subtasks stay, without parent)."""
        tid = await task_id(task)
        await api.request("DELETE", f"/api/tasks/{tid}")
        return f"Deleted task {task}."

    @tool
    async def approve_task(task: str) -> dict[str, Any]:
        """Approve a task in needs_review: its branch is merged into the base branch and it moves to done."""
        return _compact_task(await api.request("POST", f"/api/tasks/{await task_id(task)}/approve"))

    @tool
    async def request_changes(task: str, feedback: str) -> dict[str, Any]:
        """Send a task in needs_review back to its agent with feedback; the agent continues its session."""
        run = await api.request(
            "POST", f"/api/tasks/{await task_id(task)}/request-changes", json={"feedback": feedback}
        )
        return {"run_id": run["id"], "status": run["status"], "attempt": run["attempt"]}

    @tool
    async def cancel_run(task: str) -> dict[str, Any]:
        """Cancel the active agent run of a task."""
        runs = await api.request("GET", f"/api/tasks/{await task_id(task)}/runs")
        active = next((r for r in runs if r["status"] in ("queued", "running", "waiting_approval")), None)
        if active is None:
            raise ToolError(f"Task {task} has no active run.")
        run = await api.request("POST", f"/api/runs/{active['id']}/cancel")
        return {"run_id": run["id"], "status": run["status"]}

    registry.update(knowledge_tools(api, context))
    for name in select_tools(tools):
        if knowledge or name not in KNOWLEDGE_TOOLS:
            mcp.tool(registry[name])

    @mcp.resource("kanban://projects", mime_type="application/json")
    async def projects_resource() -> str:
        """Every project on the board."""
        return json.dumps(await list_projects())

    @mcp.resource("kanban://projects/{project}/board", mime_type="text/plain")
    async def board_resource(project: str) -> str:
        """A compact board: each column with its tasks (short id, title, agent status)."""
        board = await api.request("GET", f"/api/projects/{await project_id(project)}/board")
        lines = [f"# {board['project']['name']}"]
        for column in board["columns"]:
            lines.append(f"\n## {column['title']} ({column['count']})")
            for card in column["tasks"]:
                run = f" [agent: {card['run']['status']}]" if card.get("run") else ""
                lines.append(f"- {card['short_id']} {card['title']}{run}")
        return "\n".join(lines)

    return mcp


def select_tools(spec: str | None) -> list[str]:
    spec = (spec or "core").strip()
    if spec == "core":
        return list(CORE_TOOLS)
    if spec == "full":
        return list(FULL_TOOLS)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in FULL_TOOLS]
    if unknown:
        raise SystemExit(f"KANBAN_MCP_TOOLS: unknown tools {unknown}; use core, full or names from {list(FULL_TOOLS)}")
    return names


class _ToolAnswersFilter(logging.Filter):
    """Drops FastMCP's per-call records for a tool's refusal or a client's invalid arguments:
    the client gets those as the tool's answer. Failures with a traceback stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(record.exc_info) or not record.getMessage().startswith(
            ("Error calling tool", "Invalid arguments for tool")
        )


def configure_logging(level_name: str | None) -> None:
    log_to_stderr(level_name, ("fastmcp", "mcp", "httpx", "kanban.mcp"), _ToolAnswersFilter())


def main() -> None:
    # FastMCP keeps per-session state in py-key-value, imported on the first tools/list; its
    # runtime type checks (beartype, applied to the package as it is imported) make that the
    # slowest step between `initialize` and the tool list Claude Code waits for.
    os.environ.setdefault("PY_KEY_VALUE_DISABLE_BEARTYPE", "true")
    signal.signal(signal.SIGINT, exit_at_once)
    signal.signal(signal.SIGTERM, exit_at_once)
    configure_logging(os.environ.get("KANBAN_LOG_LEVEL"))
    api = KanbanAPI(os.environ.get("KANBAN_API_URL") or DEFAULT_API_URL, os.environ.get("KANBAN_API_TOKEN") or None)
    server = build_server(api, RunContext.from_env(), os.environ.get("KANBAN_MCP_TOOLS"))
    server.run(show_banner=False)


if __name__ == "__main__":
    main()

"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__
from .api import api_router
from .board import event_payloads
from .body_limit import BodyLimit
from .config import Settings
from .db import Database
from .errors import KanbanError
from .events.hub import EventHub
from .metrics import Metrics
from .monitoring import metrics_router
from .plugins import service as plugin_service
from .plugins.secrets import SecretBox
from .runs import monitoring as run_monitoring
from .runs import service as run_service
from .runs.agent import Executor
from .runs.live import RunListeners
from .runs.service import RUN_EVENTS_CHANNEL
from .security import RequestGuard, redact_access_log
from .worker import AgentWorker, SchemaNotCurrent, check_schema

log = logging.getLogger("backend")
SOURCE_FRONTEND = Path(__file__).resolve().parent.parent / "frontend" / "build"


async def _register_builtin_plugins(database: Database) -> None:
    try:
        async with database.session(write=True) as session:
            await plugin_service.register_builtins(session)
    except IntegrityError:
        log.info("another server process registered the built-in plugins first")


def create_app(settings: Settings | None = None, executor: Executor | None = None) -> FastAPI:
    """The application. `executor` replaces the Claude executor (tests inject faults with it)."""
    settings = settings or Settings()
    event_payloads.install()  # every board event's payload is checked against its model

    mcp_app = _kanban_mcp_app(settings)
    metrics = Metrics()  # this app's own registry: several apps in one process do not clash

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        try:
            await check_schema(database)
            database.on_commit(run_monitoring.counting(metrics))
            hub = EventHub(database, poll_seconds=settings.event_poll_seconds)
            # The followers of run logs: events this process writes are handed to them, other
            # processes' batches make them read the database (NOTIFY on PostgreSQL).
            listeners = RunListeners()
            hub.listen(RUN_EVENTS_CHANNEL, run_service.other_process_wrote(listeners))
            await hub.start()
            app.state.run_listeners = listeners
            app.state.database = database
            app.state.hub = hub
            app.state.secrets = SecretBox.for_data_dir(settings.data_dir)
            app.state.discovery = plugin_service.discovery_for(settings)
            await _register_builtin_plugins(database)
            worker = None
            if settings.run_agents:
                worker = AgentWorker(database, settings, hub, app.state.secrets, executor, metrics, listeners)
                await worker.start()
            app.state.worker = worker
            app.state.orchestrator = worker.orchestrator if worker is not None else None
            try:
                async with mcp_app.router.lifespan_context(mcp_app):
                    yield
            finally:
                if worker is not None:
                    await worker.stop()
                await app.state.discovery.aclose()
                await hub.stop()
        finally:
            await database.dispose()

    app = FastAPI(
        title="Kanban Orchestrator",
        version=__version__,
        summary="A local-first Kanban board that orchestrates AI agents.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: f"{route.tags[0]}-{route.name}" if route.tags else route.name,
        docs_url=None,  # served below, with Swagger UI's files from this server (works offline)
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(api_router)
    app.include_router(metrics_router)
    app.mount("/mcp", mcp_app, name="mcp")
    _add_error_handlers(app)
    _add_well_known(app)
    frontend_dir = settings.frontend_dir or SOURCE_FRONTEND
    _add_api_docs(app, frontend_dir / API_DOCS_ASSETS)
    _document_streams(app)
    _mount_frontend(app, frontend_dir)
    # Outermost last: the guard answers before a body is read, the limit before it is read whole.
    # A knowledge upload may be larger (its multipart framing adds a little).
    upload_limit = max(settings.max_body_bytes, settings.knowledge_max_upload_bytes + 64 * 1024)
    upload = (r"/api/knowledge/collections/[^/]+/files", upload_limit)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=[upload])
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(McpPathAlias)
    redact_access_log()
    return app


class McpPathAlias:
    """Serve the MCP endpoint at /mcp as well as /mcp/ (clients are configured with either)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            scope = {**scope, "path": "/mcp/", "raw_path": b"/mcp/"}
        await self.app(scope, receive, send)


def _kanban_mcp_app(settings: Settings):
    """The board's MCP server over streamable HTTP; its tools call this server's API."""
    from mcp_servers.kanban_server import KanbanAPI, build_server

    token = settings.api_token.get_secret_value() if settings.api_token else None
    server = build_server(KanbanAPI(settings.resolved_api_url, token))
    # Host, Origin and token checks are done for /mcp by RequestGuard, like for /api.
    return server.http_app(path="/", host_origin_protection=None)


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict]]:
    errors = []
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "json_invalid":
            where, message = "body", "is not valid JSON"
        errors.append({"loc": loc, "msg": message, "type": error.get("type")})
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "Invalid request", errors


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KanbanError)
    async def _kanban_error(_request: Request, exc: KanbanError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_message(exc)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(IntegrityError)
    async def _race(_request: Request, exc: Exception) -> JSONResponse:
        log.info("conflicting concurrent write: %s", exc)
        return JSONResponse({"detail": "A concurrent change got there first; reload and try again."}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"detail": "Internal server error; the server log has the details."}, status_code=500)


WELL_KNOWN_DETAIL = (
    "Not found: this server publishes no metadata under /.well-known/ (no OAuth). When it has an "
    "API token, clients send it as `Authorization: Bearer <token>`."
)


def _add_well_known(app: FastAPI) -> None:
    """/.well-known/* answers 404 JSON. An MCP client that gets a 401 looks for OAuth metadata
    there; without this route the board's page (the fallback for unknown paths) answered."""

    @app.api_route("/.well-known/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def _well_known(name: str) -> JSONResponse:
        return JSONResponse({"detail": WELL_KNOWN_DETAIL}, status_code=404)


class SinglePageApp(StaticFiles):
    """The built board: real files as they are, every other path gets index.html."""

    async def get_response(self, path: str, scope: Scope):
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith(("api/", "mcp")):
                raise
            return await super().get_response("index.html", scope)


MISSING_FRONTEND = """<!doctype html><meta charset="utf-8"><title>Kanban Orchestrator</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The board is not built yet</h1>
<p>The API runs (see <a href="/api/docs">/api/docs</a>), but the web board has not been built.
Run <code>make run</code> from the project folder: it builds the board and starts the server.</p>"""


API_DOCS_ASSETS = "api-docs"  # Swagger UI's files, copied into the frontend build from swagger-ui-dist
API_DOCS_FILES = {"js": "swagger-ui-bundle.js", "css": "swagger-ui.css", "icon": "favicon-32x32.png"}

MISSING_API_DOCS = """<!doctype html><meta charset="utf-8"><title>Kanban Orchestrator API</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The API documentation page is not built yet</h1>
<p>Its files come with the web board's build: run <code>make frontend</code> from the project folder.
The API's description is at <a href="/api/openapi.json">/api/openapi.json</a> meanwhile.</p>"""


def _document_streams(app: FastAPI) -> None:
    """FastAPI documents a response model as JSON. A route whose 200 answer declares
    `text/event-stream` content is a Server-Sent Events stream, and its model describes the
    messages (their `data:`): the document lists the model under `text/event-stream` only."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        for operations in document["paths"].values():
            for operation in operations.values():
                content = operation.get("responses", {}).get("200", {}).get("content", {})
                if "text/event-stream" in content and "application/json" in content:
                    content["text/event-stream"] = content.pop("application/json")
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to amend the schema


def _add_api_docs(app: FastAPI, assets: Path) -> None:
    """Swagger UI at /api/docs, its script and styles served from `assets` (no CDN: works offline)."""
    app.mount("/api/docs/assets", StaticFiles(directory=assets, check_dir=False), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    async def _api_docs() -> HTMLResponse:
        if not all((assets / name).is_file() for name in API_DOCS_FILES.values()):
            return HTMLResponse(MISSING_API_DOCS, status_code=503)
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/api/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"/api/docs/assets/{API_DOCS_FILES['js']}",
            swagger_css_url=f"/api/docs/assets/{API_DOCS_FILES['css']}",
            swagger_favicon_url=f"/api/docs/assets/{API_DOCS_FILES['icon']}",
            # No validator badge: it is an image from the validator's web site.
            swagger_ui_parameters={"validatorUrl": None},
        )


def _mount_frontend(app: FastAPI, build_dir: Path) -> None:
    if (build_dir / "index.html").is_file():
        app.mount("/", SinglePageApp(directory=build_dir, html=True), name="frontend")
        return

    @app.get("/", include_in_schema=False)
    async def _missing_frontend() -> HTMLResponse:
        return HTMLResponse(MISSING_FRONTEND, status_code=503)


__all__ = ["SchemaNotCurrent", "create_app"]

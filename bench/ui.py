"""Browser benchmark: a board of 2,000 tasks in headless Chromium, then 500 live events.

Measures the time from navigation to every card rendered, the JS heap before and after 500
task events arriving over the live stream (garbage collected before each reading), and the
size of the production bundle.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import tempfile
import time
from pathlib import Path

import httpx

from .api import _create_load, _new_project
from .common import REPO, Row, kanban_server

TASKS = 2_000
LIVE_EVENTS = 500
CHROMIUM = os.environ.get("KANBAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BUILD = REPO / "frontend" / "build"


def bundle_size() -> tuple[int, int]:
    """Bytes of the board's JS and CSS in the build, raw and gzipped (without the API docs'
    Swagger UI files, which only /api/docs loads)."""
    raw = gzipped = 0
    for path in BUILD.rglob("*"):
        if path.suffix in (".js", ".css") and path.is_file() and "api-docs" not in path.relative_to(BUILD).parts:
            data = path.read_bytes()
            raw += len(data)
            gzipped += len(gzip.compress(data, 9))
    return raw, gzipped


async def _heap_mb(cdp) -> float:
    await cdp.send("HeapProfiler.collectGarbage")
    usage = await cdp.send("Runtime.getHeapUsage")
    return usage["usedSize"] / 1024 / 1024


async def open_board(page, url: str, project_id: int) -> float:
    """Seconds from navigating to the board until all its cards are in the page."""
    started = time.perf_counter()
    await page.goto(f"{url}/?project={project_id}")
    await page.wait_for_function(
        f"document.querySelectorAll('[data-testid=task-card]').length >= {TASKS}", timeout=60_000, polling=20
    )
    return time.perf_counter() - started


async def _measure(url: str, project_id: int) -> tuple[float, float, float, int]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        first_render = await open_board(page, url, project_id)
        cdp = await page.context.new_cdp_session(page)
        await asyncio.sleep(1)
        heap_before = await _heap_mb(cdp)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            tasks = (await http.get("/api/tasks", params={"project_id": project_id, "limit": 200})).json()["items"]
            for i in range(LIVE_EVENTS):
                task = tasks[i % len(tasks)]
                response = await http.patch(
                    f"/api/tasks/{task['id']}", json={"version": task["version"], "title": f"Live {i}"}
                )
                tasks[i % len(tasks)] = response.json()
        last_title = f"Live {LIVE_EVENTS - 1}"
        await page.wait_for_function(
            f"[...document.querySelectorAll('[data-testid=task-title]')].some(e => e.textContent.includes({last_title!r}))",
            timeout=30_000,
        )
        heap_after = await _heap_mb(cdp)
        cards = await page.locator("[data-testid=task-card]").count()
        await browser.close()
    return first_render, heap_before, heap_after, cards


def run(quick: bool = False) -> list[Row]:
    if not Path(CHROMIUM).exists() or not (BUILD / "index.html").exists():
        return [Row("board UI", "skipped", f"needs {CHROMIUM} and a frontend build (make frontend)")]
    data_dir = tempfile.mkdtemp(prefix="kanban-bench-ui-")
    with kanban_server(data_dir) as server:
        project_id = asyncio.run(_new_project(server.url))
        asyncio.run(_create_load(server.url, project_id, TASKS, 8))
        first_render, heap_before, heap_after, cards = asyncio.run(_measure(server.url, project_id))
    raw, gzipped = bundle_size()
    growth = heap_after - heap_before
    return [
        Row(
            "board UI",
            f"first full render, {TASKS:,} tasks ({cards:,} cards)",
            f"{first_render * 1000:.0f} ms",
            "< 1.0 s",
            first_render < 1.0,
        ),
        Row("board UI", "JS heap after render (after GC)", f"{heap_before:.1f} MB"),
        Row("board UI", f"JS heap growth over {LIVE_EVENTS} live events", f"{growth:+.1f} MB", "< 20 MB", growth < 20),
        Row("board UI", "production bundle (JS + CSS)", f"{raw / 1024:.0f} KiB ({gzipped / 1024:.0f} KiB gzipped)"),
    ]

"""Where the board's first render of 2,000 cards spends its time: `python -m bench.ui_profile`.

Loads the same board as `bench ui` in headless Chromium with the CDP sampling profiler on from
before the navigation, then prints the phases (the board request, script, style, layout, as
Chromium's Performance metrics count them) and the functions with the most self time, by
source file. The frontend build must be current (`npm run build` in frontend/); built with
`KANBAN_SOURCEMAP=1` it has a source map, which the saved profile (`--save`) can be read with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

from .api import _create_load, _new_project
from .common import kanban_server
from .ui import CHROMIUM, CHROMIUM_ARGS, TASKS, open_board

METRICS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration", "JSHeapUsedSize")


def _self_times(profile: dict[str, Any]) -> tuple[Counter[str], Counter[str], float]:
    """Self time in ms by function (name and place) and by file, from a CPU profile."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    interval_ms = (profile["endTime"] - profile["startTime"]) / 1000 / max(1, len(profile["samples"]))
    hits = Counter(profile["samples"])
    by_function: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    for node_id, count in hits.items():
        frame = nodes[node_id]["callFrame"]
        url = frame["url"].rsplit("/", 1)[-1] or "(native)"
        name = frame["functionName"] or "(anonymous)"
        by_function[f"{name} {url}:{frame['lineNumber'] + 1}:{frame['columnNumber'] + 1}"] += count * interval_ms
        by_file[url] += count * interval_ms
    return by_function, by_file, interval_ms


async def _profile(url: str, project_id: int, top: int, save: Path | None) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await cdp.send("Profiler.enable")
        await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        await page.goto("about:blank")
        before = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        await cdp.send("Profiler.start")
        first_render = await open_board(page, url, project_id)
        profile = (await cdp.send("Profiler.stop"))["profile"]
        if save is not None:
            save.write_text(json.dumps(profile))  # opens in Chromium DevTools' Performance panel
        after = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        requests = await page.evaluate(
            "performance.getEntriesByType('resource').map(e => [e.name, e.startTime, e.responseEnd, e.transferSize])"
        )
        navigation = await page.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.requestStart, n.responseStart, n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]; })()"
        )
        await browser.close()
    print(f"first full render: {first_render * 1000:.0f} ms (profiler on)")
    asked, answered, html, content_loaded, loaded = navigation
    print(
        f"page: HTML asked at {asked:.0f} ms, first byte {answered:.0f} ms, whole {html:.0f} ms, "
        f"DOMContentLoaded {content_loaded:.0f} ms, load {loaded:.0f} ms"
    )
    print("requests (ms after navigation):")
    for name, start, end, size in requests:
        print(f"  {start:6.0f} → {end:6.0f}  {size / 1024:6.0f} KiB  {name.split('//', 1)[-1].split('/', 1)[-1][:70]}")
    for name in METRICS:
        delta = after.get(name, 0) - before.get(name, 0)
        print(f"{name}: {delta / 1024 / 1024:.1f} MB" if name.endswith("Size") else f"{name}: {delta * 1000:.0f} ms")
    by_function, by_file, interval = _self_times(profile)
    print(f"\nself time by file (sampled every {interval:.2f} ms):")
    for name, ms in by_file.most_common(top):
        print(f"  {ms:7.0f} ms  {name}")
    print("\nself time by function:")
    for name, ms in by_function.most_common(top):
        print(f"  {ms:7.0f} ms  {name}")


async def _loads(url: str, project_id: int, count: int) -> list[float]:
    """First full render of `count` fresh browsers (no cache), without the profiler."""
    from playwright.async_api import async_playwright

    times = []
    async with async_playwright() as playwright:
        for _ in range(count):
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            times.append(await open_board(page, url, project_id))
            await browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_profile")
    parser.add_argument("--top", type=int, default=25, help="how many files and functions to list")
    parser.add_argument("--save", type=Path, help="write the CPU profile (.cpuprofile) here")
    parser.add_argument("--loads", type=int, default=5, help="fresh loads without the profiler, for the median")
    args = parser.parse_args()
    with kanban_server(tempfile.mkdtemp(prefix="kanban-bench-ui-")) as server:
        project_id = asyncio.run(_new_project(server.url))
        asyncio.run(_create_load(server.url, project_id, TASKS, 8))
        asyncio.run(_profile(server.url, project_id, args.top, args.save))
        if args.loads:
            times = sorted(asyncio.run(_loads(server.url, project_id, args.loads)))
            shown = ", ".join(f"{t * 1000:.0f}" for t in times)
            print(
                f"\nfirst full render without the profiler, {args.loads} loads: median {median(times) * 1000:.0f} ms ({shown})"
            )


if __name__ == "__main__":
    main()

"""`make bench`: run every benchmark, print one table, optionally write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from . import api, mcp
from .common import Row

SECTIONS = {"api": api.run, "mcp": mcp.run}
for optional in ("ui", "runs", "knowledge", "workflows", "scaleout"):
    try:
        module = __import__(f"bench.{optional}", fromlist=["run"])
        SECTIONS[optional] = module.run
    except ImportError:
        pass


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    return f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def table(rows: list[Row]) -> str:
    header = ["section", "metric", "value", "target", ""]
    body = [[r.section, r.metric, r.value, r.target, r.verdict] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--write", action="store_true", help="write the table to bench/RESULTS.md")
    args = parser.parse_args()
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    rows: list[Row] = []
    for name in args.sections or SECTIONS:
        print(f"running {name} …", flush=True)
        rows += SECTIONS[name](quick=args.quick)
    output = table(rows)
    print(output)
    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        Path(__file__).with_name("RESULTS.md").write_text(
            f"# Benchmark results\n\nRun {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {commit} on {machine()}.\n"
            f"Produced by `make bench BENCH_ARGS=--write`; targets are goals, not test assertions.\n\n{output}\n"
        )


if __name__ == "__main__":
    main()

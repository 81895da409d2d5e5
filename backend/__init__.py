"""Kanban Orchestrator: a local-first Kanban board that orchestrates AI agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kanban-orchestrator")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

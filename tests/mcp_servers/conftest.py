"""Fixtures for the filesystem MCP server tests: a root folder with traps around it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastmcp import Client

from mcp_servers.filesystem_server import build_server


@dataclass
class Sandbox:
    base: Path  # holds everything below
    root: Path  # the server's root folder
    sentinel: Path  # outside the root; must never change
    sibling: Path  # another folder next to the root

    def outside_digest(self) -> str:
        """Hash of every entry under ``base`` except the root folder's contents."""
        return tree_digest(self.base, skip=self.root)


def tree_digest(top: Path, skip: Path | None = None) -> str:
    """A digest of names, types, modes, link targets and file bytes below ``top`` (links are not followed)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = path.relative_to(top).as_posix()
            st = path.lstat()
            h.update(f"{rel}\0{st.st_mode}\0".encode())
            if skip is not None and path == skip:
                continue
            if path.is_symlink():
                h.update(os.readlink(path).encode())
            elif path.is_file():
                h.update(path.read_bytes())
        if skip is not None and skip.name in dirnames and here == skip.parent:
            dirnames.remove(skip.name)
    return h.hexdigest()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    base = tmp_path / "box"
    root = base / "root"
    sentinel = base / "sentinel"
    sibling = base / "sibling"
    (sentinel / "nested").mkdir(parents=True)
    (sentinel / "secret.txt").write_text("top secret\n")
    (sentinel / "nested" / "more.txt").write_text("more secrets\n")
    sibling.mkdir()
    (sibling / "note.txt").write_text("sibling note\n")

    (root / "sub" / "deep").mkdir(parents=True)
    (root / "hello.txt").write_text("hello world\n")
    (root / "sub" / "code.py").write_text("def main():\n    return 'needle'\n")
    (root / "sub" / "deep" / "notes.md").write_text("# Notes\nneedle in a haystack\n")
    (root / "bin.dat").write_bytes(bytes(range(256)))
    # Traps: symlinks that lead out of the root, and one that stays inside.
    (root / "link_out").symlink_to("../sentinel", target_is_directory=True)
    (root / "link_out_file").symlink_to(sentinel / "secret.txt")
    (root / "sub" / "escape").symlink_to(sentinel, target_is_directory=True)
    (root / "dangling_out").symlink_to("../sentinel/not-yet.txt")
    (root / "link_in").symlink_to("sub", target_is_directory=True)
    os.mkfifo(root / "pipe")
    return Sandbox(base=base, root=root, sentinel=sentinel, sibling=sibling)


@pytest.fixture
async def fs_client(sandbox: Sandbox) -> AsyncIterator[Client]:
    async with Client(build_server(sandbox.root)) as client:
        yield client


@pytest.fixture
def call(fs_client: Client) -> Callable:
    """``await call(tool, **args)`` returns the tool's structured result (raises ToolError on failure)."""

    async def _call(tool: str, **args):
        result = await fs_client.call_tool(tool, args)
        return result.data

    return _call

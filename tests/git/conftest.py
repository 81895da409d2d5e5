"""Fixtures for the git package's tests: a bare git configuration, a project repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.git.helpers import TEST_IDENTITY, commit, git, write


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No global or system git configuration and no identity: every test sees a bare git."""
    global_config = tmp_path / "global gitconfig"
    global_config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable in (*TEST_IDENTITY, "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "EMAIL"):
        monkeypatch.delenv(variable, raising=False)
    return global_config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project folder with spaces in its path, on `main`, with one commit."""
    folder = tmp_path / "my project"
    folder.mkdir()
    git(folder, "init", "--quiet", "-b", "main")
    write(folder / "README.md", "# Project\n")
    write(folder / "src" / "app.py", "print('hello')\n")
    write(folder / ".gitignore", ".env\nnode_modules/\n*.log\n")
    write(folder / ".env", "SECRET=1\n")
    commit(folder, "Initial")
    return folder


@pytest.fixture
def worktree_root(tmp_path: Path) -> Path:
    return tmp_path / "work trees"

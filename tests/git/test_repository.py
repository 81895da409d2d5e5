"""The project repository against real git: init, is it one, branches, head."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import Conflict, InvalidInput
from backend.git import branch_exists, current_branch, head_commit, init_repository, is_git_repository
from tests.git.helpers import git, new_worktree, write


def test_init_commits_a_plain_folder(tmp_path: Path, hermetic_git: Path) -> None:
    folder = tmp_path / "plain folder"
    write(folder / "notes.txt", "hello\n")
    write(folder / "sub dir" / "é.md", "accent\n")
    write(folder / ".gitignore", "*.log\n")
    write(folder / "debug.log", "noise\n")
    assert not is_git_repository(folder)

    head = init_repository(folder, "trunk")

    assert is_git_repository(folder)
    assert head == head_commit(folder)
    assert git(folder, "symbolic-ref", "--short", "HEAD").strip() == "trunk"
    assert git(folder, "log", "-1", "--format=%s|%an <%ae>|%cn <%ce>").strip() == (
        "Initial commit|Kanban Orchestrator <kanban@localhost>|Kanban Orchestrator <kanban@localhost>"
    )
    tracked = git(folder, "-c", "core.quotePath=false", "ls-files").split("\n")
    assert sorted(filter(None, tracked)) == [".gitignore", "notes.txt", "sub dir/é.md"]
    assert git(folder, "status", "--porcelain") == ""
    assert hermetic_git.read_text() == ""  # no identity written to the global configuration
    assert "[user]" not in (folder / ".git" / "config").read_text()


def test_init_an_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    head = init_repository(folder, "main")
    assert git(folder, "log", "--format=%H %s").strip() == f"{head} Initial commit"
    assert git(folder, "ls-tree", "-r", "HEAD") == ""
    local_config = (folder / ".git" / "config").read_text()
    assert "Kanban" not in local_config and "[user]" not in local_config


def test_init_keeps_a_configured_identity(tmp_path: Path, hermetic_git: Path) -> None:
    hermetic_git.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    folder = tmp_path / "mine"
    write(folder / "a.txt", "a\n")
    init_repository(folder, "main")
    assert git(folder, "log", "-1", "--format=%an <%ae>").strip() == "Ada Lovelace <ada@example.com>"


def test_init_refusals(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(Conflict, match="already a git repository"):
        init_repository(repo, "main")
    with pytest.raises(InvalidInput, match="does not exist"):
        init_repository(tmp_path / "nowhere", "main")
    folder = tmp_path / "bad branch"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="not a valid git branch name"):
        init_repository(folder, "bad..name")
    assert not (folder / ".git").exists()


def test_is_git_repository(tmp_path: Path, repo: Path, worktree_root: Path) -> None:
    assert is_git_repository(repo)
    assert not is_git_repository(repo / "src")  # inside a repository is not the repository
    assert not is_git_repository(tmp_path / "missing")
    assert not is_git_repository(tmp_path)
    assert is_git_repository(new_worktree(repo, worktree_root).path)


def test_current_branch_and_branch_exists(tmp_path: Path, repo: Path) -> None:
    assert current_branch(repo) == "main"
    assert branch_exists(repo, "main")
    assert not branch_exists(repo, "develop")
    assert not branch_exists(repo, "bad..name")
    git(repo, "switch", "--quiet", "--detach")
    assert current_branch(repo) is None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "--quiet", "-b", "trunk")
    assert current_branch(fresh) == "trunk"
    assert not branch_exists(fresh, "trunk")  # no commit yet

"""Task branches and worktrees against real git: names, creation and reuse, commits, removal."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from backend.errors import Conflict, InvalidInput
from backend.git import (
    SLUG_MAX_LENGTH,
    branch_name,
    commit_all,
    ensure_worktree,
    head_commit,
    merge_into_base,
    remove_worktree,
)
from tests.git.helpers import commit, git, is_clean, new_worktree, rev, task_with_change, write


@pytest.mark.parametrize(
    ("short_id", "title", "expected"),
    [
        ("KAN-12", "Fix the login form", "kanban/kan-12-fix-the-login-form"),
        ("KAN-3", "Crème brûlée: Straße über Øresund", "kanban/kan-3-creme-brulee-strasse-uber-oresund"),
        ("KAN-4", "修复登录", "kanban/kan-4-task"),
        ("KAN-5", "?!... --- ///", "kanban/kan-5-task"),
        ("KAN-6", "", "kanban/kan-6-task"),
        ("KAN-7", "  .lock refs/heads/x @{1} ~^: *[evil]\\ ", "kanban/kan-7-lock-refs-heads-x-1-evil"),
        ("KAN-8", "feature.lock", "kanban/kan-8-feature-lock"),
        ("Kan-9", "Émoji 🚀 launch", "kanban/kan-9-emoji-launch"),
    ],
)
def test_branch_name(short_id: str, title: str, expected: str) -> None:
    name = branch_name(short_id, title)
    assert name == expected
    subprocess.run(["git", "check-ref-format", "--branch", name], check=True, capture_output=True)


def test_branch_name_shortens_long_titles() -> None:
    title = "Implement the very long feature description that keeps going and going forever"
    name = branch_name("KAN-100", title)
    slug = name.removeprefix("kanban/kan-100-")
    assert 0 < len(slug) <= SLUG_MAX_LENGTH
    assert not slug.endswith("-")
    assert title.lower().replace(" ", "-").startswith(slug)  # cut at a word boundary
    unbroken = branch_name("KAN-101", "x" * 300)
    assert unbroken == "kanban/kan-101-" + "x" * SLUG_MAX_LENGTH
    for candidate in (name, unbroken):
        subprocess.run(["git", "check-ref-format", "--branch", candidate], check=True, capture_output=True)


# --- worktrees -------------------------------------------------------------------------------


def test_ensure_worktree_creates_branch_and_copies_files(repo: Path, worktree_root: Path) -> None:
    write(repo / "config" / "local.json", '{"debug": true}\n')
    base = rev(repo, "main")

    tree = new_worktree(repo, worktree_root, copy_files=[".env", "config/local.json", "missing.txt", ".env"])

    path = Path(tree.path)
    assert path == worktree_root / "KAN-1"
    assert tree.branch == "kanban/kan-1-fix-the-login"
    assert tree.base_commit == base
    assert tree.created
    assert tree.copied == [".env", "config/local.json"]
    assert tree.missing == ["missing.txt"]
    assert (path / "src" / "app.py").read_text() == "print('hello')\n"
    assert (path / ".env").read_text() == "SECRET=1\n"
    assert (path / "config" / "local.json").read_text() == '{"debug": true}\n'
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == tree.branch
    assert rev(repo, tree.branch) == base
    assert git(repo, "status", "--porcelain") == "?? config/\n"  # the main checkout is untouched


def test_ensure_worktree_reuses_an_existing_worktree(repo: Path, worktree_root: Path) -> None:
    first = new_worktree(repo, worktree_root, copy_files=[".env"])
    path = Path(first.path)
    write(path / ".env", "SECRET=changed in the worktree\n")
    write(path / "work in progress.txt", "half done\n")
    write(repo / "later.txt", "new in main\n")
    commit(repo, "main moves on")
    write(repo / "local.toml", "debug = true\n")

    second = new_worktree(repo, worktree_root, copy_files=[".env", "local.toml"])

    assert not second.created
    assert (second.path, second.branch, second.base_commit) == (first.path, first.branch, first.base_commit)
    assert (path / ".env").read_text() == "SECRET=changed in the worktree\n"  # not copied over
    assert (path / "work in progress.txt").read_text() == "half done\n"
    assert not (path / "later.txt").exists()
    assert second.copied == ["local.toml"]


@pytest.mark.parametrize(
    "entry", ["../outside.txt", "config/../../x", "/etc/passwd", "", ".git/config", "C:\\x", "\\x"]
)
def test_ensure_worktree_refuses_paths_outside_the_repository(repo: Path, worktree_root: Path, entry: str) -> None:
    with pytest.raises(InvalidInput, match="copy_files"):
        new_worktree(repo, worktree_root, copy_files=[entry])
    assert not (worktree_root / "KAN-1").exists()
    assert git(repo, "branch", "--list", "kanban/*") == ""


def test_ensure_worktree_reuses_an_existing_branch(repo: Path, worktree_root: Path) -> None:
    branch = branch_name("KAN-1", "Fix the login")
    git(repo, "branch", branch)
    git(repo, "switch", "--quiet", branch)
    write(repo / "earlier.txt", "from a previous run\n")
    fork_point = rev(repo, "main")
    branch_head = commit(repo, "earlier work")
    git(repo, "switch", "--quiet", "main")

    tree = ensure_worktree(repo, worktree_root / "KAN-1", branch, "main", [])

    assert tree.created and tree.base_commit == fork_point
    assert head_commit(tree.path) == branch_head
    assert (Path(tree.path) / "earlier.txt").exists()


def test_ensure_worktree_recreates_a_deleted_worktree(repo: Path, worktree_root: Path) -> None:
    first = new_worktree(repo, worktree_root)
    shutil.rmtree(first.path)
    second = new_worktree(repo, worktree_root)
    assert second.created and Path(second.path, "README.md").exists()


def test_ensure_worktree_errors(tmp_path: Path, repo: Path, worktree_root: Path) -> None:
    with pytest.raises(InvalidInput, match=f"base branch 'develop' does not exist in {repo}"):
        ensure_worktree(repo, worktree_root / "a", "kanban/a", "develop", [])

    empty = tmp_path / "no commits"
    empty.mkdir()
    git(empty, "init", "--quiet", "-b", "main")
    with pytest.raises(InvalidInput, match="no commits"):
        ensure_worktree(empty, worktree_root / "b", "kanban/b", "main", [])

    with pytest.raises(InvalidInput, match="not a git repository"):
        ensure_worktree(tmp_path, worktree_root / "c", "kanban/c", "main", [])
    with pytest.raises(InvalidInput, match="inside the git repository"):
        ensure_worktree(repo / "src", worktree_root / "c", "kanban/c", "main", [])

    occupied = worktree_root / "occupied"
    write(occupied / "something.txt", "mine\n")
    with pytest.raises(Conflict, match="already exists"):
        ensure_worktree(repo, occupied, "kanban/d", "main", [])
    assert (occupied / "something.txt").read_text() == "mine\n"

    git(repo, "switch", "--quiet", "-c", "kanban/checked-out")
    with pytest.raises(Conflict, match="already checked out"):
        ensure_worktree(repo, worktree_root / "e", "kanban/checked-out", "main", [])

    with pytest.raises(InvalidInput, match="not a valid git branch name"):
        ensure_worktree(repo, worktree_root / "f", "bad name", "main", [])


# --- commits ---------------------------------------------------------------------------------


def test_commit_all_stages_everything_but_ignored_files(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root, copy_files=[".env"])
    path = Path(tree.path)
    assert commit_all(path, "nothing yet") is None
    assert is_clean(path)

    write(path / "new file.txt", "new\n")
    write(path / "README.md", "# Project\n\nMore.\n")
    (path / "src" / "app.py").unlink()
    write(path / "node_modules" / "dep.js", "ignored\n")
    write(path / "run.log", "ignored\n")
    write(path / ".env", "SECRET=2\n")
    assert not is_clean(path)

    sha = commit_all(path, "Agent work: first pass")

    assert sha == head_commit(path) == rev(repo, tree.branch)
    assert git(path, "log", "-1", "--format=%s|%an").strip() == "Agent work: first pass|Kanban Orchestrator"
    changes = git(path, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(filter(None, changes)) == ["A\tnew file.txt", "D\tsrc/app.py", "M\tREADME.md"]
    assert is_clean(path)
    assert commit_all(path, "again") is None
    assert head_commit(path) == sha

    with pytest.raises(InvalidInput):
        commit_all(path, "  ")


def test_commit_all_uses_the_repository_identity(repo: Path, worktree_root: Path) -> None:
    git(repo, "config", "user.name", "Repo Owner")
    git(repo, "config", "user.email", "owner@example.com")
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "x.txt", "x\n")
    commit_all(tree.path, "mine")
    assert git(tree.path, "log", "-1", "--format=%an <%ae>").strip() == "Repo Owner <owner@example.com>"


# --- removing worktrees ----------------------------------------------------------------------


def test_remove_worktree_refuses_uncommitted_changes(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    merge_into_base(repo, tree.branch, "main", "Merge")
    write(Path(tree.path) / "feature.txt", "edited after merge\n")
    with pytest.raises(Conflict, match="uncommitted changes in: feature.txt") as caught:
        remove_worktree(repo, tree.path, tree.branch, "main")
    assert caught.value.extra["files"] == ["feature.txt"]
    git(tree.path, "checkout", "--", "feature.txt")
    write(Path(tree.path) / "untracked.txt", "new\n")
    with pytest.raises(Conflict, match="untracked.txt"):
        remove_worktree(repo, tree.path, tree.branch)
    assert Path(tree.path, "untracked.txt").exists()


def test_remove_worktree_refuses_an_unmerged_branch(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    with pytest.raises(Conflict, match="not merged into 'main'"):
        remove_worktree(repo, tree.path, tree.branch, "main")
    with pytest.raises(Conflict, match="no other branch contains"):
        remove_worktree(repo, tree.path, tree.branch)
    assert Path(tree.path, "feature.txt").exists() and rev(repo, tree.branch) == head


def test_remove_worktree_after_merge_keeps_the_branch(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(Path(tree.path) / ".env", "ignored files do not block removal\n")
    merge_into_base(repo, tree.branch, "main", "Merge")

    remove_worktree(repo, tree.path, tree.branch, "main")

    assert not Path(tree.path).exists()
    assert rev(repo, tree.branch) == head
    assert str(Path(tree.path)) not in git(repo, "worktree", "list", "--porcelain")
    remove_worktree(repo, tree.path, tree.branch, "main")  # already gone: nothing to do

    again = new_worktree(repo, worktree_root)  # a later run brings it back on the same branch
    assert again.created and head_commit(again.path) == head


def test_remove_worktree_refuses_the_main_checkout(repo: Path) -> None:
    with pytest.raises(InvalidInput, match="own checkout"):
        remove_worktree(repo, repo, "main", "main")

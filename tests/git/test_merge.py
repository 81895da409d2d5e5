"""Merging a task branch into the base branch against real git, without disturbing the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backend.errors import Conflict, InvalidInput, NotFound
from backend.git import MergeResult, merge_into_base
from tests.git.helpers import commit, git, new_worktree, rev, snapshot, task_with_change, write


def test_merge_fast_forward_updates_the_clean_checkout(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n", "README.md": "# Better\n"})

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert result == MergeResult(commit=head, fast_forward=True)
    assert rev(repo, "main") == head == rev(repo, "HEAD")
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "README.md").read_text() == "# Better\n"
    assert git(repo, "status", "--porcelain") == ""
    assert merge_into_base(repo, tree.branch, "main", "again").already_merged


def test_merge_commit_when_base_moved_on_keeps_unrelated_local_changes(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(repo / "other.txt", "main moved\n")
    moved = commit(repo, "meanwhile on main")
    write(repo / "README.md", "# Local edit, not committed\n")
    write(repo / "scratch.txt", "untracked\n")
    git(repo, "add", "scratch.txt")

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1: Fix the login")

    assert not result.fast_forward
    assert rev(repo, "main") == result.commit == rev(repo, "HEAD")
    merge_commit = git(repo, "log", "-1", "--format=%P|%s|%an").strip()
    assert merge_commit == f"{moved} {head}|Merge KAN-1: Fix the login|Kanban Orchestrator"
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "README.md").read_text() == "# Local edit, not committed\n"
    assert git(repo, "status", "--porcelain") == " M README.md\nA  scratch.txt\n"


def test_merge_when_the_base_branch_is_not_checked_out(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    git(repo, "switch", "--quiet", "-c", "elsewhere")
    write(repo / "elsewhere.txt", "x\n")
    commit(repo, "elsewhere")
    git(repo, "switch", "--quiet", "main")
    write(repo / "main.txt", "main\n")
    commit(repo, "main")
    git(repo, "switch", "--quiet", "elsewhere")
    before = snapshot(repo)

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert not result.fast_forward and rev(repo, "main") == result.commit
    assert git(repo, "show", "--format=", "--name-only", "main:").count("feature.txt") == 1
    after = snapshot(repo)
    assert (after["files"], after["head"], after["index"], after["status"]) == (
        before["files"], before["head"], before["index"], before["status"],
    )  # fmt: skip


def test_merge_conflict_leaves_the_repository_exactly_as_it_was(repo: Path, worktree_root: Path) -> None:
    changes = {"README.md": "# Task version\n", "src/app.py": "print('task')\n"}
    tree, head = task_with_change(repo, worktree_root, changes)
    write(repo / "README.md", "# Main version\n")
    write(repo / "src" / "app.py", "print('main')\n")
    commit(repo, "conflicting change")
    write(repo / "notes.txt", "uncommitted local note\n")
    before = snapshot(repo)
    worktree_before = snapshot(Path(tree.path))

    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    error = caught.value
    assert error.message == f"Merging {tree.branch} into main conflicts in: README.md, src/app.py"
    assert error.extra["files"] == ["README.md", "src/app.py"]
    assert error.to_dict()["files"] == ["README.md", "src/app.py"]
    assert snapshot(repo) == before
    assert snapshot(Path(tree.path)) == worktree_before
    assert rev(repo, tree.branch) == head


def test_merge_refuses_to_overwrite_uncommitted_changes(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"README.md": "# Task\n", "brand new.txt": "task\n"})
    write(repo / "README.md", "# My unsaved edit\n")
    write(repo / "brand new.txt", "my own untracked file\n")
    write(repo / "unrelated.txt", "fine\n")
    before = snapshot(repo)

    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert caught.value.extra["files"] == ["README.md", "brand new.txt"]
    assert "README.md, brand new.txt" in caught.value.message
    assert snapshot(repo) == before


def test_merge_refuses_to_overwrite_an_ignored_file(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "debug.log", "from the task\n")
    git(tree.path, "add", "--force", "debug.log")
    git(tree.path, "commit", "--quiet", "-m", "force-add a log")
    write(repo / "debug.log", "local log\n")
    before = snapshot(repo)
    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge")
    assert caught.value.extra["files"] == ["debug.log"]
    assert snapshot(repo) == before


def test_merge_ignores_merge_configuration(repo: Path, worktree_root: Path, hermetic_git: Path) -> None:
    hermetic_git.write_text("[merge]\n\tff = false\n\tautoStash = true\n\tverifySignatures = true\n")
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(repo / "README.md", "# Local edit\n")
    assert merge_into_base(repo, tree.branch, "main", "Merge") == MergeResult(commit=head, fast_forward=True)
    assert git(repo, "status", "--porcelain") == " M README.md\n"
    assert git(repo, "stash", "list") == ""


def test_merge_refuses_while_the_base_branch_is_being_rebased(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    git(repo, "switch", "--quiet", "-c", "upstream")
    write(repo / "README.md", "# Upstream\n")
    commit(repo, "upstream")
    git(repo, "switch", "--quiet", "main")
    write(repo / "README.md", "# Mine\n")
    commit(repo, "mine")
    with pytest.raises(subprocess.CalledProcessError):
        git(repo, "rebase", "upstream")  # stops on the conflict, main is detached
    before = snapshot(repo)
    with pytest.raises(Conflict, match="being rebased"):
        merge_into_base(repo, tree.branch, "main", "Merge")
    assert snapshot(repo) == before


def test_merge_errors(repo: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        merge_into_base(repo, "kanban/nothing", "main", "Merge")
    with pytest.raises(InvalidInput, match="base branch 'develop' does not exist"):
        merge_into_base(repo, "main", "develop", "Merge")

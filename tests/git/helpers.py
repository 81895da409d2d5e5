"""Test-side git for the git package's tests: its own identity, plain commands, snapshots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from backend.git import Worktree, branch_name, commit_all, ensure_worktree

TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Person",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test Person",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path | str, *args: str) -> str:
    """Test-side git (its own identity, so the code under test never borrows it)."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **TEST_IDENTITY}, capture_output=True, text=True, check=True
    )
    return result.stdout


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode())
    return path


def commit(cwd: Path, message: str = "change") -> str:
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


def rev(cwd: Path, revision: str) -> str:
    return git(cwd, "rev-parse", revision).strip()


def new_worktree(repo: Path, worktree_root: Path, title: str = "Fix the login", copy_files=()) -> Worktree:
    branch = branch_name("KAN-1", title)
    return ensure_worktree(repo, worktree_root / "KAN-1", branch, "main", list(copy_files))


def snapshot(folder: Path) -> dict:
    """Everything a user could notice: files (bytes), HEAD, refs, index, status, worktrees."""
    git_dir = folder / git(folder, "rev-parse", "--git-dir").strip()
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if ".git" not in path.relative_to(folder).parts and path.is_file()
    }
    return {
        "files": files,
        "head": git(folder, "rev-parse", "--symbolic-full-name", "HEAD"),
        "head_commit": rev(folder, "HEAD"),
        "refs": git(folder, "for-each-ref", "--format=%(refname) %(objectname)"),
        "index": git(folder, "ls-files", "--stage"),
        "status": git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=all"),
        "worktrees": git(folder, "worktree", "list", "--porcelain"),
        "git_files": sorted(path.name for path in git_dir.iterdir() if path.is_file()),
    }


def task_with_change(repo: Path, worktree_root: Path, files: dict[str, str]) -> tuple[Worktree, str]:
    tree = new_worktree(repo, worktree_root)
    for name, content in files.items():
        write(Path(tree.path) / name, content)
    head = commit_all(tree.path, "task work")
    assert head is not None
    return tree, head


def is_clean(path: Path | str) -> bool:
    """No staged, unstaged or untracked (non-ignored) changes."""
    return git(path, "status", "--porcelain", "--untracked-files=all", "--ignore-submodules=none") == ""

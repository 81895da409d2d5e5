"""The project repository: is a folder one, making one, its branches and head."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import Conflict, InvalidInput
from .commands import StrPath, identity_env, output, rev, run


def same_path(a: StrPath, b: StrPath) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def is_git_repository(path: StrPath) -> bool:
    """True when `path` is the top folder of a git working tree (a main checkout or a worktree)."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        return False
    status, out, _ = run(folder, "rev-parse", "--show-toplevel")
    return status == 0 and same_path(out.decode("utf-8", "surrogateescape").strip(), folder)


def require_repository(path: StrPath) -> str:
    """The absolute path of `path`, which must be the top folder of a git repository."""
    folder = os.path.abspath(os.fspath(Path(path).expanduser()))
    if not os.path.isdir(folder):
        raise InvalidInput(f"folder {folder!r} does not exist")
    status, out, err = run(folder, "rev-parse", "--show-toplevel")
    if status == 0 and same_path(out.decode("utf-8", "surrogateescape").strip(), folder):
        return folder
    if "dubious ownership" in err:
        raise InvalidInput(f"git refuses to work in {folder!r}: it belongs to another user ({err.splitlines()[0]})")
    if status == 0:
        top = out.decode("utf-8", "replace").strip()
        raise InvalidInput(f"{folder!r} is inside the git repository {top!r}, not its top folder")
    raise InvalidInput(f"{folder!r} is not a git repository (run `git init` there, or initialise it from the board)")


def check_branch(cwd: StrPath, branch: str, what: str = "branch") -> None:
    """InvalidInput unless `branch` is a valid branch name."""
    status, _, _ = run(cwd, "check-ref-format", "--branch", branch)
    if status != 0 or branch.startswith("-") or branch != branch.strip():
        raise InvalidInput(f"{what} name {branch!r} is not a valid git branch name")


def require_base(repo: str, base_branch: str) -> str:
    """The head of `base_branch`, which must exist; InvalidInput otherwise."""
    check_branch(repo, base_branch, "base branch")
    sha = rev(repo, f"refs/heads/{base_branch}")
    if sha is not None:
        return sha
    status, out, _ = run(repo, "rev-list", "-n", "1", "--all")
    if status != 0 or not out.strip():
        raise InvalidInput(f"repository {repo} has no commits yet; make a first commit on '{base_branch}'")
    raise InvalidInput(f"base branch '{base_branch}' does not exist in {repo}")


def init_repository(path: StrPath, base_branch: str = "main") -> str:
    """`git init -b <base_branch>` in an existing folder and commit everything in it; the new head."""
    folder = os.path.abspath(os.fspath(Path(path).expanduser()))
    if not os.path.isdir(folder):
        raise InvalidInput(f"folder {folder!r} does not exist")
    if is_git_repository(folder):
        raise Conflict(f"{folder} is already a git repository")
    check_branch(folder, base_branch, "base branch")
    output(folder, "init", "--quiet", "-b", base_branch)
    try:
        output(folder, "add", "--all")
        output(
            folder,
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "-m",
            "Initial commit",
            env=identity_env(folder),
        )
        return head_commit(folder)
    except BaseException:
        # Leave the folder as it was: no half-made repository.
        shutil.rmtree(os.path.join(folder, ".git"), ignore_errors=True)
        raise


def current_branch(path: StrPath) -> str | None:
    """The branch checked out in `path` (also before its first commit), None on a detached HEAD."""
    status, out, _ = run(path, "symbolic-ref", "--quiet", "--short", "HEAD")
    name = out.decode("utf-8", "surrogateescape").strip() if status == 0 else ""
    return name or None


def branch_exists(path: StrPath, branch: str) -> bool:
    """A local branch of that name exists (and points at a commit)."""
    return run(path, "check-ref-format", "--branch", branch)[0] == 0 and rev(path, f"refs/heads/{branch}") is not None


def head_commit(path: StrPath) -> str:
    sha = rev(path, "HEAD")
    if sha is None:
        raise InvalidInput(f"{os.fspath(path)} has no commits yet")
    return sha

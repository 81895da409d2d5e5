"""Task worktrees: one branch and one linked worktree per task, its commits, its removal.

A task gets a branch `kanban/<short-id>-<slug>` created from the base branch and a linked
worktree (`git worktree add`) where its agent works. Later runs of the same task reuse both.
A new branch can start with other work merged in (`merge_in`: the commits of the tasks it
waits for that are not in the base branch), merged in the object database before the branch
exists, so a conflict leaves nothing behind.

Work commits use the repository's identity (or the app's, see `commands.identity_env`) and
skip the repository's commit hooks (`--no-verify`): they are checkpoints of an agent's work,
and a failing lint hook must not lose them.

`remove_worktree` only removes a worktree whose working tree is clean and whose commits are
reachable from the base branch; it never passes `--force`, and the branch is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import Conflict, InvalidInput
from .commands import (
    GitCommandFailed,
    StrPath,
    identity_env,
    is_ancestor,
    merge_commit,
    nul_fields,
    output,
    output_text,
    rev,
    run,
)
from .repository import check_branch, head_commit, is_git_repository, require_base, require_repository, same_path

BRANCH_PREFIX = "kanban/"
SLUG_MAX_LENGTH = 40


@dataclass(frozen=True)
class Worktree:
    path: str
    branch: str
    base_commit: str
    created: bool = False
    copied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Branch names
# --------------------------------------------------------------------------------------------

# Letters that NFKD does not decompose into ASCII.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L",
     "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i"}
)  # fmt: skip


def _slug(text: str, max_length: int | None = None) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if max_length is not None and len(slug) > max_length:
        cut = slug[:max_length]
        if slug[max_length] != "-" and "-" in cut and cut.rfind("-") >= max_length // 2:
            cut = cut[: cut.rfind("-")]  # end on a whole word when that keeps most of the title
        slug = cut.strip("-")
    return slug


def branch_name(short_id: str, title: str) -> str:
    """`kanban/kan-12-fix-the-login-form`: ASCII, lowercase, hyphens, a valid branch name."""
    prefix = _slug(short_id) or "task"
    return f"{BRANCH_PREFIX}{prefix}-{_slug(title, SLUG_MAX_LENGTH) or 'task'}"


# --------------------------------------------------------------------------------------------
# Worktrees
# --------------------------------------------------------------------------------------------


@dataclass
class WorktreeEntry:
    path: str
    head: str | None = None
    branch: str | None = None  # short name, None when detached
    bare: bool = False
    locked: bool = False
    prunable: bool = False


def list_worktrees(repo: StrPath) -> list[WorktreeEntry]:
    """`git worktree list`, the main checkout first."""
    entries: list[WorktreeEntry] = []
    current: WorktreeEntry | None = None
    for raw in output(repo, "worktree", "list", "--porcelain", "-z").split(b"\0"):
        line = raw.decode("utf-8", "surrogateescape")
        if not line:
            current = None
            continue
        key, _, value = line.partition(" ")
        if key == "worktree":
            current = WorktreeEntry(path=value)
            entries.append(current)
        elif current is None:
            continue
        elif key == "HEAD":
            current.head = value
        elif key == "branch":
            current.branch = value.removeprefix("refs/heads/")
        elif key == "bare":
            current.bare = True
        elif key == "locked":
            current.locked = True
        elif key == "prunable":
            current.prunable = True
    return entries


def checkout_of(repo: StrPath, branch: str) -> WorktreeEntry | None:
    for entry in list_worktrees(repo):
        if entry.branch == branch and not entry.bare and not entry.prunable:
            return entry
    return None


def is_rebasing(entry: WorktreeEntry, branch: str) -> bool:
    """True when `branch` is being rebased in that (detached) worktree: git will rewrite it at the end."""
    paths = ("--git-path", "rebase-merge/head-name", "--git-path", "rebase-apply/head-name")
    status, out, _ = run(entry.path, "rev-parse", *paths)
    if status != 0:
        return False
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        path = os.path.join(entry.path, line.strip())
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                if handle.read().strip() == f"refs/heads/{branch}":
                    return True
        except OSError:
            continue
    return False


def _copy_entries(copy_files: Iterable[str]) -> list[str]:
    """Validated relative paths (POSIX form); anything leaving the repository is refused."""
    entries: list[str] = []
    for raw in copy_files:
        text = str(raw).strip()
        posix, windows = PurePosixPath(text), PureWindowsPath(text)
        parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
        if (
            not parts
            or posix.is_absolute()
            or text.startswith(("/", "\\"))
            or windows.is_absolute()
            or windows.drive
            or ".." in parts
            or parts[0].lower() == ".git"
        ):
            raise InvalidInput(
                f"copy_files: {raw!r} must be a path relative to the project folder, inside it "
                "(no '..', not absolute, not in .git)"
            )
        entry = "/".join(parts)
        if entry not in entries:
            entries.append(entry)
    return entries


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _copy_into(repo: str, worktree: str, entries: Sequence[str]) -> tuple[list[str], list[str]]:
    copied: list[str] = []
    missing: list[str] = []
    for entry in entries:
        source = os.path.join(repo, *entry.split("/"))
        target = os.path.join(worktree, *entry.split("/"))
        if not os.path.exists(source):
            missing.append(entry)
            continue
        if os.path.lexists(target):
            continue  # already there: the worktree's copy wins
        if not _inside(os.path.dirname(target), worktree):
            raise InvalidInput(f"copy_files: {entry!r} would be written outside the worktree")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(source):
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
        copied.append(entry)
    return copied, missing


def ensure_worktree(
    repo_path: StrPath,
    worktree_path: StrPath,
    branch: str,
    base_branch: str,
    copy_files: Iterable[str] = (),
    merge_in: Sequence[tuple[str, str]] = (),
) -> Worktree:
    """The task's worktree at `worktree_path` on `branch`, created from `base_branch` if needed.

    A branch created here starts from the base branch's head with each `(name, commit)` of
    `merge_in` that the base branch does not contain merged in (see `start_point`). An
    existing worktree or branch (a later run of the same task) is reused as it is. `copy_files`
    (relative paths such as `.env`) are copied from the project folder when the worktree does
    not have them yet; those missing in the project folder are skipped and listed in `missing`.
    """
    repo = require_repository(repo_path)
    target = os.path.abspath(os.fspath(Path(worktree_path).expanduser()))
    entries = _copy_entries(copy_files)
    check_branch(repo, branch)
    base_sha = require_base(repo, base_branch)
    output(repo, "worktree", "prune")
    worktrees = list_worktrees(repo)
    existing = next((entry for entry in worktrees if same_path(entry.path, target)), None)
    created = False
    if existing is not None:
        if existing is worktrees[0]:
            raise InvalidInput(f"{target} is the project's own checkout, not a task worktree")
        if existing.branch != branch:
            on = f"branch '{existing.branch}'" if existing.branch else "a detached HEAD"
            raise Conflict(f"worktree {target} is on {on}, not on '{branch}'", path=target, branch=existing.branch)
    else:
        if os.path.lexists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise Conflict(f"{target} already exists and is not a worktree of {repo}", path=target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if rev(repo, f"refs/heads/{branch}") is not None:
            holder = next((entry for entry in worktrees if entry.branch == branch), None)
            if holder is not None:
                raise Conflict(f"branch '{branch}' is already checked out at {holder.path}", path=holder.path)
            output(repo, "worktree", "add", "--quiet", target, branch)
        else:
            start = start_point(repo, base_branch, base_sha, merge_in)
            output(repo, "worktree", "add", "--quiet", "--no-track", "-b", branch, target, start)
        created = True
    status, out, _ = run(repo, "merge-base", f"refs/heads/{branch}", base_sha)
    if status != 0:
        raise InvalidInput(f"branch '{branch}' has no history in common with '{base_branch}'")
    copied, missing = _copy_into(repo, target, entries)
    return Worktree(
        path=target,
        branch=branch,
        base_commit=out.decode().strip(),
        created=created,
        copied=copied,
        missing=missing,
    )


def start_point(repo: str, base_branch: str, base_sha: str, merge_in: Sequence[tuple[str, str]]) -> str:
    """`base_sha` with every `(name, commit)` of `merge_in` that it does not contain merged in,
    one merge commit each (made in the object database only); `base_sha` itself when there is
    nothing to merge. A commit git no longer has is left out. Conflict (with `files`) when one
    of them conflicts with the base branch or with those merged before it."""
    start = base_sha
    for name, commit in merge_in:
        sha = rev(repo, commit)
        if sha is None or is_ancestor(repo, sha, start):
            continue
        merged = merge_commit(
            repo, start, sha, f"Merge {name} ({sha[:12]}), which is done but not merged into {base_branch}"
        )
        if isinstance(merged, list):
            raise Conflict(
                f"{name} is done but its work ({sha[:12]}) is not merged into {base_branch}, and merging it "
                f"conflicts in: {', '.join(merged)}. Merge it into {base_branch} by hand, or remove the link",
                files=merged,
                reason="merge_conflict",
            )
        start = merged
    return start


def status_paths(path: StrPath) -> list[str]:
    """Every path with uncommitted changes: staged, unstaged, unmerged, untracked (not ignored)."""
    out = output(
        path, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=none"
    )
    return [item[3:] for item in nul_fields(out) if len(item) > 3]


# --------------------------------------------------------------------------------------------
# Commits
# --------------------------------------------------------------------------------------------


def commit_all(worktree_path: StrPath, message: str) -> str | None:
    """Stage everything (new, modified, deleted; .gitignore respected) and commit it.

    Returns the new head, or None when there was nothing to commit.
    """
    folder = os.fspath(worktree_path)
    if not message or not message.strip():
        raise InvalidInput("commit message must not be empty")
    if not is_git_repository(folder):
        raise InvalidInput(f"{folder!r} is not a git worktree")
    output(folder, "add", "--all")
    if rev(folder, "HEAD") is not None:
        status, _, err = run(folder, "diff", "--cached", "--quiet", "--no-ext-diff", "--ignore-submodules=none")
        if status == 0:
            return None
        if status != 1:
            raise GitCommandFailed(f"git diff failed in {folder}: {err}")
    elif not output(folder, "ls-files", "-z"):
        return None
    status, _, err = run(folder, "commit", "--quiet", "--no-verify", "-m", message, env=identity_env(folder))
    if status != 0:
        raise Conflict(f"could not commit in {folder}: {err}")
    return head_commit(folder)


# --------------------------------------------------------------------------------------------
# Removing worktrees
# --------------------------------------------------------------------------------------------


def remove_worktree(repo_path: StrPath, worktree_path: StrPath, branch: str, base_branch: str | None = None) -> None:
    """Remove a task's worktree (the branch stays) when that loses nothing.

    Refused (Conflict) when the worktree has uncommitted changes or when its head is not
    reachable from `base_branch` (without `base_branch`: from some other local branch).
    A worktree whose folder is already gone is only unregistered.
    """
    repo = require_repository(repo_path)
    target = os.path.abspath(os.fspath(Path(worktree_path).expanduser()))
    worktrees = list_worktrees(repo)
    entry = next((item for item in worktrees if same_path(item.path, target) or item.path == target), None)
    if entry is None:
        if os.path.lexists(target):
            raise InvalidInput(f"{target} is not a worktree of {repo}")
        return
    if entry is worktrees[0]:
        raise InvalidInput(f"{target} is the project's own checkout, not a task worktree")
    if not os.path.isdir(target):
        output(repo, "worktree", "prune")
        return
    if entry.branch != branch:
        on = f"branch '{entry.branch}'" if entry.branch else "a detached HEAD"
        raise Conflict(f"worktree {target} is on {on}, not on '{branch}'", path=target)
    dirty = status_paths(target)
    if dirty:
        raise Conflict(
            f"worktree {target} has uncommitted changes in: {', '.join(dirty[:20])}"
            + (f" and {len(dirty) - 20} more" if len(dirty) > 20 else ""),
            files=dirty,
            reason="uncommitted_changes",
        )
    head = head_commit(target)
    if base_branch is not None:
        base = require_base(repo, base_branch)
        if not is_ancestor(repo, head, base):
            raise Conflict(
                f"branch '{branch}' has commits that are not merged into '{base_branch}'; merge it first",
                reason="unmerged",
            )
    else:
        names = output_text(repo, "for-each-ref", "--format=%(refname:short)", "--contains", head, "refs/heads/")
        if not [name for name in names.splitlines() if name and name != branch]:
            raise Conflict(
                f"branch '{branch}' has commits that no other branch contains; merge it first", reason="unmerged"
            )
    if entry.locked:
        raise Conflict(f"worktree {target} is locked (`git worktree unlock` it first)", path=target)
    status, _, err = run(repo, "worktree", "remove", target)
    if status != 0:
        raise Conflict(f"could not remove worktree {target}: {err}", path=target)


def discard_worktree(repo_path: StrPath, worktree_path: StrPath) -> None:
    """Remove a task's worktree even with uncommitted changes (its branch and commits stay).
    For a project being deleted on the user's word; a folder that is not one of the repository's
    worktrees is left alone. A repository that is gone leaves nothing to unregister."""
    target = os.path.abspath(os.fspath(Path(worktree_path).expanduser()))
    if not is_git_repository(repo_path):
        return
    repo = require_repository(repo_path)
    worktrees = list_worktrees(repo)
    entry = next((item for item in worktrees if same_path(item.path, target) or item.path == target), None)
    if entry is None or entry is worktrees[0]:
        return
    if os.path.isdir(target):
        run(repo, "worktree", "remove", "--force", "--force", target)
    else:
        output(repo, "worktree", "prune")

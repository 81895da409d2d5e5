"""Merging a task branch into the base branch without touching the user's checkout.

`merge_into_base` never runs `git merge` in a working tree and never has to abort one:
1. If the base branch already contains the task branch there is nothing to do; if the base
   branch is an ancestor of the task branch the result is the task head (fast-forward).
   Otherwise `git merge-tree --write-tree` computes the merged tree in the object database
   only. A conflict is reported (with the conflicting files) at this point, before any ref,
   index or file has been touched, so the repository is exactly as it was. A clean merge
   becomes a merge commit through `git commit-tree` (parents: base head, task head).
2. Publishing the new commit depends on the checkout that has the base branch checked out
   (normally the main one, possibly none):
   - none: `git update-ref refs/heads/<base> <new> <old>`, a compare-and-swap that fails if
     the base branch moved meanwhile;
   - one: its uncommitted changes (staged, unstaged, untracked, and ignored files that the
     merge would create) are compared with the files the merge changes; any overlap is a
     Conflict listing them, and nothing has changed. Otherwise `git merge --ff-only <new>`
     runs in that checkout: the new commit always descends from the checked-out base head,
     so this is git's own fast-forward, a two-tree checkout that keeps unrelated local
     changes and refuses (without changing anything) to overwrite local work.
This needs git >= 2.38 (`merge-tree --write-tree`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import Conflict, InvalidInput, NotFound
from .commands import GitCommandFailed, StrPath, is_ancestor, merge_commit, output, rev, run
from .repository import check_branch, require_base, require_repository
from .worktrees import checkout_of, is_rebasing, list_worktrees, status_paths


@dataclass(frozen=True)
class MergeResult:
    commit: str
    fast_forward: bool
    already_merged: bool = False


def _changed_paths(repo: str, old: str, new: str) -> tuple[list[str], list[str]]:
    """(every path the change from old to new touches, the paths it creates)."""
    touched: list[str] = []
    created: list[str] = []
    fields = output(repo, "diff", "--name-status", "-z", "--no-renames", "--no-relative", old, new, "--").split(b"\0")
    for letter, path in zip(fields[0::2], fields[1::2], strict=False):
        name = path.decode("utf-8", "surrogateescape")
        touched.append(name)
        if letter.startswith(b"A"):
            created.append(name)
    return touched, created


def _overlap(touched: Iterable[str], dirty: Iterable[str]) -> list[str]:
    """Dirty paths that are, contain or sit inside a touched path."""
    dirty_set = {path.rstrip("/") for path in dirty}
    found: set[str] = set()
    for path in touched:
        parts = path.split("/")
        prefixes = {"/".join(parts[:n]) for n in range(1, len(parts) + 1)}
        found.update(prefixes & dirty_set)
        found.update(d for d in dirty_set if d.startswith(path + "/"))
    return sorted(found)


def merge_into_base(repo_path: StrPath, branch: str, base_branch: str, message: str) -> MergeResult:
    """Merge `branch` into `base_branch` (fast-forward when possible) without disturbing the checkout.

    Raises Conflict (with `files`) when the branches conflict or when the checkout of the base
    branch has uncommitted changes in files the merge would change; in both cases nothing has
    changed. See the module docstring for how.
    """
    repo = require_repository(repo_path)
    if not message or not message.strip():
        raise InvalidInput("merge message must not be empty")
    check_branch(repo, branch)
    old = require_base(repo, base_branch)
    head = rev(repo, f"refs/heads/{branch}")
    if head is None:
        raise NotFound(f"branch '{branch}' does not exist in {repo}")
    if is_ancestor(repo, head, old):
        return MergeResult(commit=old, fast_forward=False, already_merged=True)
    if is_ancestor(repo, old, head):
        new, fast_forward = head, True
    else:
        merged = merge_commit(repo, old, head, message)
        if isinstance(merged, list):
            raise Conflict(
                f"Merging {branch} into {base_branch} conflicts in: {', '.join(merged)}",
                files=merged,
                reason="merge_conflict",
            )
        new, fast_forward = merged, False
    for entry in list_worktrees(repo):
        if entry.branch is None and not entry.bare and not entry.prunable and is_rebasing(entry, base_branch):
            raise Conflict(f"'{base_branch}' is being rebased in {entry.path}; finish or abort that rebase first")
    checkout = checkout_of(repo, base_branch)
    if checkout is None:
        status, _, err = run(repo, "update-ref", "-m", f"merge {branch}", f"refs/heads/{base_branch}", new, old)
        if status != 0:
            raise Conflict(f"'{base_branch}' changed while merging {branch}; try again ({err})")
        return MergeResult(commit=new, fast_forward=fast_forward)
    touched, created = _changed_paths(repo, old, new)
    dirty = set(status_paths(checkout.path))
    dirty.update(path for path in created if os.path.lexists(os.path.join(checkout.path, *path.split("/"))))
    blocking = _overlap(touched, dirty)
    if blocking:
        raise Conflict(
            f"Merging {branch} into {base_branch} would overwrite uncommitted changes in {checkout.path}: "
            f"{', '.join(blocking)}; commit or stash them first",
            files=blocking,
            reason="dirty_checkout",
        )
    status, _, err = run(
        checkout.path, "merge", "--ff-only", "--quiet", "--no-autostash", "--no-verify-signatures", "--no-edit", new
    )
    if status != 0:
        raise Conflict(f"Could not update {checkout.path} to the merged '{base_branch}': {err}", reason="checkout")
    if rev(repo, f"refs/heads/{base_branch}") != new:
        raise GitCommandFailed(f"'{base_branch}' in {repo} did not move to the merge result {new}")
    return MergeResult(commit=new, fast_forward=fast_forward)

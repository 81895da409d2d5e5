"""Git for the board: the project repository, one worktree and branch per task, diffs, merges.

Every function is synchronous and blocking (callers run it with `asyncio.to_thread`), drives
the `git` command line (`commands.py`) and raises `KanbanError` subclasses with messages that
can be shown to the user as they are. This package imports no domain package (projects,
tasks, runs): they call it.

    commands.py    running git: environment, no prompts, no optional locks; the app's identity
    repository.py  is a folder a repository, making one, branches, head
    worktrees.py   task branch names, worktrees (create, reuse, remove), committing a worktree
    diffs.py       the changes between two commits as files, hunks and lines
    merge.py       merging a task branch into the base branch without touching the checkout
"""

from .commands import GitCommandFailed
from .diffs import MAX_DIFF_LINES_PER_FILE, MAX_DIFF_LINES_TOTAL, diff
from .merge import MergeResult, merge_into_base
from .repository import branch_exists, current_branch, head_commit, init_repository, is_git_repository
from .worktrees import (
    SLUG_MAX_LENGTH,
    Worktree,
    branch_name,
    commit_all,
    discard_worktree,
    ensure_worktree,
    remove_worktree,
)

__all__ = [
    "MAX_DIFF_LINES_PER_FILE",
    "MAX_DIFF_LINES_TOTAL",
    "SLUG_MAX_LENGTH",
    "GitCommandFailed",
    "MergeResult",
    "Worktree",
    "branch_exists",
    "branch_name",
    "commit_all",
    "current_branch",
    "diff",
    "discard_worktree",
    "ensure_worktree",
    "head_commit",
    "init_repository",
    "is_git_repository",
    "merge_into_base",
    "remove_worktree",
]

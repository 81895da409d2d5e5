"""Git workspaces for task runs: the project repository, one worktree and branch per task.

Every function is synchronous and blocking (the caller runs it with `asyncio.to_thread`),
drives the `git` command line through gitpython's command wrapper (list arguments, no shell,
so paths with spaces or unicode are safe) and raises `KanbanError` subclasses with messages
that can be shown to the user as they are.

Layout
    The project folder is the user's own checkout (the "main" worktree). A task gets a branch
    `kanban/<short-id>-<slug>` created from the base branch and a linked worktree
    (`git worktree add`) where its agent works. Later runs of the same task reuse both.

Identity
    Commits made here (the initial commit, work commits, merge commits) use the repository's
    configured identity. When none is configured, they are made as
    "Kanban Orchestrator <kanban@localhost>" through the `GIT_AUTHOR_*`/`GIT_COMMITTER_*`
    variables of that one command; no git configuration file is ever written. Work commits
    skip the repository's commit hooks (`--no-verify`): they are checkpoints of an agent's
    work, and a failing lint hook must not lose them.

Merging without touching the user's checkout
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

Removing a worktree
    `remove_worktree` only removes a worktree whose working tree is clean and whose commits are
    reachable from the base branch; it never passes `--force`, and the branch is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from git import Git

from ..errors import Conflict, InvalidInput, KanbanError, NotFound

APP_NAME = "Kanban Orchestrator"
APP_EMAIL = "kanban@localhost"
BRANCH_PREFIX = "kanban/"
SLUG_MAX_LENGTH = 40
MAX_DIFF_LINES_PER_FILE = 2_000
MAX_DIFF_LINES_TOTAL = 20_000

StrPath = str | os.PathLike[str]

# Every git command runs with these: never prompt, never take optional locks (a `git status`
# on the user's checkout must not fight with their own git commands over index.lock).
_BASE_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


class GitCommandFailed(KanbanError):
    """Git failed in a way that is not a business case (a bug, a broken repository)."""

    status_code = 500


@dataclass(frozen=True)
class Worktree:
    path: str
    branch: str
    base_commit: str
    created: bool = False
    copied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MergeResult:
    commit: str
    fast_forward: bool
    already_merged: bool = False


# --------------------------------------------------------------------------------------------
# Running git
# --------------------------------------------------------------------------------------------


def _run(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, bytes, str]:
    """Run `git <args>` in `cwd`; (exit status, raw stdout, stderr text). Never raises for status."""
    folder = os.fspath(cwd)
    if not os.path.isdir(folder):
        # gitpython falls back to the process's own directory for a missing cwd: never let it.
        raise InvalidInput(f"folder {folder!r} does not exist")
    status, out, err = Git(folder).execute(
        [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
        with_extended_output=True,
        with_exceptions=False,
        stdout_as_string=False,
        strip_newline_in_stdout=False,
        env={**_BASE_ENV, **(env or {})},
    )
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return status, out or b"", (err or "").strip()


def _git(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> bytes:
    status, out, err = _run(cwd, *args, env=env)
    if status != 0:
        raise GitCommandFailed(f"git {args[0]} failed in {os.fspath(cwd)}: {err or f'exit status {status}'}")
    return out


def _text(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> str:
    return _git(cwd, *args, env=env).decode("utf-8", "replace").strip()


def _nul_fields(out: bytes) -> list[str]:
    return [item.decode("utf-8", "surrogateescape") for item in out.split(b"\0") if item]


def _rev(cwd: StrPath, revision: str) -> str | None:
    """Full sha of `revision` as a commit, or None."""
    status, out, _ = _run(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    return out.decode().strip() if status == 0 else None


def _is_ancestor(cwd: StrPath, ancestor: str, descendant: str) -> bool:
    status, _, err = _run(cwd, "merge-base", "--is-ancestor", ancestor, descendant)
    if status not in (0, 1):
        raise GitCommandFailed(f"git merge-base failed in {os.fspath(cwd)}: {err}")
    return status == 0


def _identity_env(cwd: StrPath) -> dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* for whatever identity the repository does not configure."""
    status, out, _ = _run(cwd, "config", "--get-regexp", r"^(user|author|committer)\.(name|email)$")
    lines = out.decode("utf-8", "replace").splitlines() if status == 0 else []
    configured = {line.split(" ", 1)[0].lower() for line in lines}
    env: dict[str, str] = {}
    for role in ("author", "committer"):
        for part, value in (("name", APP_NAME), ("email", APP_EMAIL)):
            variable = f"GIT_{role.upper()}_{part.upper()}"
            if variable in os.environ or f"user.{part}" in configured or f"{role}.{part}" in configured:
                continue
            env[variable] = value
    return env


# --------------------------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------------------------


def _same_path(a: StrPath, b: StrPath) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def is_git_repository(path: StrPath) -> bool:
    """True when `path` is the top folder of a git working tree (a main checkout or a worktree)."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        return False
    status, out, _ = _run(folder, "rev-parse", "--show-toplevel")
    return status == 0 and _same_path(out.decode("utf-8", "surrogateescape").strip(), folder)


def _repository(path: StrPath) -> str:
    folder = os.path.abspath(os.fspath(Path(path).expanduser()))
    if not os.path.isdir(folder):
        raise InvalidInput(f"folder {folder!r} does not exist")
    status, out, err = _run(folder, "rev-parse", "--show-toplevel")
    if status == 0 and _same_path(out.decode("utf-8", "surrogateescape").strip(), folder):
        return folder
    if "dubious ownership" in err:
        raise InvalidInput(f"git refuses to work in {folder!r}: it belongs to another user ({err.splitlines()[0]})")
    if status == 0:
        top = out.decode("utf-8", "replace").strip()
        raise InvalidInput(f"{folder!r} is inside the git repository {top!r}, not its top folder")
    raise InvalidInput(f"{folder!r} is not a git repository (run `git init` there, or initialise it from the board)")


def _check_branch(cwd: StrPath, branch: str, what: str = "branch") -> None:
    status, _, _ = _run(cwd, "check-ref-format", "--branch", branch)
    if status != 0 or branch.startswith("-") or branch != branch.strip():
        raise InvalidInput(f"{what} name {branch!r} is not a valid git branch name")


def _require_base(repo: str, base_branch: str) -> str:
    _check_branch(repo, base_branch, "base branch")
    sha = _rev(repo, f"refs/heads/{base_branch}")
    if sha is not None:
        return sha
    status, out, _ = _run(repo, "rev-list", "-n", "1", "--all")
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
    _check_branch(folder, base_branch, "base branch")
    _git(folder, "init", "--quiet", "-b", base_branch)
    try:
        _git(folder, "add", "--all")
        _git(folder, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", "Initial commit", env=_identity_env(folder))
        return head_commit(folder)
    except BaseException:
        # Leave the folder as it was: no half-made repository.
        shutil.rmtree(os.path.join(folder, ".git"), ignore_errors=True)
        raise


def current_branch(path: StrPath) -> str | None:
    """The branch checked out in `path` (also before its first commit), None on a detached HEAD."""
    status, out, _ = _run(path, "symbolic-ref", "--quiet", "--short", "HEAD")
    name = out.decode("utf-8", "surrogateescape").strip() if status == 0 else ""
    return name or None


def branch_exists(path: StrPath, branch: str) -> bool:
    """A local branch of that name exists (and points at a commit)."""
    return _run(path, "check-ref-format", "--branch", branch)[0] == 0 and _rev(path, f"refs/heads/{branch}") is not None


def head_commit(path: StrPath) -> str:
    sha = _rev(path, "HEAD")
    if sha is None:
        raise InvalidInput(f"{os.fspath(path)} has no commits yet")
    return sha


# --------------------------------------------------------------------------------------------
# Branch names
# --------------------------------------------------------------------------------------------

# Letters that NFKD does not decompose into ASCII.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L",
     "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i"}
)


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
class _WorktreeEntry:
    path: str
    head: str | None = None
    branch: str | None = None  # short name, None when detached
    bare: bool = False
    locked: bool = False
    prunable: bool = False


def _worktrees(repo: StrPath) -> list[_WorktreeEntry]:
    """`git worktree list`, the main checkout first."""
    entries: list[_WorktreeEntry] = []
    current: _WorktreeEntry | None = None
    for raw in _git(repo, "worktree", "list", "--porcelain", "-z").split(b"\0"):
        line = raw.decode("utf-8", "surrogateescape")
        if not line:
            current = None
            continue
        key, _, value = line.partition(" ")
        if key == "worktree":
            current = _WorktreeEntry(path=value)
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


def _checkout_of(repo: StrPath, branch: str) -> _WorktreeEntry | None:
    for entry in _worktrees(repo):
        if entry.branch == branch and not entry.bare and not entry.prunable:
            return entry
    return None


def _rebasing(entry: _WorktreeEntry, branch: str) -> bool:
    """True when `branch` is being rebased in that (detached) worktree: git will rewrite it at the end."""
    paths = ("--git-path", "rebase-merge/head-name", "--git-path", "rebase-apply/head-name")
    status, out, _ = _run(entry.path, "rev-parse", *paths)
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
) -> Worktree:
    """The task's worktree at `worktree_path` on `branch`, created from `base_branch` if needed.

    An existing worktree (a later run of the same task) is reused as it is. `copy_files`
    (relative paths such as `.env`) are copied from the project folder when the worktree does
    not have them yet; those missing in the project folder are skipped and listed in `missing`.
    """
    repo = _repository(repo_path)
    target = os.path.abspath(os.fspath(Path(worktree_path).expanduser()))
    entries = _copy_entries(copy_files)
    _check_branch(repo, branch)
    base_sha = _require_base(repo, base_branch)
    _git(repo, "worktree", "prune")
    worktrees = _worktrees(repo)
    existing = next((entry for entry in worktrees if _same_path(entry.path, target)), None)
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
        if _rev(repo, f"refs/heads/{branch}") is not None:
            holder = next((entry for entry in worktrees if entry.branch == branch), None)
            if holder is not None:
                raise Conflict(f"branch '{branch}' is already checked out at {holder.path}", path=holder.path)
            _git(repo, "worktree", "add", "--quiet", target, branch)
        else:
            _git(repo, "worktree", "add", "--quiet", "--no-track", "-b", branch, target, base_sha)
        created = True
    status, out, _ = _run(repo, "merge-base", f"refs/heads/{branch}", base_sha)
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


def _status_paths(path: StrPath) -> list[str]:
    """Every path with uncommitted changes: staged, unstaged, unmerged, untracked (not ignored)."""
    out = _git(
        path, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=none"
    )
    return [item[3:] for item in _nul_fields(out) if len(item) > 3]


def worktree_is_clean(path: StrPath) -> bool:
    """No staged, unstaged or untracked (non-ignored) changes."""
    return not _status_paths(path)


def commit_all(worktree_path: StrPath, message: str) -> str | None:
    """Stage everything (new, modified, deleted; .gitignore respected) and commit it.

    Returns the new head, or None when there was nothing to commit.
    """
    folder = os.fspath(worktree_path)
    if not message or not message.strip():
        raise InvalidInput("commit message must not be empty")
    if not is_git_repository(folder):
        raise InvalidInput(f"{folder!r} is not a git worktree")
    _git(folder, "add", "--all")
    if _rev(folder, "HEAD") is not None:
        status, _, err = _run(folder, "diff", "--cached", "--quiet", "--no-ext-diff", "--ignore-submodules=none")
        if status == 0:
            return None
        if status != 1:
            raise GitCommandFailed(f"git diff failed in {folder}: {err}")
    elif not _git(folder, "ls-files", "-z"):
        return None
    status, _, err = _run(folder, "commit", "--quiet", "--no-verify", "-m", message, env=_identity_env(folder))
    if status != 0:
        raise Conflict(f"could not commit in {folder}: {err}")
    return head_commit(folder)


# --------------------------------------------------------------------------------------------
# Diffs
# --------------------------------------------------------------------------------------------

_STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "added", "T": "modified"}
_HUNK_HEADER = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_OPTIONS = ("-M", "--no-color", "--no-ext-diff", "--no-relative", "--submodule=short")


@dataclass
class _Entry:
    status: str
    path: str
    old_path: str | None
    additions: int = 0
    deletions: int = 0
    binary: bool = False


def _raw_entries(repo: str, base: str, head: str) -> list[_Entry]:
    fields = _git(repo, "diff", "--raw", "-z", "--no-abbrev", *_DIFF_OPTIONS, base, head, "--").split(b"\0")
    entries: list[_Entry] = []
    index = 0
    while index < len(fields):
        meta = fields[index].decode("ascii", "replace")
        if not meta.startswith(":"):
            index += 1
            continue
        letter = meta.split()[-1][:1]
        if letter in ("R", "C"):
            old, new = fields[index + 1], fields[index + 2]
            entries.append(_Entry(letter, _decode_path(new), _decode_path(old)))
            index += 3
        else:
            entries.append(_Entry(letter, _decode_path(fields[index + 1]), None))
            index += 2
    numstat = _git(repo, "diff", "--numstat", "-z", *_DIFF_OPTIONS, base, head, "--").split(b"\0")
    counts: list[tuple[str, str]] = []
    index = 0
    while index < len(numstat):
        record = numstat[index]
        if not record:
            index += 1
            continue
        added, deleted, path = record.split(b"\t", 2)
        counts.append((added.decode(), deleted.decode()))
        index += 3 if path == b"" else 1  # a rename: "a\td\t\0old\0new\0"
    if len(counts) == len(entries):
        for entry, (added, deleted) in zip(entries, counts, strict=True):
            if added == "-" or deleted == "-":
                entry.binary = True
            else:
                entry.additions, entry.deletions = int(added), int(deleted)
    return entries


def _decode_path(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _split_sections(patch: bytes) -> list[list[bytes]]:
    """The patch cut at its `diff --git` headers (content lines always start with ' ', +, - or \\)."""
    sections: list[list[bytes]] = []
    for line in patch.split(b"\n"):
        if line.startswith(b"diff --git ") or line.startswith(b"diff --cc "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    return sections


def _parse_hunks(lines: list[bytes], budget: int) -> tuple[list[dict[str, Any]], bool, bool, int]:
    """Hunks of one file section: (hunks, binary, truncated, lines used)."""
    hunks: list[dict[str, Any]] = []
    binary = False
    truncated = False
    used = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _HUNK_HEADER.match(line)
        if match is None:
            if line.startswith(b"Binary files ") or line == b"GIT binary patch":
                binary = True
            index += 1
            continue
        old_line, new_line = int(match.group(1)), int(match.group(3))
        old_left = int(match.group(2)) if match.group(2) is not None else 1
        new_left = int(match.group(4)) if match.group(4) is not None else 1
        hunk: dict[str, Any] = {"header": line.decode("utf-8", "replace"), "lines": []}
        keep = not truncated
        if keep:
            hunks.append(hunk)
        index += 1
        while index < len(lines) and (old_left > 0 or new_left > 0 or lines[index].startswith(b"\\")):
            body = lines[index]
            index += 1
            marker, text = body[:1], body[1:].decode("utf-8", "replace")
            if marker == b"\\":
                if keep and hunk["lines"]:
                    hunk["lines"][-1]["no_newline"] = True
                continue
            if marker == b"+":
                item = {"type": "add", "old": None, "new": new_line, "text": text}
                new_line += 1
                new_left -= 1
            elif marker == b"-":
                item = {"type": "del", "old": old_line, "new": None, "text": text}
                old_line += 1
                old_left -= 1
            elif marker in (b" ", b""):  # b"": an empty context line (diff.suppressBlankEmpty)
                item = {"type": "context", "old": old_line, "new": new_line, "text": text}
                old_line += 1
                new_line += 1
                old_left -= 1
                new_left -= 1
            else:
                break  # malformed: stop reading this hunk
            if not keep:
                continue
            if used >= budget:
                truncated, keep = True, False
                if not hunk["lines"]:
                    hunks.pop()
                continue
            hunk["lines"].append(item)
            used += 1
    return hunks, binary, truncated, used


def diff(repo_path: StrPath, base_commit: str, head_commit: str) -> dict[str, Any]:
    """The changes from `base_commit` to `head_commit`, JSON-ready, renames detected.

    `{"base", "head", "files": [{"path", "old_path", "status", "additions", "deletions",
    "binary", "truncated", "hunks": [{"header", "lines": [{"type", "old", "new", "text"}]}]}],
    "stats": {"files", "additions", "deletions"}, "truncated"}`. Lines are `context`, `add` or
    `del`; a line without a final newline carries `"no_newline": true`. Each file shows at
    most MAX_DIFF_LINES_PER_FILE lines and the whole diff MAX_DIFF_LINES_TOTAL; files cut short
    are marked `"truncated": true` (their additions/deletions still count everything).
    """
    repo = _repository(repo_path)
    base = _rev(repo, base_commit)
    if base is None:
        raise InvalidInput(f"commit {base_commit!r} does not exist in {repo}")
    head = _rev(repo, head_commit)
    if head is None:
        raise InvalidInput(f"commit {head_commit!r} does not exist in {repo}")
    entries = _raw_entries(repo, base, head)
    options = ("-p", "-U3", "--src-prefix=a/", "--dst-prefix=b/", "--no-textconv", *_DIFF_OPTIONS)
    patch = _git(repo, "diff", *options, base, head, "--")
    sections = _split_sections(patch)
    per_entry = _match_sections(entries, sections)
    if per_entry is None:  # unexpected layout: ask git for each file on its own
        per_entry = [_sections_for(repo, base, head, entry) for entry in entries]
    files: list[dict[str, Any]] = []
    remaining = MAX_DIFF_LINES_TOTAL
    for entry, lines in zip(entries, per_entry, strict=True):
        hunks, binary, truncated, used = _parse_hunks(lines, min(MAX_DIFF_LINES_PER_FILE, remaining))
        remaining -= used
        files.append(
            {
                "path": entry.path,
                "old_path": entry.old_path if entry.status == "R" else None,
                "status": _STATUS.get(entry.status, "modified"),
                "additions": entry.additions,
                "deletions": entry.deletions,
                "binary": entry.binary or binary,
                "truncated": truncated,
                "hunks": [] if entry.binary or binary else hunks,
            }
        )
    return {
        "base": base,
        "head": head,
        "files": files,
        "stats": {
            "files": len(files),
            "additions": sum(item["additions"] for item in files),
            "deletions": sum(item["deletions"] for item in files),
        },
        "truncated": any(item["truncated"] for item in files),
    }


def _match_sections(entries: list[_Entry], sections: list[list[bytes]]) -> list[list[bytes]] | None:
    """Pair raw entries with patch sections (same order; a type change prints two sections)."""
    matched: list[list[bytes]] = []
    index = 0
    for entry in entries:
        if index >= len(sections):
            return None
        lines = sections[index]
        index += 1
        if (
            entry.status == "T"
            and index < len(sections)
            and any(line.startswith(b"deleted file mode") for line in lines[:3])
            and any(line.startswith(b"new file mode") for line in sections[index][:3])
        ):
            lines = lines + sections[index]
            index += 1
        matched.append(lines)
    return matched if index == len(sections) else None


def _sections_for(repo: str, base: str, head: str, entry: _Entry) -> list[bytes]:
    paths = [f":(literal){entry.path}"] + ([f":(literal){entry.old_path}"] if entry.old_path else [])
    out = _git(repo, "diff", "-p", "-U3", "--no-textconv", *_DIFF_OPTIONS, base, head, "--", *paths)
    return [line for section in _split_sections(out) for line in section]


# --------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------


def _changed_paths(repo: str, old: str, new: str) -> tuple[list[str], list[str]]:
    """(every path the change from old to new touches, the paths it creates)."""
    touched: list[str] = []
    created: list[str] = []
    fields = _git(repo, "diff", "--name-status", "-z", "--no-renames", "--no-relative", old, new, "--").split(b"\0")
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
    repo = _repository(repo_path)
    if not message or not message.strip():
        raise InvalidInput("merge message must not be empty")
    _check_branch(repo, branch)
    old = _require_base(repo, base_branch)
    head = _rev(repo, f"refs/heads/{branch}")
    if head is None:
        raise NotFound(f"branch '{branch}' does not exist in {repo}")
    if _is_ancestor(repo, head, old):
        return MergeResult(commit=old, fast_forward=False, already_merged=True)
    if _is_ancestor(repo, old, head):
        new, fast_forward = head, True
    else:
        status, out, err = _run(repo, "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", old, head)
        fields = _nul_fields(out)
        if status == 1:
            files = list(dict.fromkeys(fields[1:]))
            raise Conflict(
                f"Merging {branch} into {base_branch} conflicts in: {', '.join(files)}",
                files=files,
                reason="merge_conflict",
            )
        if status != 0 or not fields:
            raise GitCommandFailed(f"git merge-tree failed in {repo}: {err or f'exit status {status}'}")
        new = _text(repo, "commit-tree", fields[0], "-p", old, "-p", head, "-m", message, env=_identity_env(repo))
        fast_forward = False
    for entry in _worktrees(repo):
        if entry.branch is None and not entry.bare and not entry.prunable and _rebasing(entry, base_branch):
            raise Conflict(f"'{base_branch}' is being rebased in {entry.path}; finish or abort that rebase first")
    checkout = _checkout_of(repo, base_branch)
    if checkout is None:
        status, _, err = _run(repo, "update-ref", "-m", f"merge {branch}", f"refs/heads/{base_branch}", new, old)
        if status != 0:
            raise Conflict(f"'{base_branch}' changed while merging {branch}; try again ({err})")
        return MergeResult(commit=new, fast_forward=fast_forward)
    touched, created = _changed_paths(repo, old, new)
    dirty = set(_status_paths(checkout.path))
    dirty.update(path for path in created if os.path.lexists(os.path.join(checkout.path, *path.split("/"))))
    blocking = _overlap(touched, dirty)
    if blocking:
        raise Conflict(
            f"Merging {branch} into {base_branch} would overwrite uncommitted changes in {checkout.path}: "
            f"{', '.join(blocking)}; commit or stash them first",
            files=blocking,
            reason="dirty_checkout",
        )
    status, _, err = _run(
        checkout.path, "merge", "--ff-only", "--quiet", "--no-autostash", "--no-verify-signatures", "--no-edit", new
    )
    if status != 0:
        raise Conflict(f"Could not update {checkout.path} to the merged '{base_branch}': {err}", reason="checkout")
    if _rev(repo, f"refs/heads/{base_branch}") != new:
        raise GitCommandFailed(f"'{base_branch}' in {repo} did not move to the merge result {new}")
    return MergeResult(commit=new, fast_forward=fast_forward)


# --------------------------------------------------------------------------------------------
# Removing worktrees
# --------------------------------------------------------------------------------------------


def remove_worktree(repo_path: StrPath, worktree_path: StrPath, branch: str, base_branch: str | None = None) -> None:
    """Remove a task's worktree (the branch stays) when that loses nothing.

    Refused (Conflict) when the worktree has uncommitted changes or when its head is not
    reachable from `base_branch` (without `base_branch`: from some other local branch).
    A worktree whose folder is already gone is only unregistered.
    """
    repo = _repository(repo_path)
    target = os.path.abspath(os.fspath(Path(worktree_path).expanduser()))
    worktrees = _worktrees(repo)
    entry = next((item for item in worktrees if _same_path(item.path, target) or item.path == target), None)
    if entry is None:
        if os.path.lexists(target):
            raise InvalidInput(f"{target} is not a worktree of {repo}")
        return
    if entry is worktrees[0]:
        raise InvalidInput(f"{target} is the project's own checkout, not a task worktree")
    if not os.path.isdir(target):
        _git(repo, "worktree", "prune")
        return
    if entry.branch != branch:
        on = f"branch '{entry.branch}'" if entry.branch else "a detached HEAD"
        raise Conflict(f"worktree {target} is on {on}, not on '{branch}'", path=target)
    dirty = _status_paths(target)
    if dirty:
        raise Conflict(
            f"worktree {target} has uncommitted changes in: {', '.join(dirty[:20])}"
            + (f" and {len(dirty) - 20} more" if len(dirty) > 20 else ""),
            files=dirty,
            reason="uncommitted_changes",
        )
    head = head_commit(target)
    if base_branch is not None:
        base = _require_base(repo, base_branch)
        if not _is_ancestor(repo, head, base):
            raise Conflict(
                f"branch '{branch}' has commits that are not merged into '{base_branch}'; merge it first",
                reason="unmerged",
            )
    else:
        names = _text(repo, "for-each-ref", "--format=%(refname:short)", "--contains", head, "refs/heads/")
        if not [name for name in names.splitlines() if name and name != branch]:
            raise Conflict(
                f"branch '{branch}' has commits that no other branch contains; merge it first", reason="unmerged"
            )
    if entry.locked:
        raise Conflict(f"worktree {target} is locked (`git worktree unlock` it first)", path=target)
    status, _, err = _run(repo, "worktree", "remove", target)
    if status != 0:
        raise Conflict(f"could not remove worktree {target}: {err}", path=target)

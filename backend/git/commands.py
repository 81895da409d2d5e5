"""Running the `git` command line.

Every command runs `git` from PATH with a list of arguments (no shell, so paths with spaces or
unicode are safe), in an existing folder, with no standard input, with git's messages in plain
English (`LC_ALL=C`; some of them are recognised by their words), never prompting and never
taking optional locks: a `git status` on the user's checkout must not fight with their own git
commands over index.lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from ..errors import InvalidInput, KanbanError

StrPath = str | os.PathLike[str]

APP_NAME = "Kanban Orchestrator"
APP_EMAIL = "kanban@localhost"

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LANGUAGE": "C", "LC_ALL": "C"}


class GitCommandFailed(KanbanError):
    """Git failed in a way that is not a business case (a bug, a broken repository, no git)."""

    status_code = 500


def run(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, bytes, str]:
    """Run `git <args>` in `cwd`; (exit status, raw stdout, stderr text). Never raises for status."""
    folder = os.fspath(cwd)
    if not os.path.isdir(folder):
        raise InvalidInput(f"folder {folder!r} does not exist")
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            env={**os.environ, **GIT_ENV, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:  # the folder went away or cannot be entered, or there is no git
        if not os.path.isdir(folder):
            raise InvalidInput(f"folder {folder!r} does not exist") from None
        if isinstance(exc, PermissionError):
            raise InvalidInput(f"the server may not open folder {folder!r} (permission denied)") from None
        if isinstance(exc, FileNotFoundError) and shutil.which("git") is None:
            raise GitCommandFailed("git is not installed: no `git` command on PATH") from None
        raise GitCommandFailed(f"could not run git in {folder}: {exc.strerror or exc}") from None
    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace").strip()


def output(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> bytes:
    """Raw stdout of `git <args>`; GitCommandFailed when it exits with a non-zero status."""
    status, out, err = run(cwd, *args, env=env)
    if status != 0:
        raise GitCommandFailed(f"git {args[0]} failed in {os.fspath(cwd)}: {err or f'exit status {status}'}")
    return out


def output_text(cwd: StrPath, *args: str, env: Mapping[str, str] | None = None) -> str:
    return output(cwd, *args, env=env).decode("utf-8", "replace").strip()


def nul_fields(out: bytes) -> list[str]:
    """The non-empty fields of a `-z` output (paths decoded losslessly)."""
    return [item.decode("utf-8", "surrogateescape") for item in out.split(b"\0") if item]


def rev(cwd: StrPath, revision: str) -> str | None:
    """Full sha of `revision` as a commit, or None."""
    status, out, _ = run(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    return out.decode().strip() if status == 0 else None


def is_ancestor(cwd: StrPath, ancestor: str, descendant: str) -> bool:
    status, _, err = run(cwd, "merge-base", "--is-ancestor", ancestor, descendant)
    if status not in (0, 1):
        raise GitCommandFailed(f"git merge-base failed in {os.fspath(cwd)}: {err}")
    return status == 0


def merge_commit(cwd: StrPath, ours: str, theirs: str, message: str) -> str | list[str]:
    """A merge commit of `ours` and `theirs` (parents in that order), made in the object
    database only (`merge-tree --write-tree`, then `commit-tree`: no ref, index or file is
    touched); or, when they conflict, the conflicting files."""
    status, out, err = run(cwd, "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs)
    fields = nul_fields(out)
    if status == 1:
        return list(dict.fromkeys(fields[1:]))
    if status != 0 or not fields:
        raise GitCommandFailed(f"git merge-tree failed in {os.fspath(cwd)}: {err or f'exit status {status}'}")
    return output_text(cwd, "commit-tree", fields[0], "-p", ours, "-p", theirs, "-m", message, env=identity_env(cwd))


def identity_env(cwd: StrPath) -> dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* for whatever identity the repository does not configure.

    Commits made here use the repository's configured identity; when none is configured, they
    are made as "Kanban Orchestrator <kanban@localhost>" through these variables of that one
    command, so no git configuration file is ever written.
    """
    status, out, _ = run(cwd, "config", "--get-regexp", r"^(user|author|committer)\.(name|email)$")
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

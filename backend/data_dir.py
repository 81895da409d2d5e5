"""The data dir: private to the user running the server, and owned by one server on SQLite.

- Modes: the folder and what the server keeps in it (the SQLite database and its -wal/-shm
  files, the secrets key, worktrees, agents' files) are for this user only: folders 0700,
  files 0600. A data dir made with wider modes is tightened at start, and the log says so.
- Lock: `kanban serve` on SQLite takes an exclusive lock (`flock`) on `<data dir>/kanban.lock`
  before it touches anything, and writes its pid in it. A second server on the same data dir
  stops there, before start-up recovery could kill the first server's agents.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "kanban.lock"
PRIVATE_DIRS = ("worktrees", "agents", "bin")
PRIVATE_FILES = ("kanban.db", "kanban.db-wal", "kanban.db-shm", "kanban.db-journal", "secret.key", LOCK_FILE)

_held: list[int] = []  # lock file descriptors this process holds for its lifetime


class DataDirInUse(RuntimeError):
    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"another Kanban server ({who}) uses {data_dir}")


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with mode 0700 for the last part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)


def create_private_file(path: Path) -> None:
    """Create an empty file with mode 0600 unless it exists (SQLite gives its -wal and -shm
    files the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def secure(data_dir: Path) -> list[str]:
    """Create the data dir private, tighten what others could read; the paths changed."""
    make_private_dir(data_dir)
    changed = []
    for path, mode in (
        [(data_dir, 0o700)]
        + [(data_dir / name, 0o700) for name in PRIVATE_DIRS]
        + [(data_dir / name, 0o600) for name in PRIVATE_FILES]
    ):
        try:
            current = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue
        if path.is_symlink() or current & 0o077 == 0:
            continue
        path.chmod(current & mode)
        changed.append(f"{path} {current:o} -> {stat.S_IMODE(path.stat().st_mode):o}")
    for line in changed:
        log.warning("other users could read %s; mode tightened", line)
    return changed


def in_use(data_dir: Path) -> DataDirInUse | None:
    """Who holds the data dir's lock, without taking it (None: nobody)."""
    path = data_dir / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return DataDirInUse(data_dir, _pid_in(path))
    finally:
        os.close(descriptor)  # closing drops a lock taken here
    return None


def lock(data_dir: Path) -> None:
    """Hold `<data dir>/kanban.lock` until this process ends; DataDirInUse when another has it."""
    make_private_dir(data_dir)
    path = data_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by agents (O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise DataDirInUse(data_dir, _pid_in(path)) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    _held.append(descriptor)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None

"""File tools for agents, confined to one root folder (FastMCP, stdio).

Run it as ``python -m mcp_servers.filesystem_server --root DIR`` (the root can
also come from ``KANBAN_FS_ROOT``; it defaults to the current directory), or
build it in-process with :func:`build_server`.

Confinement works in two steps:

1. Check the path as text: no NUL bytes, no over-long names or paths, no ``~``,
   no URL-encoding. Then resolve it with ``realpath``, which follows every
   symbolic link. The result must stay inside the root. A path that leaves the
   root through ``..``, an absolute path, or a symlink is refused.
2. Reach the target from an open descriptor on the root, one directory at a
   time (``openat`` with ``O_NOFOLLOW | O_DIRECTORY``), and act on the last
   name with ``dir_fd`` calls that never follow links. If a symlink has been
   swapped in since step 1, the walk fails instead of leaving the root.

Writes go to a temporary file in the target directory and are then renamed
into place. A rename replaces a symlink or hard link rather than writing
through it. Only regular files are read or written; devices, FIFOs and
sockets are refused. Every failure reaches the client as a
:class:`fastmcp.exceptions.ToolError` with a readable message.
"""

from __future__ import annotations

import argparse
import base64
import errno
import fnmatch
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

from mcp_servers.params import Flag

__all__ = ["ConfinedFS", "build_server", "main"]

ROOT_ENV = "KANBAN_FS_ROOT"
MAX_READ_ENV = "KANBAN_FS_MAX_READ_BYTES"
MAX_WRITE_ENV = "KANBAN_FS_MAX_WRITE_BYTES"

DEFAULT_MAX_READ_BYTES = 1024 * 1024  # per read_file call
DEFAULT_MAX_WRITE_BYTES = 5 * 1024 * 1024  # per write_file call
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_LIST_ENTRIES = 1000
MAX_SEARCH_RESULTS = 1000  # hard cap for search_files(max_results=...)
MAX_SEARCH_VISITED = 100_000  # entries walked before a search gives up
MAX_SEARCH_FILE_BYTES = 4 * 1024 * 1024  # larger files are skipped by `contains`
MAX_MATCH_LINES = 3
MAX_LINE_CHARS = 200

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_URL_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)

_ERRNO_TEXT = {
    errno.ENOENT: "no such file or directory",
    errno.EEXIST: "already exists",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.ENOTEMPTY: "directory is not empty (pass recursive=true to delete it with its contents)",
    errno.ELOOP: "a symbolic link appeared on the path while the operation ran; refused",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EXDEV: "cannot move across file systems",
    errno.EINVAL: "invalid operation (for example, moving a directory into itself)",
    errno.ENAMETOOLONG: "name too long",
    errno.EROFS: "read-only file system",
    errno.EBUSY: "resource busy",
    errno.ENXIO: "no such device",
}


@dataclass(frozen=True)
class _Target:
    """A location inside the root: directory parts below the root plus a final name."""

    parents: tuple[str, ...]
    name: str | None  # None means the root itself
    display: str  # root-relative path shown to the client

    @property
    def parts(self) -> tuple[str, ...]:
        return self.parents if self.name is None else (*self.parents, self.name)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer number of bytes, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def _trim_partial_utf8(data: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the end of ``data``, if there is one."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: look further back
            continue
        if byte < 0x80:  # ASCII: nothing is cut
            return data
        needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2
        return data if back >= needed else data[:-back]
    return data


class ConfinedFS:
    """File operations that cannot leave ``root``. Methods raise ToolError on any failure."""

    def __init__(
        self,
        root: Path | str,
        *,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        max_write_bytes: int = DEFAULT_MAX_WRITE_BYTES,
    ) -> None:
        given = os.path.abspath(os.fspath(root))
        real = os.path.realpath(given)
        if not os.path.isdir(real):
            raise ValueError(f"root folder does not exist or is not a directory: {given}")
        self.root_given = given
        self.root = real
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes

    # ------------------------------------------------------------------ paths

    def _inside(self, absolute: str, base: str | None = None) -> bool:
        base = self.root if base is None else base
        return absolute == base or absolute.startswith(base.rstrip("/") + "/")

    def _check_text(self, path: Any, what: str) -> str:
        if not isinstance(path, str):
            raise ToolError(f"{what} must be a string")
        if "\x00" in path:
            raise ToolError(f"{what} contains a NUL byte")
        if path.strip() == "":
            raise ToolError(f"{what} must not be empty")
        try:
            encoded = path.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolError(f"{what} is not valid UTF-8") from None
        if len(encoded) > MAX_PATH_BYTES:
            raise ToolError(f"{what} is too long ({len(encoded)} bytes, the limit is {MAX_PATH_BYTES})")
        for part in path.split("/"):
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                raise ToolError(f"{what} has a name longer than {MAX_NAME_BYTES} bytes")
        if path.startswith("~"):
            raise ToolError(f"{what} starts with '~': home folders are not expanded; use a path relative to the root")
        if _URL_ENCODED.search(path):
            raise ToolError(f"{what} looks URL-encoded ({path!r}); pass the plain path")
        return path

    def _absolute(self, path: str, what: str) -> str:
        """Join ``path`` to the root and refuse lexical escapes (``..``, absolute paths elsewhere)."""
        text = self._check_text(path, what)
        joined = text if os.path.isabs(text) else os.path.join(self.root, text)
        lexical = os.path.normpath(joined)
        if os.path.isabs(text) and self._inside(lexical, self.root_given) and self.root_given != self.root:
            # An absolute path written with the root as given (not its real path).
            lexical = os.path.join(self.root, os.path.relpath(lexical, self.root_given))
            joined = lexical
        if not self._inside(lexical):
            raise ToolError(f"{what} {path!r} is outside the root folder")
        return joined

    def _relative(self, real: str) -> tuple[str, ...]:
        rel = os.path.relpath(real, self.root)
        return () if rel == "." else tuple(rel.split("/"))

    def _check_real(self, joined: str, path: str, what: str) -> str:
        real = os.path.realpath(joined)
        if not self._inside(real):
            raise ToolError(f"{what} {path!r} leads outside the root folder through a symbolic link")
        return real

    def target(self, path: str, what: str = "path") -> _Target:
        """Resolve ``path`` completely (following in-root symlinks)."""
        joined = self._absolute(path, what)
        parts = self._relative(self._check_real(joined, path, what))
        if not parts:
            return _Target((), None, ".")
        return _Target(parts[:-1], parts[-1], "/".join(parts))

    def target_entry(self, path: str, what: str = "path") -> _Target:
        """Resolve the parent of ``path`` but keep its last name literal (the link itself, not its target)."""
        joined = self._absolute(path, what).rstrip("/") or "/"
        self._check_real(joined, path, what)
        head, name = os.path.split(joined)
        if name in ("", ".", ".."):
            return self.target(path, what)
        parents = self._relative(self._check_real(head, path, what))
        return _Target(parents, name, "/".join((*parents, name)))

    @contextmanager
    def _open_dir(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """Yield a descriptor for root/parts, walked without following any symlink."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                next_fd = self._open_child_dir(fd, part, create)
                os.close(fd)
                fd = next_fd
            yield fd
        finally:
            os.close(fd)

    def _open_child_dir(self, fd: int, part: str, create: bool) -> int:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            # O_NOFOLLOW | O_DIRECTORY on a symlink fails with ENOTDIR or ELOOP. The path was
            # checked free of outward links, so a link here was swapped in after the check.
            st = self._lstat(part, fd)
            if exc.errno in (errno.ENOTDIR, errno.ELOOP) and st is not None and stat.S_ISLNK(st.st_mode):
                raise ToolError(f"refused: {part!r} became a symbolic link while the operation ran") from None
            raise
        try:
            os.mkdir(part, 0o777, dir_fd=fd)
        except FileExistsError:
            pass
        return os.open(part, _DIR_FLAGS, dir_fd=fd)

    @contextmanager
    def _guard(self, action: str, display: str) -> Iterator[None]:
        try:
            yield
        except ToolError:
            raise
        except OSError as exc:
            reason = _ERRNO_TEXT.get(exc.errno or 0) or exc.strerror or str(exc)
            raise ToolError(f"cannot {action} {display!r}: {reason}") from None

    @staticmethod
    def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ tools

    def read_file(self, path: str, offset: int = 0, limit: int = 0) -> dict[str, Any]:
        if offset < 0:
            raise ToolError("offset must be 0 or more")
        if limit < 0:
            raise ToolError("limit must be 0 or more (0 means the largest allowed chunk)")
        want = self.max_read_bytes if limit == 0 else min(limit, self.max_read_bytes)
        t = self.target(path)
        if t.name is None:
            raise ToolError("cannot read '.': it is a directory")
        with self._guard("read", t.display), self._open_dir(t.parents) as dir_fd:
            before = self._lstat(t.name, dir_fd)
            if before is None:
                raise ToolError(f"cannot read {t.display!r}: no such file")
            if not stat.S_ISREG(before.st_mode):
                raise ToolError(f"cannot read {t.display!r}: it is a {_kind(before.st_mode)}, not a regular file")
            fd = os.open(t.name, _READ_FLAGS, dir_fd=dir_fd)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                    raise ToolError(f"cannot read {t.display!r}: the file changed while it was opened")
                data = os.pread(fd, want, offset) if offset < st.st_size else b""
            finally:
                os.close(fd)
        size = st.st_size
        more = offset + len(data) < size
        if more:
            data = _trim_partial_utf8(data) or data
        encoding = "utf-8"
        try:
            if b"\x00" in data:
                raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
            content = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, content = "base64", base64.b64encode(data).decode("ascii")
        end = offset + len(data)
        return {
            "path": t.display,
            "size": size,
            "offset": offset,
            "length": len(data),
            "next_offset": end if end < size else None,
            "encoding": encoding,
            "content": content,
        }

    def write_file(self, path: str, content: str) -> dict[str, Any]:
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolError("content is not valid Unicode text") from None
        if len(data) > self.max_write_bytes:
            raise ToolError(f"content is {len(data)} bytes; the limit per write is {self.max_write_bytes} bytes")
        t = self.target(path)
        if t.name is None:
            raise ToolError("cannot write '.': it is the root folder")
        with self._guard("write", t.display), self._open_dir(t.parents, create=True) as dir_fd:
            existing = self._lstat(t.name, dir_fd)
            if existing is not None and not stat.S_ISREG(existing.st_mode):
                raise ToolError(f"cannot write {t.display!r}: it is a {_kind(existing.st_mode)}, not a regular file")
            tmp = f".{secrets.token_hex(8)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
            try:
                try:
                    if existing is not None:
                        os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                os.rename(tmp, t.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dir_fd)
                except OSError:
                    pass
                raise
        return {"path": t.display, "bytes_written": len(data), "created": existing is None}

    def list_directory(self, path: str = ".") -> dict[str, Any]:
        t = self.target(path)
        entries: list[dict[str, Any]] = []
        truncated = False
        with self._guard("list", t.display), self._open_dir(t.parts) as dir_fd:
            with os.scandir(dir_fd) as it:
                found = sorted(it, key=lambda e: e.name)
            for entry in found:
                if len(entries) >= MAX_LIST_ENTRIES:
                    truncated = True
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                item: dict[str, Any] = {"name": entry.name, "type": _kind(st.st_mode)}
                if stat.S_ISREG(st.st_mode):
                    item["size"] = st.st_size
                entries.append(item)
        return {"path": t.display, "entries": entries, "truncated": truncated}

    def search_files(self, pattern: str, path: str = ".", contains: str = "", max_results: int = 100) -> dict[str, Any]:
        if not isinstance(pattern, str) or pattern == "" or "\x00" in pattern:
            raise ToolError("pattern must be a non-empty glob such as '*.py'")
        if "\x00" in contains:
            raise ToolError("contains must not hold a NUL byte")
        if max_results < 1:
            raise ToolError("max_results must be at least 1")
        cap = min(max_results, MAX_SEARCH_RESULTS)
        match_path = "/" in pattern
        needle = contains.encode("utf-8") if contains else b""
        t = self.target(path)
        base = "" if t.display == "." else t.display + "/"
        results: list[dict[str, Any]] = []
        visited = 0
        truncated = False
        with self._guard("search", t.display), self._open_dir(t.parts) as start_fd:
            walker = os.fwalk(".", dir_fd=start_fd, follow_symlinks=False)
            try:
                for dirpath, dirnames, filenames, dir_fd in walker:
                    dirnames.sort()
                    rel_dir = "" if dirpath == "." else dirpath[2:] + "/"
                    for name in sorted(dirnames + filenames):
                        visited += 1
                        if visited > MAX_SEARCH_VISITED or len(results) >= cap:
                            truncated = True
                            break
                        rel = rel_dir + name
                        if not fnmatch.fnmatchcase(rel if match_path else name, pattern):
                            continue
                        if not needle:
                            results.append({"path": base + rel, "type": self._kind_at(name, dir_fd)})
                            continue
                        lines = self._grep(name, dir_fd, needle)
                        if lines:
                            results.append({"path": base + rel, "matches": lines})
                    if truncated:
                        break
            finally:
                walker.close()  # type: ignore[attr-defined]  # os.fwalk gives a generator; typeshed says Iterator
        return {"path": t.display, "results": results, "truncated": truncated}

    def _kind_at(self, name: str, dir_fd: int) -> str:
        st = self._lstat(name, dir_fd)
        return "missing" if st is None else _kind(st.st_mode)

    def _grep(self, name: str, dir_fd: int, needle: bytes) -> list[dict[str, Any]]:
        st = self._lstat(name, dir_fd)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SEARCH_FILE_BYTES:
            return []
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError:
            return []
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            chunks, total = [], 0
            while chunk := os.read(fd, 1 << 16):
                total += len(chunk)
                if total > MAX_SEARCH_FILE_BYTES:  # grew since the size check
                    return []
                chunks.append(chunk)
        except OSError:
            return []
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if b"\x00" in data[:8192] or needle not in data:
            return []
        found = []
        for number, line in enumerate(data.splitlines(), start=1):
            if needle in line:
                text = line.decode("utf-8", "replace").strip()
                found.append({"line": number, "text": text[:MAX_LINE_CHARS]})
                if len(found) >= MAX_MATCH_LINES:
                    break
        return found

    def make_directory(self, path: str) -> dict[str, Any]:
        t = self.target(path)
        with self._guard("create directory", t.display):
            if t.name is None:
                return {"path": ".", "created": False}
            with self._open_dir(t.parents, create=True) as dir_fd:
                existing = self._lstat(t.name, dir_fd)
                if existing is not None and not stat.S_ISDIR(existing.st_mode):
                    raise ToolError(f"cannot create directory {t.display!r}: a {_kind(existing.st_mode)} is in the way")
                if existing is None:
                    try:
                        os.mkdir(t.name, 0o777, dir_fd=dir_fd)
                    except FileExistsError:
                        existing = self._lstat(t.name, dir_fd)
        return {"path": t.display, "created": existing is None}

    def move_path(self, source: str, destination: str, overwrite: bool = False) -> dict[str, Any]:
        src = self.target_entry(source, "source")
        dst = self.target_entry(destination, "destination")
        if src.name is None:
            raise ToolError("cannot move the root folder")
        if dst.name is None:
            raise ToolError("cannot replace the root folder")
        if src.parts == dst.parts:
            raise ToolError("source and destination are the same path")
        if dst.parts[: len(src.parts)] == src.parts:
            raise ToolError(f"cannot move {src.display!r} into itself")
        with self._guard("move", src.display), self._open_dir(src.parents) as src_fd:
            if self._lstat(src.name, src_fd) is None:
                raise ToolError(f"cannot move {src.display!r}: no such file or directory")
            with self._open_dir(dst.parents, create=True) as dst_fd:
                if self._lstat(dst.name, dst_fd) is not None and not overwrite:
                    raise ToolError(
                        f"cannot move to {dst.display!r}: it already exists (pass overwrite=true to replace it)"
                    )
                os.rename(src.name, dst.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return {"source": src.display, "destination": dst.display}

    def delete_path(self, path: str, recursive: bool = False) -> dict[str, Any]:
        t = self.target_entry(path)
        if t.name is None:
            raise ToolError("refusing to delete the root folder")
        with self._guard("delete", t.display), self._open_dir(t.parents) as dir_fd:
            st = self._lstat(t.name, dir_fd)
            if st is None:
                raise ToolError(f"cannot delete {t.display!r}: no such file or directory")
            kind = _kind(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                if recursive:
                    self._remove_tree(dir_fd, t.name)
                else:
                    os.rmdir(t.name, dir_fd=dir_fd)
            else:
                os.unlink(t.name, dir_fd=dir_fd)
        return {"path": t.display, "deleted": kind}

    @staticmethod
    def _remove_tree(parent_fd: int, name: str) -> None:
        """Delete directory ``name`` of ``parent_fd`` with everything below it.

        Depth first without recursion (any depth) and with two descriptors open at a time:
        a directory is entered with ``O_NOFOLLOW`` (links are removed, never followed), and
        left through ``..`` only when ``..`` is still the directory it was entered from; a
        tree moved while it is being deleted stops the deletion instead of leaving the root.
        """
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        parent = os.fstat(parent_fd)
        # One frame per directory entered: its name, its parent's identity, subfolders left.
        stack: list[tuple[str, tuple[int, int], list[str]]] = []
        try:
            current = name
            while True:
                subfolders = []
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            subfolders.append(entry.name)
                        else:
                            os.unlink(entry.name, dir_fd=fd)
                stack.append((current, (parent.st_dev, parent.st_ino), subfolders))
                while stack and not stack[-1][2]:
                    done, (dev, ino), _ = stack.pop()
                    if not stack:
                        os.rmdir(done, dir_fd=parent_fd)
                        return
                    up = os.open("..", _DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = up
                    here = os.fstat(fd)
                    if (here.st_dev, here.st_ino) != (dev, ino):
                        raise ToolError("refused: the folder being deleted was moved while the deletion ran")
                    os.rmdir(done, dir_fd=fd)
                parent = os.fstat(fd)
                current = stack[-1][2].pop()
                child = os.open(current, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        finally:
            os.close(fd)

    def file_info(self, path: str) -> dict[str, Any]:
        t = self.target_entry(path)
        with self._guard("inspect", t.display), self._open_dir(t.parents) as dir_fd:
            st: os.stat_result | None
            if t.name is None:
                st = os.fstat(dir_fd)
                link = None
            else:
                st = self._lstat(t.name, dir_fd)
                if st is None:
                    raise ToolError(f"cannot inspect {t.display!r}: no such file or directory")
                link = os.readlink(t.name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None
        info: dict[str, Any] = {
            "path": t.display,
            "type": _kind(st.st_mode),
            "size": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds"),
            "mode": oct(stat.S_IMODE(st.st_mode)),
        }
        if link is not None:
            info["link_target"] = link
            info["resolves_to"] = self.target(path).display
        return info


def build_server(
    root: Path | str,
    *,
    max_read_bytes: int | None = None,
    max_write_bytes: int | None = None,
) -> FastMCP:
    """Build the filesystem MCP server for ``root``. Limits default to the env vars, then 1 MiB / 5 MiB."""
    fs = ConfinedFS(
        root,
        max_read_bytes=max_read_bytes or _env_int(MAX_READ_ENV, DEFAULT_MAX_READ_BYTES),
        max_write_bytes=max_write_bytes or _env_int(MAX_WRITE_ENV, DEFAULT_MAX_WRITE_BYTES),
    )
    mcp = FastMCP(
        "filesystem",
        instructions=(
            "File tools confined to one project folder. Paths are relative to that folder; "
            "'..', '~', absolute paths elsewhere and symlinks leading out of it are refused."
        ),
    )

    def run(method: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        try:
            return method(*args)
        except ToolError:
            raise
        except Exception as exc:  # keep the message; the server carries on
            raise ToolError(f"{method.__name__} failed: {type(exc).__name__}: {exc}") from None

    read_only = {"readOnlyHint": True, "openWorldHint": False}
    changes = {"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}
    destructive = {"readOnlyHint": False, "destructiveHint": True, "openWorldHint": False}

    @mcp.tool(annotations=read_only)
    def read_file(path: str, offset: int = 0, limit: int = 0) -> dict[str, Any]:
        """Read a file. `offset` is a byte offset; `limit` caps the bytes returned (0 = the maximum, 1 MiB by default).
        Returns the content (utf-8 text, or base64 for binary data) and `next_offset` when more remains."""
        return run(fs.read_file, path, offset, limit)

    @mcp.tool(annotations=destructive)
    def write_file(path: str, content: str) -> dict[str, Any]:
        """Write text to a file, replacing it if it exists. Missing parent directories are created."""
        return run(fs.write_file, path, content)

    @mcp.tool(annotations=read_only)
    def list_directory(path: str = ".") -> dict[str, Any]:
        """List a directory: name, type (file, directory, symlink, ...) and size of files."""
        return run(fs.list_directory, path)

    @mcp.tool(annotations=read_only)
    def search_files(pattern: str, path: str = ".", contains: str = "", max_results: int = 100) -> dict[str, Any]:
        """Find files and directories under `path` whose name matches a glob (`*.py`; a pattern with '/'
        matches the relative path). With `contains`, only files holding that text are returned, with matching lines."""
        return run(fs.search_files, pattern, path, contains, max_results)

    @mcp.tool(annotations=changes)
    def make_directory(path: str) -> dict[str, Any]:
        """Create a directory and any missing parents. Succeeds if it already exists."""
        return run(fs.make_directory, path)

    @mcp.tool(annotations=destructive)
    def move_path(source: str, destination: str, overwrite: Flag = False) -> dict[str, Any]:
        """Move or rename a file or directory. `destination` is the new full path; it must not exist unless overwrite=true."""
        return run(fs.move_path, source, destination, overwrite)

    @mcp.tool(annotations=destructive)
    def delete_path(path: str, recursive: Flag = False) -> dict[str, Any]:
        """Delete a file, symlink or empty directory; recursive=true deletes a directory with its contents."""
        return run(fs.delete_path, path, recursive)

    @mcp.tool(annotations=read_only)
    def file_info(path: str) -> dict[str, Any]:
        """Type, size, modification time and permissions of a path (a symlink is described, not followed)."""
        return run(fs.file_info, path)

    return mcp


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="MCP file tools confined to one folder (stdio).")
    parser.add_argument("--root", help=f"root folder (default: ${ROOT_ENV}, then the current directory)")
    args = parser.parse_args(argv)
    root = args.root or os.environ.get(ROOT_ENV) or os.getcwd()
    try:
        server = build_server(Path(root))
    except ValueError as exc:
        print(f"filesystem_server: {exc}", file=sys.stderr)
        return 2
    server.run(transport="stdio", show_banner=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

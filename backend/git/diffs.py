"""What changed between two commits, as JSON-ready data: files, hunks, lines.

The file list, statuses and paths come from `git diff --raw -z` (exact paths, renames
detected) and the line counts from `--numstat`; the hunks come from the patch, read section
by section (one `diff --git` section per file, two for a type change). Every diff option that
a user's configuration could change is given explicitly, so their settings change nothing.
Each file shows at most MAX_DIFF_LINES_PER_FILE lines and the whole diff MAX_DIFF_LINES_TOTAL;
the lines past those are not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .commands import StrPath, output, rev
from .repository import require_repository

MAX_DIFF_LINES_PER_FILE = 2_000
MAX_DIFF_LINES_TOTAL = 20_000

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
    fields = output(repo, "diff", "--raw", "-z", "--no-abbrev", *_DIFF_OPTIONS, base, head, "--").split(b"\0")
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
    numstat = output(repo, "diff", "--numstat", "-z", *_DIFF_OPTIONS, base, head, "--").split(b"\0")
    counts: list[tuple[str, str]] = []
    index = 0
    while index < len(numstat):
        record = numstat[index]
        if not record:
            index += 1
            continue
        raw_added, raw_deleted, path = record.split(b"\t", 2)
        counts.append((raw_added.decode(), raw_deleted.decode()))
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
    repo = require_repository(repo_path)
    base = rev(repo, base_commit)
    if base is None:
        raise InvalidInput(f"commit {base_commit!r} does not exist in {repo}")
    head = rev(repo, head_commit)
    if head is None:
        raise InvalidInput(f"commit {head_commit!r} does not exist in {repo}")
    entries = _raw_entries(repo, base, head)
    options = ("-p", "-U3", "--src-prefix=a/", "--dst-prefix=b/", "--no-textconv", *_DIFF_OPTIONS)
    patch = output(repo, "diff", *options, base, head, "--")
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
    out = output(repo, "diff", "-p", "-U3", "--no-textconv", *_DIFF_OPTIONS, base, head, "--", *paths)
    return [line for section in _split_sections(out) for line in section]

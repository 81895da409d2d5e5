"""Heading-aware chunking of Markdown (and plain text) into pieces of about 1,000 characters.

A chunk never spans two sections: a heading starts a new chunk, and each chunk keeps the path
of headings above it (`Guide › Install › Linux`). Paragraphs are packed together up to the
target size; a paragraph longer than that is split at sentence ends (or lines, or spaces). A
fenced code block (``` or ~~~) is never split, however long: half a code sample answers nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TARGET_CHARS = 1_000
HEADING_SEPARATOR = " › "
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    heading: str
    text: str


@dataclass(slots=True)
class _Block:
    heading: tuple[str, ...]
    text: str
    code: bool = False


def _blocks(markdown: str) -> list[_Block]:
    """Paragraphs and code blocks, each with the heading path it is under."""
    blocks: list[_Block] = []
    path: list[tuple[int, str]] = []
    paragraph: list[str] = []
    fence: str | None = None
    code: list[str] = []

    def heading() -> tuple[str, ...]:
        return tuple(title for _, title in path)

    def end_paragraph() -> None:
        if paragraph:
            text = "\n".join(paragraph).strip()
            if text:
                blocks.append(_Block(heading(), text))
            paragraph.clear()

    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            code.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped[len(fence) :].strip(fence[0]).strip():
                blocks.append(_Block(heading(), "\n".join(code), code=True))
                fence, code = None, []
            continue
        opening = _FENCE.match(line)
        if opening:
            end_paragraph()
            fence, code = opening.group(1), [line]
            continue
        match = _HEADING.match(line)
        if match:
            end_paragraph()
            level, title = len(match.group(1)), match.group(2).strip()
            while path and path[-1][0] >= level:
                path.pop()
            if title:
                path.append((level, title))
            continue
        if not line.strip():
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    if code:  # an unclosed fence runs to the end of the document
        blocks.append(_Block(heading(), "\n".join(code), code=True))
    return blocks


_SPLITTERS = (_SENTENCE_END, re.compile(r"\n+"), re.compile(r"\s+"))


def _split_long(text: str, target: int, level: int = 0) -> list[str]:
    """A paragraph longer than `target`, cut at sentence ends, else lines, else spaces, else anywhere."""
    if len(text) <= target:
        return [text]
    if level == len(_SPLITTERS):
        return [text[i : i + target] for i in range(0, len(text), target)]
    pieces = [piece for piece in _SPLITTERS[level].split(text) if piece.strip()]
    if len(pieces) < 2:
        return _split_long(text, target, level + 1)
    out: list[str] = []
    current = ""
    for piece in pieces:
        for part in _split_long(piece, target, level + 1):
            joined = f"{current} {part}" if current else part
            if len(joined) > target and current:
                out.append(current)
                current = part
            else:
                current = joined
    if current:
        out.append(current)
    return out


def with_title(title: str | None, heading: str) -> str:
    """The heading path under the document's title (unless the path starts with it already)."""
    if not title or not title.strip():
        return heading
    title = title.strip()
    if heading.split(HEADING_SEPARATOR)[0].strip().lower() == title.lower():
        return heading
    return f"{title}{HEADING_SEPARATOR}{heading}" if heading else title


def chunk_markdown(markdown: str, target: int = TARGET_CHARS, title: str | None = None) -> list[Chunk]:
    """The document's chunks in order (empty for a document without text). With `title`, every
    heading path starts with the document's title."""
    chunks: list[Chunk] = []
    current: list[str] = []
    size = 0
    section: tuple[str, ...] | None = None

    def flush() -> None:
        nonlocal size
        if current:
            chunks.append(Chunk(with_title(title, HEADING_SEPARATOR.join(section or ())), "\n\n".join(current)))
            current.clear()
        size = 0

    for block in _blocks(markdown):
        if block.heading != section:
            flush()
            section = block.heading
        pieces = [block.text] if block.code or len(block.text) <= target else _split_long(block.text, target)
        for piece in pieces:
            if current and size + 2 + len(piece) > target:
                flush()
            current.append(piece)
            size += len(piece) + (2 if size else 0)
    flush()
    return chunks


def embedding_input(chunk: Chunk) -> str:
    """What is embedded (and hashed) for a chunk: its heading path, then its text."""
    return f"{chunk.heading}\n\n{chunk.text}" if chunk.heading else chunk.text

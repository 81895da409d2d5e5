"""What a file or a fetched body is (by its bytes, not its name) and its text.

No I/O: `sniff` looks at bytes, `extract_text` turns them into Markdown or plain text (HTML
with trafilatura, PDF with pypdf). Both raise `UnsupportedContent` with a message for the user.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

MARKDOWN = "text/markdown"
PLAIN = "text/plain"
HTML = "text/html"
PDF = "application/pdf"
SUPPORTED = (MARKDOWN, PLAIN, HTML, PDF)
_MARKDOWN_NAMES = re.compile(r"\.(md|markdown|mdown|mkd)$", re.IGNORECASE)
_HTML_NAMES = re.compile(r"\.(html?|xhtml)$", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE | re.DOTALL)
# Control characters other than tab, line feed, form feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class UnsupportedContent(Exception):
    """The bytes are not a Markdown, text, HTML or PDF document (or cannot be read as one)."""


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    title: str | None


def sniff(data: bytes, filename: str | None = None, declared: str | None = None) -> str:
    """The media type of `data`: PDF and HTML by their first bytes, text when it decodes as
    UTF-8 without control characters (Markdown when the name says .md). The name and the
    declared type never make binary data text."""
    if data.startswith(b"%PDF-"):
        return PDF
    head = data[:4096].removeprefix(b"\xef\xbb\xbf")
    if _HTML_START.match(head):
        return HTML
    text = decode_text(data, filename)
    says_html = (declared or "").split(";")[0].strip().lower() == HTML or bool(
        filename and _HTML_NAMES.search(filename)
    )
    if says_html and "<" in text[:4096]:  # a fragment without <html>: the name or type tells
        return HTML
    if filename and _MARKDOWN_NAMES.search(filename):
        return MARKDOWN
    return MARKDOWN if (declared or "").startswith(MARKDOWN) else PLAIN


def decode_text(data: bytes, filename: str | None = None) -> str:
    what = f"{filename!r}" if filename else "the content"
    if b"\x00" in data[:65536]:
        raise UnsupportedContent(
            f"{what} is binary data, not a Markdown, text, HTML or PDF document (the file name does not decide)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedContent(
            f"{what} is not UTF-8 text, HTML or PDF; save it as UTF-8 (or as PDF) and upload it again"
        ) from None
    controls = len(_CONTROL.findall(text[:65536]))
    if controls > max(8, len(text[:65536]) // 100):
        raise UnsupportedContent(f"{what} looks like binary data (control characters), not a text document")
    return _CONTROL.sub("", text)


def extract_text(data: bytes, media_type: str, filename: str | None = None) -> Extracted:
    """The document's text: Markdown/text as it is, HTML as clean Markdown-ish text, PDF page by page."""
    if media_type == PDF:
        return _pdf_text(data, filename)
    text = decode_text(data, filename)
    if media_type == HTML:
        return _html_text(text)
    return Extracted(text=text.strip(), title=None)


def _html_text(html: str) -> Extracted:
    import trafilatura

    text = trafilatura.extract(
        html, output_format="markdown", include_comments=False, include_tables=True, favor_recall=True
    )
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None and metadata.title else None
    if not text or not text.strip():
        raise UnsupportedContent("the page has no readable text (it may need JavaScript, or be only images)")
    return Extracted(text=text.strip(), title=title)


def _pdf_text(data: bytes, filename: str | None) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    what = f"{filename!r}" if filename else "the PDF"
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnsupportedContent(f"{what} is encrypted; upload a copy without a password")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except UnsupportedContent:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnsupportedContent(f"{what} could not be read as a PDF: {exc}") from None
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise UnsupportedContent(f"{what} has no text layer (a scan?); text recognition is not done here")
    return Extracted(text=_CONTROL.sub("", text.replace("\x00", "")), title=str(title) if title else None)

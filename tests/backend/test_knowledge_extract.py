"""Sniffing by the bytes, and text from HTML and PDF."""

from __future__ import annotations

import pytest

from backend.knowledge.extract import HTML, MARKDOWN, PDF, PLAIN, UnsupportedContent, extract_text, sniff
from tests.backend.knowledge_helpers import ARTICLE, tiny_pdf


@pytest.mark.parametrize(
    ("data", "name", "declared", "expected"),
    [
        (b"%PDF-1.4 ...", "notes.md", None, PDF),
        (ARTICLE.encode(), "page.txt", None, HTML),
        (b"\xef\xbb\xbf<!DOCTYPE html><html><body>x</body></html>", None, None, HTML),
        (b"<div><p>fragment</p></div>", "fragment.html", None, HTML),
        (b"<div><p>fragment</p></div>", None, "text/html; charset=utf-8", HTML),
        (b"a < b in plain text", "maths.txt", None, PLAIN),
        (b"# Title\n\ntext", "README.md", None, MARKDOWN),
        (b"# Title\n\ntext", None, "text/markdown", MARKDOWN),
        (b"# Title\n\ntext", "notes", None, PLAIN),
    ],
)
def test_sniff(data, name, declared, expected):
    assert sniff(data, name, declared) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (bytes(range(1, 32)) * 50, "binary"),
        ("naïve".encode("latin-1"), "UTF-8"),
    ],
)
def test_binary_and_other_encodings_are_refused_whatever_the_name(data, reason):
    with pytest.raises(UnsupportedContent, match=reason):
        sniff(data, "notes.md", "text/markdown")


def test_html_loses_its_boilerplate_and_keeps_its_title():
    extracted = extract_text(ARTICLE.encode(), HTML)
    assert extracted.title == "Tuning the write-ahead log"
    assert "Busy timeouts" in extracted.text and "Home | About" not in extracted.text


def test_pdf_text_and_broken_pdfs():
    assert "Pelicans nest" in extract_text(tiny_pdf(["Pelicans nest on islands."]), PDF).text
    with pytest.raises(UnsupportedContent, match="could not be read as a PDF"):
        extract_text(b"%PDF-1.4\nnot really a pdf", PDF, "broken.pdf")

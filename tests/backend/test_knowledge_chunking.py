"""Heading-aware chunking: sections, sizes, code blocks kept whole."""

from __future__ import annotations

from backend.knowledge.chunking import TARGET_CHARS, chunk_markdown, embedding_input

SENTENCE = "The scheduler claims queued runs with a conditional update so two processes never start one. "


def test_headings_start_chunks_and_their_path_is_kept():
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun pip.\n\n### Linux\n\nUse apt.\n\n## Use\n\nStart it.\n"
    chunks = chunk_markdown(text)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide", "Intro."),
        ("Guide › Install", "Run pip."),
        ("Guide › Install › Linux", "Use apt."),
        ("Guide › Use", "Start it."),
    ]
    assert embedding_input(chunks[2]) == "Guide › Install › Linux\n\nUse apt."


def test_paragraphs_are_packed_to_about_the_target_size():
    paragraphs = [(SENTENCE * 3).strip() for _ in range(20)]  # ~280 characters each
    chunks = chunk_markdown("# Long\n\n" + "\n\n".join(paragraphs))
    assert len(chunks) > 4
    assert all(len(c.text) <= TARGET_CHARS for c in chunks)
    assert all(len(c.text) > TARGET_CHARS / 2 for c in chunks[:-1])
    assert "".join(c.text.replace("\n\n", "") for c in chunks) == "".join(paragraphs)


def test_a_long_paragraph_is_cut_at_sentence_ends():
    chunks = chunk_markdown(SENTENCE * 40)
    assert len(chunks) >= 3
    assert all(len(c.text) <= TARGET_CHARS and c.text.endswith("one.") for c in chunks)


def test_a_fenced_code_block_is_never_split_and_hides_headings():
    code = "```python\n" + "\n".join(f"# not a heading {i}\nx = {i}" for i in range(200)) + "\n```"
    text = f"# Code\n\nBefore.\n\n{code}\n\nAfter.\n\n~~~\n## also code\n~~~\n"
    chunks = chunk_markdown(text)
    assert code in [c.text for c in chunks]
    assert len(code) > 3 * TARGET_CHARS
    assert {c.heading for c in chunks} == {"Code"}
    assert any("## also code" in c.text for c in chunks)


def test_an_unclosed_fence_runs_to_the_end():
    chunks = chunk_markdown("Text.\n\n```\ncode\n# still code")
    assert chunks[-1].text.endswith("```\ncode\n# still code")
    assert chunks[-1].heading == ""


def test_plain_text_and_empty_documents():
    assert chunk_markdown("") == []
    assert chunk_markdown("\n\n  \n") == []
    assert [c.heading for c in chunk_markdown("just words\nover lines")] == [""]


def test_a_word_longer_than_a_chunk_is_cut():
    chunks = chunk_markdown("x" * 2500)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


def test_the_title_heads_every_heading_path_once():
    chunks = chunk_markdown("Intro.\n\n## Setup\n\nSteps.", title="Guide")
    assert [c.heading for c in chunks] == ["Guide", "Guide › Setup"]
    chunks = chunk_markdown("# Guide\n\nIntro.\n\n## Setup\n\nSteps.", title="guide")
    assert [c.heading for c in chunks] == ["Guide", "Guide › Setup"]

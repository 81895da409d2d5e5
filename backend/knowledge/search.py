"""Search: keyword in the database (FTS5 bm25 / tsvector ts_rank), semantic over the vector
cache, hybrid as their reciprocal rank fusion. No FastAPI here.

User text never reaches the full-text syntax as it is: it is cut into words (letters and
digits), and each word is quoted (FTS5) or joined with `or` (websearch_to_tsquery), so no input
makes a syntax error. Snippets mark matched words with « and ».
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..errors import InvalidInput
from ..models import DocumentKind, KnowledgeChunk, KnowledgeCollection, KnowledgeDocument
from . import embeddings, service, vectors
from .fusion import reciprocal_rank_fusion
from .schemas import MARK_END, MARK_START, Match, SearchHit, SearchResponse, SemanticStatus

log = logging.getLogger(__name__)
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32
SNIPPET_CHARS = 240
# How many candidates each ranking contributes to the fusion.
CANDIDATES = 50


def query_terms(query: str) -> list[str]:
    """The words of a query, without duplicates, at most MAX_TERMS (the rest is ignored)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        word = word.strip("_")
        if word:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def fts5_query(terms: Sequence[str]) -> str:
    """`"a" OR "b"`: every term a quoted string, so FTS5 operators and columns do not apply."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def websearch_query(terms: Sequence[str]) -> str:
    return " or ".join(terms)


@dataclass(slots=True)
class Candidate:
    chunk_id: int
    score: float
    snippet: str | None = None


async def keyword_ranking(
    session: AsyncSession, terms: Sequence[str], collection_ids: Sequence[int] | None, kind: str | None, limit: int
) -> list[Candidate]:
    if not terms:
        return []
    filters = ""
    params: dict[str, Any] = {"limit": limit}
    if collection_ids is not None:
        filters += f" AND d.collection_id IN ({', '.join(str(int(i)) for i in collection_ids) or 'NULL'})"
    if kind is not None:
        filters += " AND d.kind = :kind"
        params["kind"] = kind
    if session.get_bind().dialect.name == "sqlite":
        params["q"] = fts5_query(terms)
        sql = f"""
            SELECT c.id, bm25(knowledge_chunks_fts, 2.0, 1.0) AS rank,
                   snippet(knowledge_chunks_fts, 1, '{MARK_START}', '{MARK_END}', '…', 40) AS snip
            FROM knowledge_chunks_fts
            JOIN knowledge_chunks AS c ON c.id = knowledge_chunks_fts.rowid
            JOIN knowledge_documents AS d ON d.id = c.document_id
            WHERE knowledge_chunks_fts MATCH :q{filters}
            ORDER BY rank LIMIT :limit"""
        rows = (await session.execute(text(sql), params)).all()
        return [Candidate(row[0], -float(row[1]), row[2]) for row in rows]
    params["q"] = websearch_query(terms)
    sql = f"""
        WITH query AS (SELECT websearch_to_tsquery('english', :q) AS q),
        top AS (
            SELECT c.id, c.text, ts_rank(c.search_vector, query.q) AS rank
            FROM knowledge_chunks AS c JOIN knowledge_documents AS d ON d.id = c.document_id, query
            WHERE c.search_vector @@ query.q{filters}
            ORDER BY rank DESC LIMIT :limit
        )
        SELECT top.id, top.rank, ts_headline('english', top.text, query.q,
            'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" … "')
        FROM top, query ORDER BY top.rank DESC"""
    rows = (await session.execute(text(sql), params)).all()
    return [Candidate(row[0], float(row[1]), row[2]) for row in rows]


# -- the semantic side (embeddings.py, vectors.py) -----------------------------------------


def semantic_status(settings: Settings) -> dict[str, Any]:
    return dict(embeddings.embedding_status(settings))


async def semantic_ranking(
    session: AsyncSession,
    settings: Settings,
    query: str,
    collection_ids: Sequence[int] | None,
    kind: str | None,
    limit: int,
) -> tuple[list[Candidate], SemanticStatus]:
    """Chunks by cosine similarity, or none with the reason when semantic search cannot run."""
    embedder = embeddings.get_embedder(settings)
    if embedder is None:
        status = embeddings.embedding_status(settings)
        return [], SemanticStatus(state="off", message=status.get("message") or "Semantic search is off.")
    try:
        vector = await asyncio.to_thread(embedder.embed_query, query)
    except embeddings.EmbeddingUnavailable as exc:
        return [], SemanticStatus(state="unavailable", message=str(exc))
    cache = vectors.cache_for(embedder.model_name)
    await cache.refresh(session)
    wanted = set(collection_ids) if collection_ids is not None else None
    found = cache.search(vector, limit * 4 if kind else limit, wanted)
    if kind is not None and found:
        kinds = dict(
            (
                await session.execute(
                    select(KnowledgeChunk.id, KnowledgeDocument.kind)
                    .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                    .where(KnowledgeChunk.id.in_([chunk_id for chunk_id, _ in found]))
                )
            ).all()
        )
        found = [(chunk_id, score) for chunk_id, score in found if kinds.get(chunk_id) == kind][:limit]
    return [Candidate(chunk_id, float(score)) for chunk_id, score in found], SemanticStatus(
        state="ready", message=embedder.message
    )


def mark_terms(passage: str, terms: Sequence[str]) -> str:
    """A snippet of `passage` around the first query word found, the words marked."""
    if not terms:
        return passage[:SNIPPET_CHARS]
    pattern = re.compile(r"\b(" + "|".join(re.escape(term) for term in terms) + r")\w*", re.IGNORECASE)
    first = pattern.search(passage)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    piece = passage[start : start + SNIPPET_CHARS]
    piece = ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(passage) else "")
    return pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}", piece)


async def search(
    session: AsyncSession,
    settings: Settings,
    query: str,
    *,
    collection_ids: Sequence[int] | None = None,
    project_id: int | None = None,
    kind: str | None = None,
    mode: str = "hybrid",
    limit: int = 10,
) -> SearchResponse:
    if not query.strip():
        raise InvalidInput("q: give some words to search for")
    if collection_ids:
        for collection_id in dict.fromkeys(collection_ids):
            await service.get_collection(session, collection_id)
    if project_id is not None:
        bound = await service.project_collection_ids(session, project_id)
        collection_ids = [i for i in collection_ids if i in bound] if collection_ids else bound
    terms = query_terms(query)
    keyword: list[Candidate] = []
    semantic: list[Candidate] = []
    status = SemanticStatus(state="off", message="Keyword search only, as asked.")
    if mode in ("hybrid", "semantic"):
        semantic, status = await semantic_ranking(session, settings, query, collection_ids, kind, CANDIDATES)
    if mode in ("hybrid", "keyword") or (mode == "semantic" and status.state != "ready"):
        keyword = await keyword_ranking(session, terms, collection_ids, kind, CANDIDATES)
    if status.state == "ready" and mode in ("hybrid", "semantic"):
        mode_used = mode
    else:
        mode_used = "keyword"
    if mode_used == "semantic":
        keyword = []
    ranked = _fuse(keyword, semantic, limit) if mode_used == "hybrid" else _single(keyword or semantic, limit)
    hits = await _hits(session, ranked, {c.chunk_id: c for c in keyword}, {c.chunk_id for c in semantic}, terms)
    return SearchResponse(query=query, mode_used=mode_used, semantic=status, hits=hits)  # type: ignore[arg-type]  # mode_used is one of the SearchMode values


def _single(candidates: list[Candidate], limit: int) -> list[tuple[int, float]]:
    return [(c.chunk_id, c.score) for c in candidates[:limit]]


def _fuse(keyword: list[Candidate], semantic: list[Candidate], limit: int) -> list[tuple[int, float]]:
    rankings = [[c.chunk_id for c in keyword], [c.chunk_id for c in semantic]]
    return reciprocal_rank_fusion(rankings)[:limit]


async def _hits(
    session: AsyncSession,
    ranked: list[tuple[int, float]],
    keyword: dict[int, Candidate],
    semantic: set[int],
    terms: Sequence[str],
) -> list[SearchHit]:
    if not ranked:
        return []
    rows = {
        row[0].id: row
        for row in (
            await session.execute(
                select(KnowledgeChunk, KnowledgeDocument, KnowledgeCollection.name)
                .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                .join(KnowledgeCollection, KnowledgeCollection.id == KnowledgeDocument.collection_id)
                .where(KnowledgeChunk.id.in_([chunk_id for chunk_id, _ in ranked]))
            )
        ).all()
    }
    hits = []
    for chunk_id, score in ranked:
        row = rows.get(chunk_id)
        if row is None:  # deleted since the vector cache was loaded
            continue
        chunk, document, collection_name = row
        found_by_keyword = chunk_id in keyword
        snippet = keyword[chunk_id].snippet if found_by_keyword else None
        hits.append(
            SearchHit(
                document_id=document.id,
                document_title=document.title,
                collection_id=document.collection_id,
                collection_name=collection_name,
                kind=DocumentKind(document.kind),
                source_uri=document.source_uri,
                chunk_id=chunk.id,
                heading=chunk.heading,
                snippet=snippet or mark_terms(chunk.text, terms),
                score=round(score, 6),
                match="both"
                if found_by_keyword and chunk_id in semantic
                else "keyword"
                if found_by_keyword
                else "semantic",
            )
        )
    return hits


def _match(by_keyword: bool, by_semantic: bool) -> Match:
    if by_keyword and by_semantic:
        return "both"
    return "keyword" if by_keyword else "semantic"

"""Search: keyword in the database (FTS5 bm25 / tsvector ts_rank), semantic over the vector
cache, hybrid as their reciprocal rank fusion. No FastAPI here.

User text never reaches the full-text syntax as it is: it is cut into words (letters and
digits), each word quoted and joined with AND, then OR for the fallback (FTS5); on PostgreSQL
the text goes through `to_tsvector` as the documents did (so `VE-107` is parsed alike on both
sides) and its lexemes are joined with `&`, then `|`, as quoted tsquery operands. No input makes
a syntax error. Snippets mark matched words with « and »; they are made for the returned hits
only. In hybrid mode the semantic side (embedding the query, the matrix product) runs in a
thread while the keyword query runs."""

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
# How many candidates the semantic side contributes to the fusion; the keyword side gives as many
# as the hits asked for (at most this): its first places are precise, its tail (chunks that share
# a word or two with the question) is noise that would outvote the semantic side's first place.
CANDIDATES = 50


# English stop words (PostgreSQL's english configuration drops the same ones): on SQLite they
# are left out of a query that has other words, so "the" does not match every chunk.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)


def query_terms(query: str) -> list[str]:
    """The words of a query, without duplicates and stop words (unless it has nothing else), at
    most MAX_TERMS (the rest is ignored)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        word = word.strip("_")
        if word:
            seen.setdefault(word, None)
    words = list(seen)
    content = [word for word in words if word not in STOP_WORDS]
    return (content or words)[:MAX_TERMS]


def fts5_query(terms: Sequence[str], *, every: bool = False) -> str:
    """`"a" OR "b"` (or `"a" AND "b"` with `every`): every term a quoted string, so FTS5
    operators and columns do not apply."""
    return (" AND " if every else " OR ").join('"' + term.replace('"', '""') + '"' for term in terms)


def websearch_query(terms: Sequence[str]) -> str:
    """The terms for PostgreSQL's `websearch_to_tsquery` (all of them, as words, no operators)."""
    return " ".join(re.sub(r"\W", " ", term) for term in terms)


# The query's lexemes, parsed as the documents were, as quoted operands (never re-parsed): inside
# an operand a quote is doubled and a backslash escaped. PostgreSQL's parser reads the 107 of
# "VE-107" as the signed number -107: a number is looked up with and without its sign. The
# lexemes are joined with `&` (every word) or `|` (any word); a number and its signed twin are
# one alternative either way.
def _quoted(sql: str) -> str:
    return f"chr(39) || replace(replace({sql}, chr(92), chr(92) || chr(92)), chr(39), chr(39) || chr(39)) || chr(39)"


_NUMBER = "ltrim(lexeme, '-')"
_OPERANDS = f"""SELECT CASE WHEN lexeme ~ '^-?[0-9]+$'
            THEN '(' || {_quoted(_NUMBER)} || ' | ' || {_quoted("'-' || " + _NUMBER)} || ')'
            ELSE {_quoted("lexeme")} END AS operand
        FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :q))) AS lexemes"""


def _postgres_query(every: bool) -> str:
    join = "' & '" if every else "' | '"
    return f"(SELECT coalesce(string_agg(operand, {join}), '')::tsquery FROM ({_OPERANDS}) AS operands)"


@dataclass(slots=True)
class Candidate:
    chunk_id: int
    score: float


async def keyword_ranking(
    session: AsyncSession,
    query: str,
    terms: Sequence[str],
    collection_ids: Sequence[int] | None,
    kind: str | None,
    limit: int,
) -> list[Candidate]:
    """The best `limit` chunks for the words: first those that have every word (as
    websearch_to_tsquery or a plain FTS5 query would match), then, only when these are fewer
    than `limit`, those that have some of them. Within each tier by bm25 / ts_rank; the second
    tier's scores are put below the first's."""
    if not terms:
        return []
    filters = ""
    params: dict[str, Any] = {"limit": limit}
    if collection_ids is not None:
        filters += f" AND d.collection_id IN ({_in_list(collection_ids) or 'NULL'})"
    if kind is not None:
        filters += " AND d.kind = :kind"
        params["kind"] = kind
    sqlite = session.get_bind().dialect.name == "sqlite"

    if sqlite:
        queries = fts5_query(terms, every=True), fts5_query(terms)
    else:  # the tsqueries as text first: a constant lets the planner use the GIN index
        sql = f"SELECT {_postgres_query(True)}::text, {_postgres_query(False)}::text"
        queries = tuple((await session.execute(text(sql), {"q": query})).one())
        if not queries[0]:
            return []

    async def tier(every: bool) -> list[Candidate]:
        match = queries[0] if every else queries[1]
        if sqlite:
            return await _ranking(session, (_FTS5_TOP, _FTS5_FILTERED), match, filters, params, limit)
        bound = "" if every else f" LIMIT {POSTGRES_ANY_ROWS}"
        sqls = (_POSTGRES_TOP.format(bound=bound), _POSTGRES_FILTERED.format(bound=bound, filters="{filters}"))
        return await _ranking(session, sqls, match, filters, params, limit)

    found = await tier(every=True)
    if len(found) >= limit or len(terms) < 2:
        return found
    seen = {c.chunk_id for c in found}
    floor = min((c.score for c in found), default=0.0)
    more = [c for c in await tier(every=False) if c.chunk_id not in seen]
    if more:
        # Below every first-tier score, in their own order.
        shift = floor - max(c.score for c in more) - 1e-6 if found else 0.0
        found += [Candidate(c.chunk_id, c.score + min(shift, 0.0)) for c in more[: limit - len(found)]]
    return found


# PostgreSQL: ts_rank over the matching rows (negated, to sort as bm25 does). A query of every
# word matches few rows; one of any word can match most of the table, so it ranks at most
# POSTGRES_ANY_ROWS of them (the first the GIN index gives): the second tier is a fallback, not
# an exact ranking.
POSTGRES_ANY_ROWS = 300
_POSTGRES_TOP = """SELECT id, -ts_rank(search_vector, CAST(:q AS tsquery)) AS rank FROM (
        SELECT id, search_vector FROM knowledge_chunks WHERE search_vector @@ CAST(:q AS tsquery){bound}
    ) AS matched ORDER BY rank, id LIMIT :limit"""
_POSTGRES_FILTERED = """SELECT id, -ts_rank(search_vector, CAST(:q AS tsquery)) AS rank FROM (
        SELECT c.id, c.search_vector FROM knowledge_chunks AS c JOIN knowledge_documents AS d ON d.id = c.document_id
        WHERE c.search_vector @@ CAST(:q AS tsquery){filters}{bound}
    ) AS matched ORDER BY rank, id LIMIT :limit"""


# The best chunks by bm25 (ts_rank) from the full-text index alone (no join per match), then
# the filters on those. When the filters keep fewer than `limit` of the first `limit * OVERFETCH`, the
# filtered query over every match decides (exact either way: the filtered rows of a global
# ranking keep their order).
OVERFETCH = 10
_FTS5_TOP = """SELECT rowid, bm25(knowledge_chunks_fts, 2.0, 1.0) AS rank FROM knowledge_chunks_fts
    WHERE knowledge_chunks_fts MATCH :q ORDER BY rank LIMIT :limit"""
_FTS5_FILTERED = """SELECT c.id, bm25(knowledge_chunks_fts, 2.0, 1.0) AS rank FROM knowledge_chunks_fts
    JOIN knowledge_chunks AS c ON c.id = knowledge_chunks_fts.rowid
    JOIN knowledge_documents AS d ON d.id = c.document_id
    WHERE knowledge_chunks_fts MATCH :q{filters} ORDER BY rank LIMIT :limit"""
# The filters on a few candidates: their documents by primary key, then those documents'
# filters (a join lets the planner scan the chunks by document instead).
_CHUNK_DOCUMENTS = "SELECT id, document_id FROM knowledge_chunks WHERE id IN ({ids})"
_KEEP_DOCUMENTS = "SELECT d.id FROM knowledge_documents AS d WHERE d.id IN ({ids}){filters}"
# Snippets, for the hits returned only (never for every candidate).
_FTS5_SNIPPETS = f"""SELECT rowid, snippet(knowledge_chunks_fts, 1, '{MARK_START}', '{MARK_END}', '…', 40)
    FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH :q AND rowid IN ({{ids}})"""
_POSTGRES_SNIPPETS = """WITH query AS (SELECT {query} AS q)
    SELECT c.id, ts_headline('english', c.text, query.q, 'StartSel={start}, StopSel={end}, MaxWords=40, MinWords=15,
        MaxFragments=2, FragmentDelimiter=" … "')
    FROM knowledge_chunks AS c, query WHERE c.id IN ({ids}) AND c.search_vector @@ query.q"""


def _in_list(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


async def _ranking(
    session: AsyncSession, sqls: tuple[str, str], match: str, filters: str, params: dict[str, Any], limit: int
) -> list[Candidate]:
    top_sql, filtered_sql = sqls
    params = {**params, "q": match}
    fetch = limit * OVERFETCH if filters else limit
    top = (await session.execute(text(top_sql), {**params, "limit": fetch})).all()
    ranked = [(int(row[0]), -float(row[1])) for row in top]
    if filters and ranked:
        sql = _CHUNK_DOCUMENTS.format(ids=_in_list([chunk_id for chunk_id, _ in ranked]))
        documents: dict[int, int] = dict((await session.execute(text(sql))).all())
        sql = _KEEP_DOCUMENTS.format(ids=_in_list(sorted(set(documents.values()))), filters=filters)
        kept = {row[0] for row in await session.execute(text(sql), params)}
        ranked = [(chunk_id, score) for chunk_id, score in ranked if documents.get(chunk_id) in kept]
        if len(ranked) < limit and len(top) == fetch:
            rows = await session.execute(text(filtered_sql.format(filters=filters)), {**params, "limit": limit})
            ranked = [(int(row[0]), -float(row[1])) for row in rows]
    return [Candidate(chunk_id, score) for chunk_id, score in ranked[:limit]]


async def snippets(session: AsyncSession, query: str, terms: Sequence[str], chunk_ids: Sequence[int]) -> dict[int, str]:
    """The database's snippets (any query word marked) for the chunks that match a word."""
    if not terms or not chunk_ids:
        return {}
    ids = _in_list(chunk_ids)
    if session.get_bind().dialect.name == "sqlite":
        rows = await session.execute(text(_FTS5_SNIPPETS.format(ids=ids)), {"q": fts5_query(terms)})
    else:
        sql = _POSTGRES_SNIPPETS.format(query=_postgres_query(False), start=MARK_START, end=MARK_END, ids=ids)
        rows = await session.execute(text(sql), {"q": query})
    return {int(row[0]): row[1] for row in rows}


# -- the semantic side (embeddings.py, vectors.py) -----------------------------------------


def semantic_status(settings: Settings) -> dict[str, Any]:
    return dict(embeddings.embedding_status(settings))


async def _start_semantic(
    session: AsyncSession,
    settings: Settings,
    query: str,
    collection_ids: Sequence[int] | None,
    kind: str | None,
    limit: int,
) -> tuple[asyncio.Future[list[tuple[int, float]]] | None, SemanticStatus]:
    """Start embedding the query and searching the vector cache in a thread, so that the keyword
    query runs meanwhile; or say why semantic search cannot run. The cache's check uses the
    session first (on the first search, after the model loaded: an unusable model loads no vectors)."""
    embedder = embeddings.get_embedder(settings)
    if embedder is None:
        status = embeddings.embedding_status(settings)
        return None, SemanticStatus(state="off", message=status.get("message") or "Semantic search is off.")
    cache = vectors.cache_for(embedder.model_name)
    embedded = asyncio.ensure_future(asyncio.to_thread(embedder.embed_query, query))
    try:
        if not cache.loaded:
            await asyncio.shield(embedded)
        await cache.refresh(session)
    except embeddings.EmbeddingUnavailable as exc:
        return None, SemanticStatus(state="unavailable", message=str(exc))
    except BaseException:
        await asyncio.gather(embedded, return_exceptions=True)
        raise
    wanted = set(collection_ids) if collection_ids is not None else None

    async def nearest() -> list[tuple[int, float]]:
        return await asyncio.to_thread(cache.search, await embedded, limit * 4 if kind else limit, wanted)

    return asyncio.ensure_future(nearest()), SemanticStatus(state="ready", message=embedder.message)


async def _finish_semantic(
    session: AsyncSession,
    pending: asyncio.Future[list[tuple[int, float]]] | None,
    status: SemanticStatus,
    kind: str | None,
    limit: int,
) -> tuple[list[Candidate], SemanticStatus]:
    if pending is None:
        return [], status
    try:
        found = await pending
    except embeddings.EmbeddingUnavailable as exc:
        return [], SemanticStatus(state="unavailable", message=str(exc))
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
    return [Candidate(chunk_id, float(score)) for chunk_id, score in found], status


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
    pending = None
    if mode in ("hybrid", "semantic"):
        pending, status = await _start_semantic(session, settings, query, collection_ids, kind, CANDIDATES)
    try:
        if mode in ("hybrid", "keyword"):
            keyword = await keyword_ranking(session, query, terms, collection_ids, kind, min(limit, CANDIDATES))
    finally:
        semantic, status = await _finish_semantic(session, pending, status, kind, CANDIDATES)
    if mode == "semantic" and status.state != "ready":
        keyword = await keyword_ranking(session, query, terms, collection_ids, kind, min(limit, CANDIDATES))
    if status.state == "ready" and mode in ("hybrid", "semantic"):
        mode_used = mode
    else:
        mode_used = "keyword"
    if mode_used == "semantic":
        keyword = []
    ranked = _fuse(keyword, semantic, limit) if mode_used == "hybrid" else _single(keyword or semantic, limit)
    hits = await _hits(session, ranked, {c.chunk_id for c in keyword}, {c.chunk_id for c in semantic}, query, terms)
    return SearchResponse(query=query, mode_used=mode_used, semantic=status, hits=hits)  # type: ignore[arg-type]  # mode_used is one of the SearchMode values


def _single(candidates: list[Candidate], limit: int) -> list[tuple[int, float]]:
    return [(c.chunk_id, c.score) for c in candidates[:limit]]


def _fuse(keyword: list[Candidate], semantic: list[Candidate], limit: int) -> list[tuple[int, float]]:
    rankings = [[c.chunk_id for c in keyword], [c.chunk_id for c in semantic]]
    return reciprocal_rank_fusion(rankings)[:limit]


async def _hits(
    session: AsyncSession,
    ranked: list[tuple[int, float]],
    keyword: set[int],
    semantic: set[int],
    query: str,
    terms: Sequence[str],
) -> list[SearchHit]:
    if not ranked:
        return []
    chunk_ids = [chunk_id for chunk_id, _ in ranked]
    marked = await snippets(session, query, terms, chunk_ids)
    rows = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    KnowledgeChunk.id,
                    KnowledgeChunk.heading,
                    KnowledgeChunk.text,
                    KnowledgeDocument.id.label("document_id"),
                    KnowledgeDocument.title,
                    KnowledgeDocument.collection_id,
                    KnowledgeDocument.kind,
                    KnowledgeDocument.source_uri,
                    KnowledgeCollection.name,
                )
                .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                .join(KnowledgeCollection, KnowledgeCollection.id == KnowledgeDocument.collection_id)
                .where(KnowledgeChunk.id.in_(chunk_ids))
            )
        ).all()
    }
    hits = []
    for chunk_id, score in ranked:
        row = rows.get(chunk_id)
        if row is None:  # deleted since the vector cache was loaded
            continue
        snippet = marked.get(chunk_id)
        if snippet and MARK_START not in snippet:  # the words matched the heading, not the text
            snippet = None
        hits.append(
            SearchHit(
                document_id=row.document_id,
                document_title=row.title,
                collection_id=row.collection_id,
                collection_name=row.name,
                kind=DocumentKind(row.kind),
                source_uri=row.source_uri,
                chunk_id=row.id,
                heading=row.heading,
                snippet=snippet or mark_terms(row.text, terms),
                score=round(score, 6),
                match=_match(chunk_id in keyword, chunk_id in semantic),
            )
        )
    return hits


def _match(by_keyword: bool, by_semantic: bool) -> Match:
    if by_keyword and by_semantic:
        return "both"
    return "keyword" if by_keyword else "semantic"

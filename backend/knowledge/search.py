"""Search: keyword in the database (FTS5 bm25 / tsvector ts_rank), semantic over the vector
cache, hybrid as their reciprocal rank fusion. No FastAPI here.

User text never reaches the full-text syntax as it is: it is cut into words (letters and
digits), each word quoted and joined with AND, then OR for the fallback (FTS5); on PostgreSQL
the text goes through `to_tsvector` as the documents did (so `VE-107` is parsed alike on both
sides) and its lexemes are joined with `&`, then `|`, as quoted tsquery operands. No input makes
a syntax error. Snippets mark matched words with « and »; they are made for the returned hits
only.

What a search costs: on PostgreSQL a keyword search is one statement (both tiers, the hit rows and
their snippets); a hybrid one adds the vector cache's check before and, after the fusion, the rows
of the semantic side's hits. The semantic side starts first: one thread embeds the query and,
once the cache is checked, does the matrix product, while the keyword query runs. The
collections asked for are looked up only when none of the hits comes from them."""

from __future__ import annotations

import asyncio
import concurrent.futures
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


@dataclass(slots=True)
class Candidate:
    chunk_id: int
    score: float
    row: Any = None  # the hit's columns and snippet, when the ranking read them (PostgreSQL)


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
    if session.get_bind().dialect.name == "sqlite":
        return await _fts5_ranking(session, terms, collection_ids, kind, limit)
    return await _postgres_ranking(session, query, collection_ids, kind, limit)


def _tiers(found: list[Candidate], more: list[Candidate], limit: int) -> list[Candidate]:
    """The first tier, then the second's chunks not in it, scored below every first-tier score
    in their own order, `limit` in all."""
    seen = {c.chunk_id for c in found}
    more = [c for c in more if c.chunk_id not in seen]
    if not more:
        return found[:limit]
    floor = min((c.score for c in found), default=0.0)
    shift = floor - max(c.score for c in more) - 1e-6 if found else 0.0
    return [*found, *(Candidate(c.chunk_id, c.score + min(shift, 0.0), c.row) for c in more)][:limit]


async def _fts5_ranking(
    session: AsyncSession, terms: Sequence[str], collection_ids: Sequence[int] | None, kind: str | None, limit: int
) -> list[Candidate]:
    filters = ""
    params: dict[str, Any] = {"limit": limit}
    if collection_ids is not None:
        filters += f" AND d.collection_id IN ({_in_list(collection_ids) or 'NULL'})"
    if kind is not None:
        filters += " AND d.kind = :kind"
        params["kind"] = kind
    sqls = (_FTS5_TOP, _FTS5_FILTERED)
    found = await _ranking(session, sqls, fts5_query(terms, every=True), filters, params, limit)
    if len(found) >= limit or len(terms) < 2:
        return found
    return _tiers(found, await _ranking(session, sqls, fts5_query(terms), filters, params, limit), limit)


async def _postgres_ranking(
    session: AsyncSession, query: str, collection_ids: Sequence[int] | None, kind: str | None, limit: int
) -> list[Candidate]:
    """Both tiers in one statement (_POSTGRES_KEYWORD)."""
    filters = ""
    params: dict[str, Any] = {"q": query, "limit": limit}
    if collection_ids is not None:
        filters += " AND d.collection_id = ANY(:collections)"
        params["collections"] = [int(i) for i in collection_ids]
    if kind is not None:
        filters += " AND d.kind = :kind"
        params["kind"] = kind
    sql = _POSTGRES_KEYWORD.format(
        operands=_OPERANDS,
        documents=_POSTGRES_DOCUMENT if filters else "",
        filters=filters,
        any_rows=POSTGRES_ANY_ROWS,
        hit_columns=_POSTGRES_HIT_COLUMNS,
    )
    rows = (await session.execute(text(sql), params)).all()
    found = [Candidate(row.id, float(row.rank), row) for row in rows if row.tier == 0]
    return _tiers(found, [Candidate(row.id, float(row.rank), row) for row in rows if row.tier == 1], limit)


# PostgreSQL, in one round trip: the query's lexemes as two tsqueries (every word, any word), the
# chunks with every word ranked by ts_rank, and only when these are fewer than `limit` (and the
# query has more than one lexeme) those with some of the words but not all. A query of every word
# matches few rows; one of any word can match most of the table, so that tier ranks at most
# POSTGRES_ANY_ROWS of them (the first the GIN index gives that pass the filters): it is a
# fallback, not an exact ranking. The tsqueries reach the index as parameters (InitPlans), so the
# GIN index is used whatever the planner knows of the table. The filters read each matched chunk's
# document by primary key (a lateral subquery the planner cannot turn around: a join lets it scan
# the chunks by document, a table's worth, when it misjudges how many documents a collection has).
POSTGRES_ANY_ROWS = 300
_POSTGRES_DOCUMENT = """
        CROSS JOIN LATERAL (
            SELECT d.collection_id, d.kind FROM knowledge_documents AS d WHERE d.id = c.document_id LIMIT 1
        ) AS d"""
_POSTGRES_KEYWORD = """WITH words AS MATERIALIZED (
        SELECT string_agg(operand, ' & ')::tsquery AS all_of, string_agg(operand, ' | ')::tsquery AS any_of
        FROM ({operands}) AS operands
    ), every_word AS MATERIALIZED (
        SELECT c.id, ts_rank(c.search_vector, (SELECT all_of FROM words)) AS rank
        FROM knowledge_chunks AS c{documents}
        WHERE c.search_vector @@ (SELECT all_of FROM words){filters}
        ORDER BY rank DESC, c.id LIMIT :limit
    ), some_word AS (
        SELECT matched.id, ts_rank(matched.search_vector, (SELECT any_of FROM words)) AS rank FROM (
            SELECT c.id, c.search_vector FROM knowledge_chunks AS c{documents}
            WHERE (SELECT count(*) FROM every_word) < :limit AND (SELECT all_of <> any_of FROM words)
                AND c.search_vector @@ (SELECT any_of FROM words) AND c.id NOT IN (SELECT id FROM every_word){filters}
            LIMIT {any_rows}
        ) AS matched ORDER BY rank DESC, matched.id LIMIT :limit
    ), ranked AS MATERIALIZED (
        SELECT id, rank, 0 AS tier FROM every_word UNION ALL SELECT id, rank, 1 FROM some_word
        ORDER BY tier, rank DESC, id LIMIT :limit
    )
    SELECT ranked.rank, ranked.tier, {hit_columns}
    FROM ranked
    JOIN knowledge_chunks AS c ON c.id = ranked.id
    JOIN knowledge_documents AS d ON d.id = c.document_id
    JOIN knowledge_collections AS k ON k.id = d.collection_id
    ORDER BY ranked.tier, ranked.rank DESC, ranked.id"""


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
# PostgreSQL: a hit's columns and snippet (ts_headline, for the chunks that match a word), read
# with the keyword ranking for its candidates and for the other hits (the semantic side's) after the
# fusion; the tsquery of any word is made once per statement.
_POSTGRES_HIT_COLUMNS = f"""c.id, c.heading, c.text, d.id AS document_id, d.title, d.collection_id, d.kind,
        d.source_uri, k.name, CASE WHEN c.search_vector @@ (SELECT any_of FROM words) THEN ts_headline('english',
            c.text, (SELECT any_of FROM words), 'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=40,
            MinWords=15, MaxFragments=2, FragmentDelimiter=" … "') END AS snippet"""
_POSTGRES_HITS = f"""WITH words AS MATERIALIZED (
        SELECT string_agg(operand, ' | ')::tsquery AS any_of FROM ({_OPERANDS}) AS operands
    )
    SELECT {_POSTGRES_HIT_COLUMNS}
    FROM knowledge_chunks AS c
    JOIN knowledge_documents AS d ON d.id = c.document_id
    JOIN knowledge_collections AS k ON k.id = d.collection_id
    WHERE c.id = ANY(:ids)"""


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


async def fts5_snippets(session: AsyncSession, terms: Sequence[str], chunk_ids: Sequence[int]) -> dict[int, str]:
    """FTS5's snippets (any query word marked) for the chunks that match a word."""
    if not terms or not chunk_ids:
        return {}
    rows = await session.execute(text(_FTS5_SNIPPETS.format(ids=_in_list(chunk_ids))), {"q": fts5_query(terms)})
    return {int(row[0]): row[1] for row in rows}


# -- the semantic side (embeddings.py, vectors.py) -----------------------------------------


def semantic_status(settings: Settings) -> dict[str, Any]:
    return dict(embeddings.embedding_status(settings))


class _SemanticSide:
    """Embedding the query and the matrix product, one after the other in one thread, while the
    keyword query runs. The thread embeds at once, then waits for `start` (the vector cache checked
    against the database, the filters known) and searches; `cancel` lets it end without searching."""

    def __init__(self, embedder: embeddings.Embedder, cache: vectors.VectorCache, query: str) -> None:
        self.cache = cache
        self._plan: concurrent.futures.Future[tuple[int, set[int] | None] | None] = concurrent.futures.Future()
        self.found = asyncio.ensure_future(asyncio.to_thread(self._run, embedder, query))

    def _run(self, embedder: embeddings.Embedder, query: str) -> list[tuple[int, float]]:
        vector = embedder.embed_query(query)
        plan = self._plan.result()
        return [] if plan is None else self.cache.search(vector, *plan)

    def start(self, k: int, collection_ids: Sequence[int] | None) -> None:
        self._plan.set_result((k, set(collection_ids) if collection_ids is not None else None))

    def cancel(self) -> None:
        if not self._plan.done():
            self._plan.set_result(None)


async def _begin_semantic(settings: Settings, query: str) -> tuple[_SemanticSide | None, SemanticStatus]:
    """Start embedding the query, or say why semantic search cannot run. A model not loaded yet is
    loaded first (in a thread), so that an unusable model loads no vectors."""
    embedder = embeddings.get_embedder(settings)
    if embedder is None:
        status = embeddings.embedding_status(settings)
        return None, SemanticStatus(state="off", message=status.get("message") or "Semantic search is off.")
    if embedder.state != "ready":
        try:
            await asyncio.to_thread(embedder.load)
        except embeddings.EmbeddingUnavailable as exc:
            return None, SemanticStatus(state="unavailable", message=str(exc))
    side = _SemanticSide(embedder, vectors.cache_for(embedder.model_name), query)
    return side, SemanticStatus(state="ready", message=embedder.message)


async def _finish_semantic(
    session: AsyncSession, side: _SemanticSide | None, status: SemanticStatus, kind: str | None, limit: int
) -> tuple[list[Candidate], SemanticStatus]:
    if side is None:
        return [], status
    side.cancel()  # unless it was started
    try:
        found = await side.found
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
    terms = query_terms(query)
    keyword: list[Candidate] = []
    semantic: list[Candidate] = []
    status = SemanticStatus(state="off", message="Keyword search only, as asked.")
    side = None
    if mode in ("hybrid", "semantic"):  # first: embedding the query is the longest part of a search
        side, status = await _begin_semantic(settings, query)
    wanted = collection_ids
    try:
        if project_id is not None:
            if collection_ids:
                await service.check_collections(session, collection_ids)
            bound = await service.project_collection_ids(session, project_id)
            wanted = [i for i in collection_ids if i in bound] if collection_ids else bound
        if side is not None:
            await side.cache.refresh(session, count_later=True)
            side.start(CANDIDATES * 4 if kind else CANDIDATES, wanted)
        if mode in ("hybrid", "keyword"):
            keyword = await keyword_ranking(session, query, terms, wanted, kind, min(limit, CANDIDATES))
    finally:
        semantic, status = await _finish_semantic(session, side, status, kind, CANDIDATES)
    if mode == "semantic" and status.state != "ready":
        keyword = await keyword_ranking(session, query, terms, wanted, kind, min(limit, CANDIDATES))
    if status.state == "ready" and mode in ("hybrid", "semantic"):
        mode_used = mode
    else:
        mode_used = "keyword"
    if mode_used == "semantic":
        keyword = []
    ranked = _fuse(keyword, semantic, limit) if mode_used == "hybrid" else _single(keyword or semantic, limit)
    hits = await _hits(session, ranked, keyword, {c.chunk_id for c in semantic}, query, terms)
    if collection_ids and project_id is None:
        # The collections asked for exist (else 404); those that gave a hit need no look-up.
        found = {hit.collection_id for hit in hits}
        await service.check_collections(session, [i for i in collection_ids if i not in found])
    return SearchResponse(query=query, mode_used=mode_used, semantic=status, hits=hits)  # type: ignore[arg-type]  # mode_used is one of the SearchMode values


def _single(candidates: list[Candidate], limit: int) -> list[tuple[int, float]]:
    return [(c.chunk_id, c.score) for c in candidates[:limit]]


def _fuse(keyword: list[Candidate], semantic: list[Candidate], limit: int) -> list[tuple[int, float]]:
    rankings = [[c.chunk_id for c in keyword], [c.chunk_id for c in semantic]]
    return reciprocal_rank_fusion(rankings)[:limit]


_HIT_ROWS = (
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
)


async def _hits(
    session: AsyncSession,
    ranked: list[tuple[int, float]],
    keyword: list[Candidate],
    semantic: set[int],
    query: str,
    terms: Sequence[str],
) -> list[SearchHit]:
    if not ranked:
        return []
    chunk_ids = [chunk_id for chunk_id, _ in ranked]
    rows: dict[int, Any] = {c.chunk_id: c.row for c in keyword if c.row is not None}
    if session.get_bind().dialect.name == "sqlite":
        rows.update((row.id, row) for row in await session.execute(_HIT_ROWS.where(KnowledgeChunk.id.in_(chunk_ids))))
        marked = await fts5_snippets(session, terms, chunk_ids)
    else:
        missing = [chunk_id for chunk_id in chunk_ids if chunk_id not in rows]
        if missing:
            rows.update(
                (row.id, row) for row in await session.execute(text(_POSTGRES_HITS), {"q": query, "ids": missing})
            )
        marked = {chunk_id: rows[chunk_id].snippet for chunk_id in chunk_ids if chunk_id in rows}
    by_keyword = {c.chunk_id for c in keyword}
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
                match=_match(chunk_id in by_keyword, chunk_id in semantic),
            )
        )
    return hits


def _match(by_keyword: bool, by_semantic: bool) -> Match:
    if by_keyword and by_semantic:
        return "both"
    return "keyword" if by_keyword else "semantic"

"""Knowledge: ingestion throughput, search latency at 100,000 chunks, the vector cache's memory.

- Ingest: notes through the service and the ingestion worker (chunking, the keyword index's
  triggers, embeddings), on 10,000 chunks: documents/s with embeddings off, chunks/s with them.
- Search: 100,000 chunks written straight into the tables (not through the pipeline: the point is
  the search, and the pipeline would take an hour of embedding on this machine), with random unit
  vectors for the semantic side; then `search()` in keyword and hybrid mode (hybrid includes
  embedding the query with the real model), and the bare full-text query (FTS5 MATCH + bm25 /
  tsvector @@ + ts_rank, top 10) in the same run for comparison.
- The embedding model: KANBAN_KNOWLEDGE_MODEL_PATH if set, else the packaged all-MiniLM-L6-v2
  of the test extra (tests/fixtures/embedding_model.py), as nothing can be downloaded here.

SQLite always; PostgreSQL too when KANBAN_BENCH_POSTGRES_URL is set (a database the bench may
fill: it works in a schema of its own and drops it). KANBAN_BENCH_KNOWLEDGE=search runs the search
part alone (the ingestion takes most of the time).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

from backend.config import Settings
from backend.db import Database
from backend.knowledge import search as knowledge_search
from backend.knowledge import service
from backend.knowledge.embeddings import get_embedder, to_blob
from backend.knowledge.ingestion import IngestionWorker
from backend.knowledge.schemas import CollectionCreate, NoteCreate
from backend.knowledge.vectors import cache_for
from backend.migrations_runner import upgrade
from backend.models import KnowledgeChunk, KnowledgeCollection, KnowledgeDocument

from .common import REPO, Row, percentile, rss_mb

SECTION = "knowledge"
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "do", "gra", "lin", "mor", "sel", "tu", "ba"]


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """The English words of this project's docs, most frequent first (so the text tokenizes like
    English for the model), then invented words up to `size` (the rare ones)."""
    counts: Counter[str] = Counter()
    for path in [*(REPO / "docs").glob("*.md"), *(REPO / "dev").rglob("*.md"), REPO / "README.md"]:
        counts.update(re.findall(r"[a-z]{3,}", path.read_text(encoding="utf-8").lower()))
    words = dict.fromkeys(word for word, _ in counts.most_common(size))
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES, rng.integers(2, 5)))] = None
    return list(words)


class Words:
    """Zipf-distributed pseudo-words, like the words of a real text."""

    def __init__(self, seed: int = 1, size: int = 20_000) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = vocabulary(size, self.rng)
        weights = 1 / np.arange(1, size + 1)
        self.p = weights / weights.sum()
        self._stream = np.zeros(0, dtype=np.int64)
        self._at = 0

    def sentence(self, n: int) -> str:
        if self._at + n > self._stream.shape[0]:
            self._stream, self._at = self.rng.choice(len(self.words), 1_000_000, p=self.p), 0
        picked = self._stream[self._at : self._at + n]
        self._at += n
        return " ".join(self.words[i] for i in picked)

    def query(self) -> str:
        # Two or three words of middle frequency (ranks 30 to 3,000): each matches hundreds to thousands of chunks.
        return " ".join(self.words[i] for i in self.rng.integers(30, 3000, self.rng.integers(2, 4)))


def model_dir() -> Path:
    configured = os.environ.get("KANBAN_KNOWLEDGE_MODEL_PATH")
    if configured:
        return Path(configured)
    from tests.fixtures.embedding_model import build_model_dir

    return build_model_dir(Path(tempfile.mkdtemp(prefix="kanban-bench-model-")) / "all-MiniLM-L6-v2")


def databases(quick: bool) -> list[tuple[str, Settings, object]]:
    """(label, settings, drop) for SQLite and, when configured, PostgreSQL."""
    found: list[tuple[str, Settings, object]] = []
    data_dir = Path(tempfile.mkdtemp(prefix="kanban-bench-knowledge-"))
    sqlite = Settings(data_dir=data_dir / "sqlite", knowledge_model_path=model_dir())
    upgrade(sqlite)
    found.append(("SQLite", sqlite, None))
    url = os.environ.get("KANBAN_BENCH_POSTGRES_URL")
    if url:
        import asyncpg

        schema = f"kanban_bench_{uuid.uuid4().hex[:8]}"
        plain = url.replace("postgresql+asyncpg", "postgresql")

        async def sql(statement: str) -> None:
            connection = await asyncpg.connect(plain)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(sql(f'CREATE SCHEMA "{schema}"'))
        postgres = Settings(
            data_dir=data_dir / "postgres",
            database_url=url,
            database_schema=schema,
            knowledge_model_path=sqlite.knowledge_model_path,
        )
        upgrade(postgres)
        found.append(("PostgreSQL", postgres, lambda: asyncio.run(sql(f'DROP SCHEMA "{schema}" CASCADE'))))
    return found


def note(words: Words, sections: int) -> str:
    # Sections of about 800 characters: one chunk each.
    return "\n\n".join(f"## {words.sentence(3)}\n\n{words.sentence(90)}" for _ in range(sections))


async def ingest(settings: Settings, words: Words, chunks: int) -> tuple[int, int, float]:
    """(documents, chunks, seconds) for notes of five chunks through the worker."""
    database = Database(settings)
    worker = IngestionWorker(database, settings)
    try:
        async with database.session(write=True) as session:
            collection = await service.create_collection(
                session, CollectionCreate(name=f"bench {uuid.uuid4().hex[:6]}")
            )
        ids = []
        for start in range(0, chunks // 5, 200):
            async with database.session(write=True) as session:
                for i in range(start, min(start + 200, chunks // 5)):
                    added = await service.add_note(
                        session, collection.id, NoteCreate(title=f"Note {i}", content=note(words, 5))
                    )
                    ids.append(added.document.id)
        started = time.perf_counter()
        for document_id in ids:
            await worker.ingest(document_id)
        elapsed = time.perf_counter() - started
        async with database.session() as session:
            done, total = (
                await session.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status = 'ready'), coalesce(sum(chunk_count), 0) "
                        "FROM knowledge_documents WHERE collection_id = :c"
                    ),
                    {"c": collection.id},
                )
            ).one()
        assert done == len(ids), f"{len(ids) - done} documents not ready"
        return len(ids), int(total), elapsed
    finally:
        await database.dispose()


async def fill(database: Database, words: Words, model: str, dimensions: int, chunks: int) -> int:
    """`chunks` chunks in 1 collection, 100 per document, written directly; the collection id."""
    rng = np.random.default_rng(2)
    async with database.session(write=True) as session:
        collection_id = (
            await session.execute(
                insert(KnowledgeCollection)
                .values(name=f"fill {uuid.uuid4().hex[:6]}")
                .returning(KnowledgeCollection.id)
            )
        ).scalar_one()
    per_document = 100
    for start in range(0, chunks, 5000):
        async with database.session(write=True) as session:
            rows = []
            for d in range(start // per_document, min(start + 5000, chunks) // per_document):
                document_id = (
                    await session.execute(
                        insert(KnowledgeDocument)
                        .values(collection_id=collection_id, title=f"Doc {d}", kind="note", status="ready")
                        .returning(KnowledgeDocument.id)
                    )
                ).scalar_one()
                vectors = rng.standard_normal((per_document, dimensions)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for ordinal in range(per_document):
                    rows.append(
                        {
                            "document_id": document_id,
                            "ordinal": ordinal,
                            "heading": words.sentence(3),
                            "text": words.sentence(120),
                            "text_hash": uuid.uuid4().hex,
                            "embedding": to_blob(vectors[ordinal]),
                            "model": model,
                        }
                    )
            await session.execute(insert(KnowledgeChunk), rows)
    return collection_id


def bare_query(kind: str) -> str:
    if kind == "sqlite":
        return (
            "SELECT rowid, bm25(knowledge_chunks_fts) AS rank FROM knowledge_chunks_fts "
            "WHERE knowledge_chunks_fts MATCH :q ORDER BY rank LIMIT 10"
        )
    return (
        "SELECT id, ts_rank(search_vector, q) AS rank FROM knowledge_chunks, websearch_to_tsquery('english', :q) AS q "
        "WHERE search_vector @@ q ORDER BY rank DESC LIMIT 10"
    )


async def search_latency(settings: Settings, words: Words, chunks: int, queries: int) -> dict[str, float]:
    database = Database(settings)
    embedder = get_embedder(settings)
    assert embedder is not None
    try:
        collection_id = await fill(database, words, embedder.model_name, embedder.dimensions, chunks)
        figures: dict[str, float] = {}
        cache = cache_for(embedder.model_name)
        rss_before = rss_mb(os.getpid())
        started = time.perf_counter()
        async with database.session() as session:
            await cache.refresh(session)
        figures["cache_load_s"] = time.perf_counter() - started
        figures["cache_mb"] = cache.nbytes / 1024 / 1024 * 100_000 / max(len(cache), 1)
        figures["cache_rss_mb"] = rss_mb(os.getpid()) - rss_before
        figures["cached"] = len(cache)
        texts = [words.query() for _ in range(queries)]
        bare = text(bare_query(settings.database_kind))

        async def bare_one(q: str) -> None:
            terms = knowledge_search.query_terms(q)
            value = (
                knowledge_search.fts5_query(terms)
                if settings.database_kind == "sqlite"
                else knowledge_search.websearch_query(terms)
            )
            async with database.session() as session:
                (await session.execute(bare, {"q": value})).all()

        async def searched(q: str, mode: str) -> None:
            async with database.session() as session:
                response = await knowledge_search.search(
                    session, settings, q, collection_ids=[collection_id], mode=mode, limit=10
                )
            assert response.mode_used == mode, response.semantic

        runs = {
            "bare": bare_one,
            "keyword": lambda q: searched(q, "keyword"),
            "hybrid": lambda q: searched(q, "hybrid"),
        }
        for q in texts[:5]:  # warm caches and the model
            for run in runs.values():
                await run(q)
        timings: dict[str, list[float]] = {name: [] for name in runs}
        for q in texts:  # interleaved, so load on the machine hits every path alike
            for name, run in runs.items():
                started = time.perf_counter()
                await run(q)
                timings[name].append((time.perf_counter() - started) * 1000)
        for name, values in timings.items():
            figures[f"{name}_p50"] = percentile(values, 50)
            figures[f"{name}_p95"] = percentile(values, 95)
        cache.clear()
        return figures
    finally:
        await database.dispose()


def ingestion_rows(label: str, settings: Settings, words: Words, ingest_chunks: int) -> list[Row]:
    keyword_only = settings.model_copy(update={"knowledge_embedding_model": "off", "knowledge_model_path": None})
    documents, chunks, seconds = asyncio.run(ingest(keyword_only, words, ingest_chunks))
    rows = [Row(SECTION, f"{label}: ingest, keyword only ({chunks:,} chunks)", f"{documents / seconds:.0f} docs/s")]
    documents, chunks, seconds = asyncio.run(ingest(settings, words, ingest_chunks))
    rows.append(
        Row(SECTION, f"{label}: ingest with embeddings ({chunks:,} chunks)", f"{chunks / seconds:.0f} chunks/s")
    )
    return rows


def run(quick: bool = False) -> list[Row]:
    ingest_chunks = 1_000 if quick else 10_000
    search_chunks = 10_000 if quick else 100_000
    queries = 40 if quick else 200
    rows: list[Row] = []
    load_at_start = os.getloadavg()[0]
    search_only = os.environ.get("KANBAN_BENCH_KNOWLEDGE", "").strip().lower() == "search"
    for label, settings, drop in databases(quick):
        try:
            words = Words()
            if not search_only:
                rows += ingestion_rows(label, settings, words, ingest_chunks)
            f = asyncio.run(search_latency(settings, words, search_chunks, queries))
            at = f"{search_chunks // 1000}k chunks"
            rows += [
                Row(
                    SECTION,
                    f"{label}: bare full-text query p50 / p95 ({at})",
                    f"{f['bare_p50']:.1f} / {f['bare_p95']:.1f} ms",
                ),
                Row(
                    SECTION,
                    f"{label}: keyword search p50 / p95 ({at})",
                    f"{f['keyword_p50']:.1f} / {f['keyword_p95']:.1f} ms",
                    "< 20 ms p95",
                    f["keyword_p95"] < 20,
                ),
                Row(
                    SECTION,
                    f"{label}: keyword p95 / bare p95",
                    f"{f['keyword_p95'] / f['bare_p95']:.2f}×",
                    "≤ 1.5×",
                    f["keyword_p95"] <= 1.5 * f["bare_p95"],
                ),
                Row(
                    SECTION,
                    f"{label}: hybrid search p50 / p95 ({at})",
                    f"{f['hybrid_p50']:.1f} / {f['hybrid_p95']:.1f} ms",
                    "< 50 ms p95",
                    f["hybrid_p95"] < 50,
                ),
                Row(
                    SECTION,
                    f"{label}: vector cache per 100k chunks (384 dims)",
                    f"{f['cache_mb']:.0f} MB (RSS +{f['cache_rss_mb']:.0f} MB), loaded in {f['cache_load_s']:.1f} s",
                ),
            ]
        finally:
            if callable(drop):
                drop()
    rows.append(
        Row(SECTION, "load average (1 min) at the start / end", f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}")
    )
    return rows

"""Keyword search's tiers and what a search costs the database, on SQLite and PostgreSQL.

Chunks with every word of the question come first; those with some of the words follow only
when these are fewer than the hits asked for. The collections asked for must exist (404). On
PostgreSQL a keyword search is one statement (ranking, hit rows and snippets), a hybrid search
at most three, and the keyword statement reads the documents of matched chunks by primary key
even when the planner knows nothing of the tables."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text

from backend.config import Settings
from backend.db import Database
from backend.errors import NotFound
from backend.knowledge import search
from backend.knowledge.embeddings import Embedder, get_embedder, to_blob
from backend.models import KnowledgeChunk, KnowledgeCollection, KnowledgeDocument


async def add_collection(database: Database, texts: Sequence[str], embedder: Embedder | None = None) -> list[int]:
    """A new collection of one-chunk notes with these texts (embedded by `embedder` if given): the
    collection's id, then the chunks' ids in order."""
    vectors = embedder.embed_passages(list(texts)) if embedder else None
    async with database.session(write=True) as session:
        collection_id = (
            await session.execute(
                insert(KnowledgeCollection).values(name=f"kw-{uuid.uuid4().hex[:8]}").returning(KnowledgeCollection.id)
            )
        ).scalar_one()
        documents = [
            {"collection_id": collection_id, "title": f"Note {n}", "kind": "note", "content": body, "status": "ready"}
            for n, body in enumerate(texts)
        ]
        document_ids = (
            await session.scalars(insert(KnowledgeDocument).values(documents).returning(KnowledgeDocument.id))
        ).all()
        chunks = [
            {
                "document_id": document_id,
                "ordinal": 0,
                "heading": f"Note {n}",
                "text": body,
                "text_hash": hashlib.sha256(body.encode()).hexdigest(),
                "embedding": to_blob(vectors[n]) if vectors is not None else None,
                "model": embedder.model_name if embedder else None,
            }
            for n, (document_id, body) in enumerate(zip(sorted(document_ids), texts, strict=True))
        ]
        chunk_ids = (await session.scalars(insert(KnowledgeChunk).values(chunks).returning(KnowledgeChunk.id))).all()
    return [collection_id, *sorted(chunk_ids)]


async def keyword(database: Database, settings: Settings, query: str, collection_id: int, limit: int = 10):
    async with database.session() as session:
        response = await search.search(
            session, settings, query, collection_ids=[collection_id], mode="keyword", limit=limit
        )
    assert response.mode_used == "keyword"
    return response.hits


async def test_every_word_first_then_some_of_them_only_to_fill_up(settings: Settings) -> None:
    database = Database(settings)
    try:
        collection, every, two, one, other = await add_collection(
            database,
            [
                "The walrus basks on the pebble beach at noon.",
                "A walrus naps on the pebbles.",
                "The walrus is a large flippered mammal.",
                "Gulls circle the harbour.",
            ],
        )
        hits = await keyword(database, settings, "walrus pebble beach", collection)
        assert [h.chunk_id for h in hits] == [every, two, one]
        assert hits[0].score > hits[1].score > hits[2].score
        assert all(h.match == "keyword" and "«" in h.snippet for h in hits)
        # Enough chunks with every word: nothing with only some of them.
        assert [h.chunk_id for h in await keyword(database, settings, "walrus pebble beach", collection, 1)] == [every]
        assert sorted(h.chunk_id for h in await keyword(database, settings, "walrus pebbles", collection, 2)) == [
            every,
            two,
        ]
        # One word: its chunks, each once.
        assert sorted(h.chunk_id for h in await keyword(database, settings, "walrus", collection)) == [
            every,
            two,
            one,
        ]
        assert [h.chunk_id for h in await keyword(database, settings, "harbour gulls", collection)] == [other]
        assert await keyword(database, settings, "narwhal", collection) == []
    finally:
        await database.dispose()


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
async def test_a_collection_that_does_not_exist_is_404_even_next_to_one_with_hits(
    settings: Settings, local_model_dir: Path, mode: str
) -> None:
    settings = settings.model_copy(update={"knowledge_model_path": local_model_dir})
    database = Database(settings)
    missing = 10**9
    try:
        collection, _ = await add_collection(database, ["Quokkas live on Rottnest Island."], get_embedder(settings))
        for collection_ids in ([collection, missing], [missing], [missing, collection]):
            async with database.session() as session:
                with pytest.raises(NotFound, match=f"Collection {missing} not found"):
                    await search.search(session, settings, "quokka island", collection_ids=collection_ids, mode=mode)
        async with database.session() as session:
            found = await search.search(session, settings, "quokka island", collection_ids=[collection], mode=mode)
        assert found.mode_used == mode and len(found.hits) == 1
    finally:
        await database.dispose()


def postgresql_only(settings: Settings) -> None:
    if settings.database_kind != "postgresql":
        pytest.skip("SQLite's statements do not leave the process")


async def test_a_postgresql_keyword_search_is_one_statement_and_a_hybrid_one_three_at_most(
    settings: Settings, local_model_dir: Path
) -> None:
    postgresql_only(settings)
    settings = settings.model_copy(update={"knowledge_model_path": local_model_dir})
    database = Database(settings)
    statements: list[str] = []

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def count(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement)

    try:
        collection, *_ = await add_collection(
            database,
            ["Espresso wants finely ground beans.", "Green tea brews at 80 degrees.", "Tyres need air weekly."],
            get_embedder(settings),
        )
        async with database.session() as session:  # the vector cache's first load
            await search.search(session, settings, "coffee", collection_ids=[collection])
        for mode, most in (("keyword", 1), ("hybrid", 3)):
            statements.clear()
            async with database.session() as session:
                response = await search.search(
                    session, settings, "brewing coffee beans", collection_ids=[collection], mode=mode
                )
            assert response.hits and response.mode_used == mode
            assert 1 <= len(statements) <= most, (mode, statements)
    finally:
        await database.dispose()


async def test_the_postgresql_keyword_plan_reads_documents_by_primary_key_without_statistics(
    settings: Settings,
) -> None:
    """Before any ANALYZE of these tables the planner guesses that a collection has one document;
    with a join to the documents it then scans the chunks document by document (the plan this
    test saw with a join: a table's worth of chunks at 100,000 of them). The filters must read
    each matched chunk's document by primary key instead."""
    postgresql_only(settings)
    database = Database(settings)
    try:
        collection, *_ = await add_collection(
            database, [f"Entry {n} about lighthouse number {n % 7} and its keeper." for n in range(2000)]
        )
        sql = search._POSTGRES_KEYWORD.format(
            operands=search._OPERANDS,
            documents=search._POSTGRES_DOCUMENT,
            filters=" AND d.collection_id = ANY(:collections) AND d.kind = :kind",
            any_rows=search.POSTGRES_ANY_ROWS,
            hit_columns=search._POSTGRES_HIT_COLUMNS,
        )
        async with database.session() as session:
            plan = "\n".join(
                row[0]
                for row in await session.execute(
                    text("EXPLAIN " + sql),
                    {"q": "lighthouse keeper", "limit": 10, "collections": [collection], "kind": "note"},
                )
            )
        assert "Index Scan using pk_knowledge_documents" in plan, plan
        assert "ix_knowledge_chunks_document_id" not in plan, plan
    finally:
        await database.dispose()

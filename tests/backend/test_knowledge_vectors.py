"""The vector cache against brute force, and kept in sync with a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sqlalchemy import delete, insert, text

from backend.config import Settings
from backend.db import Database
from backend.knowledge.embeddings import to_blob
from backend.knowledge.fusion import reciprocal_rank_fusion
from backend.knowledge.vectors import COUNT_EVERY_SECONDS, VectorCache, cache_for
from backend.models import KnowledgeChunk, KnowledgeCollection, KnowledgeDocument

D = 16
MODEL = "test-model"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    matrix = rng.standard_normal((n, D)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def brute_force(ids, collections, matrix, query, k, wanted=None):
    scored = [
        (int(i), float(v @ query)) for i, c, v in zip(ids, collections, matrix) if wanted is None or int(c) in wanted
    ]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))[:k]


def assert_same(found, expected) -> None:
    assert [i for i, _ in found] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)


def test_search_is_brute_force_top_k_with_and_without_a_collection_filter() -> None:
    rng = np.random.default_rng(7)
    ids, collections, matrix = np.arange(1, 1001), rng.integers(1, 6, 1000), unit(rng, 1000)
    cache = VectorCache(MODEL)
    for start in range(0, 1000, 300):  # in batches: the matrix grows
        end = start + 300
        cache.upsert(ids[start:end].tolist(), collections[start:end].tolist(), matrix[start:end])
    assert len(cache) == 1000 and cache.nbytes >= 1000 * D * 4
    for query in unit(rng, 5):
        assert_same(cache.search(query, 10), brute_force(ids, collections, matrix, query, 10))
        assert_same(cache.search(query, 7, {2, 4}), brute_force(ids, collections, matrix, query, 7, {2, 4}))
    query = unit(rng, 1)[0]
    assert len(cache.search(query, 5000)) == 1000
    assert_same(cache.search(query, 5000, {3}), brute_force(ids, collections, matrix, query, 5000, {3}))
    assert cache.search(query, 5, set()) == [] and cache.search(query, 5, {99}) == [] and cache.search(query, 0) == []
    with pytest.raises(ValueError):
        cache.search(np.ones(D + 1, dtype=np.float32), 3)


def test_upsert_replaces_and_remove_keeps_the_rest_searchable() -> None:
    rng = np.random.default_rng(3)
    ids, collections, matrix = list(range(10, 60)), [1] * 25 + [2] * 25, unit(rng, 50)
    cache = VectorCache(MODEL)
    cache.upsert(ids, collections, matrix)
    query = matrix[0]
    assert cache.search(query, 1) == [(10, pytest.approx(1.0, abs=1e-5))]
    cache.upsert([10], [2], -matrix[0])  # new vector and collection for chunk 10
    assert len(cache) == 50
    assert cache.search(-query, 1, {2})[0][0] == 10 and all(i != 10 for i, _ in cache.search(-query, 50, {1}))
    cache.remove([10, 11, 59, 12345])  # first, second, last and an unknown id
    assert len(cache) == 47
    kept_ids = [i for i in ids if i not in (10, 11, 59)]
    kept = {i: (c, v) for i, c, v in zip(ids, collections, matrix) if i in kept_ids}
    for q in unit(rng, 3):
        expected = brute_force(kept_ids, [kept[i][0] for i in kept_ids], [kept[i][1] for i in kept_ids], q, 47)
        assert_same(cache.search(q, 47), expected)
    cache.remove(kept_ids)
    assert len(cache) == 0 and cache.search(query, 3) == []
    with pytest.raises(ValueError):
        cache.upsert([1, 2], [1], unit(rng, 2))


def test_the_matrix_is_one_contiguous_float32_block() -> None:
    cache = VectorCache(MODEL)
    cache.upsert([1, 2], [1, 1], np.eye(2, D, dtype=np.float64))
    assert cache._matrix.dtype == np.float32 and cache._matrix.flags.c_contiguous


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    scores = dict(fused)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62) and scores[4] == pytest.approx(1 / 63)
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([[5, 5, 6]]) == [(5, pytest.approx(1 / 61)), (6, pytest.approx(1 / 62))]
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2], [2, 1]], k=0)] == [1, 2]  # ties: first seen first
    assert [i for i, _ in reciprocal_rank_fusion([[9], [8], [8]])] == [8, 9]  # agreement wins


# -- with the database ------------------------------------------------------------------


async def add_chunks(database: Database, collection_id: int, vectors: np.ndarray, model: str = MODEL) -> list[int]:
    async with database.session(write=True) as session:
        document_id = (
            await session.execute(
                insert(KnowledgeDocument)
                .values(collection_id=collection_id, title="doc", kind="note", status="ready")
                .returning(KnowledgeDocument.id)
            )
        ).scalar_one()
        ids = []
        for ordinal, vector in enumerate(vectors):
            chunk_id = (
                await session.execute(
                    insert(KnowledgeChunk)
                    .values(
                        document_id=document_id,
                        ordinal=ordinal,
                        text=f"chunk {ordinal}",
                        text_hash=uuid.uuid4().hex,
                        embedding=to_blob(vector),
                        model=model,
                    )
                    .returning(KnowledgeChunk.id)
                )
            ).scalar_one()
            ids.append(chunk_id)
        return ids


async def new_collection(database: Database) -> int:
    async with database.session(write=True) as session:
        return (
            await session.execute(
                insert(KnowledgeCollection).values(name=f"c-{uuid.uuid4().hex[:8]}").returning(KnowledgeCollection.id)
            )
        ).scalar_one()


async def test_refresh_loads_then_follows_other_writers(settings: Settings) -> None:
    database = Database(settings)
    model = f"{MODEL}-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(11)
    try:
        first, second = await new_collection(database), await new_collection(database)
        a = unit(rng, 30)
        ids_a = await add_chunks(database, first, a, model)
        await add_chunks(database, first, unit(rng, 5), model="another-model")
        cache = VectorCache(model)
        async with database.session() as session:
            await cache.refresh(session)
        assert len(cache) == 30 and cache.search(a[4], 1)[0][0] == ids_a[4]

        # Another process adds chunks to another collection: the next refresh loads only those.
        b = unit(rng, 20)
        ids_b = await add_chunks(database, second, b, model)
        async with database.session() as session:
            await cache.refresh(session)
        assert len(cache) == 50
        assert cache.search(b[0], 1, {second})[0][0] == ids_b[0]
        assert {i for i, _ in cache.search(b[0], 50, {first})} == set(ids_a)

        # A collection deleted elsewhere (chunks cascade): its chunks leave the cache at the next count.
        async with database.session(write=True) as session:
            await session.execute(delete(KnowledgeCollection).where(KnowledgeCollection.id == first))
        async with database.session() as session:
            await cache.refresh(session)
        assert len(cache) == 50  # counted less than COUNT_EVERY_SECONDS ago: only the newest id was read
        cache._counted_at -= COUNT_EVERY_SECONDS
        async with database.session() as session:
            await cache.refresh(session)
        assert len(cache) == 20 and cache.search(a[4], 5, {first}) == []

        # An upsert whose transaction rolled back: the refresh notices and drops it.
        cache.upsert([10**9], [second], a[0])
        async with database.session() as session:
            await cache.refresh(session)
        assert len(cache) == 20 and all(i != 10**9 for i, _ in cache.search(a[0], 20))

        # The write session (SQLite: another engine on the same file) is the same database: no reload.
        loads = []
        original = cache._load_all
        cache._load_all = lambda s, n=0: loads.append(1) or original(s, n)  # type: ignore[method-assign]
        async with database.session(write=True) as session:
            await cache.refresh(session)
        assert loads == []
    finally:
        await database.dispose()


async def test_a_search_leaves_the_count_to_the_background(settings: Settings) -> None:
    """`count_later` (what search uses): new chunks are loaded before the search as always; the
    count that notices deletions elsewhere runs on a connection of its own after it."""
    database = Database(settings)
    model = f"{MODEL}-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(12)
    try:
        first, second = await new_collection(database), await new_collection(database)
        await add_chunks(database, first, unit(rng, 10), model)
        ids_b = await add_chunks(database, second, unit(rng, 5), model)
        cache = VectorCache(model)
        async with database.session() as session:
            await cache.refresh(session, count_later=True)  # the first load is in full, at once
        assert len(cache) == 15
        await cache.counted()  # nothing to wait for
        async with database.session(write=True) as session:
            await session.execute(delete(KnowledgeCollection).where(KnowledgeCollection.id == first))
        ids_new = await add_chunks(database, second, unit(rng, 2), model)
        cache._counted_at -= COUNT_EVERY_SECONDS
        async with database.session() as session:
            await cache.refresh(session, count_later=True)
        assert len(cache) == 17  # the new chunks are in; the deleted ones too, until the count has run
        await cache.counted()
        assert len(cache) == 7 and {i for i, _ in cache.search(unit(rng, 1)[0], 10)} == {*ids_b, *ids_new}
    finally:
        await database.dispose()


async def test_another_database_is_loaded_in_full(settings: Settings, tmp_path) -> None:
    from tests.conftest import make_settings

    other_settings, drop = make_settings("sqlite", tmp_path)
    one, other = Database(settings), Database(other_settings)
    model = f"{MODEL}-{uuid.uuid4().hex[:6]}"
    try:
        rng = np.random.default_rng(5)
        await add_chunks(one, await new_collection(one), unit(rng, 4), model)
        ids = await add_chunks(other, await new_collection(other), unit(rng, 3), model)
        cache = cache_for(model)
        assert cache_for(model) is cache
        async with one.session() as session:
            await cache.refresh(session)
        assert len(cache) == 4
        async with other.session() as session:
            await cache.refresh(session)
        assert len(cache) == 3 and sorted(i for i, _ in cache.search(unit(rng, 1)[0], 5)) == ids
    finally:
        await one.dispose()
        await other.dispose()
        drop()


async def test_version_check_uses_the_model_index(settings: Settings) -> None:
    """The check before every search must stay an index lookup, not a scan of the blobs."""
    if settings.database_kind != "sqlite":
        pytest.skip("the plan checked is SQLite's")
    from backend.knowledge.vectors import _NEWEST, _VERSION

    database = Database(settings)
    try:
        for query in (_VERSION, _NEWEST):
            async with database.session() as session:
                plan = " ".join(
                    str(row[-1])
                    for row in await session.execute(text("EXPLAIN QUERY PLAN " + query.text), {"model": "x"})
                )
            assert "USING COVERING INDEX ix_knowledge_chunks_model" in plan, plan
    finally:
        await database.dispose()


async def test_concurrent_first_searches_load_once(settings: Settings) -> None:
    import asyncio

    database = Database(settings)
    model = f"{MODEL}-{uuid.uuid4().hex[:6]}"
    try:
        await add_chunks(database, await new_collection(database), unit(np.random.default_rng(9), 12), model)
        cache = VectorCache(model)
        loads = []
        original = cache._load_all

        async def counted(session, expected=0) -> None:
            loads.append(1)
            await original(session, expected)

        cache._load_all = counted  # type: ignore[method-assign]

        async def one() -> None:
            async with database.session() as session:
                await cache.refresh(session)

        await asyncio.gather(*(one() for _ in range(4)))
        assert loads == [1] and len(cache) == 12
    finally:
        await database.dispose()

"""The vector cache: the ready chunks' embeddings of one model as one float32 matrix in memory.

Semantic search is a matrix product over it (numpy, a few milliseconds per 100,000 chunks of 384
dimensions) and `argpartition` for the top k: enough below about 10⁶ chunks, with no extra server.
The vectors are L2-normalised, so the product is the cosine.

- Loaded from the database on first use (`refresh`), one row per chunk that has an embedding of
  this model. A chunk's `model` is set together with its `embedding` (both or neither).
- Kept in sync by the process that writes (`upsert` after embedding, `remove` on delete), and
  checked before each search (`refresh`): the database's largest id of this model's chunks (an
  index lookup) against the cache's, and at most every COUNT_EVERY_SECONDS their count too.
  New chunks are loaded at once; when the count differs the cache reads the ids (an index scan),
  drops the ones gone and loads the missing ones: another process's deletes, or a transaction
  that rolled back after an `upsert`. Until then a deleted chunk may still be found; search
  resolves hits against the database and drops it. Another database (URL and schema) is loaded
  in full.
- The count reads an index entry per chunk (on PostgreSQL a table row each, until VACUUM has
  marked the pages visible: 100 ms at 100,000 chunks), so a search does not wait for it:
  `refresh(session, count_later=True)` checks the newest id and loads new chunks as always, and
  counts on a connection of its own in the background when a count is due.
- One cache per model and process (`cache_for`). Thread-safe: searches may run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

log = logging.getLogger(__name__)

_VERSION = text("SELECT count(*), coalesce(max(id), 0), '' FROM knowledge_chunks WHERE model = :model")
_VERSION_POSTGRESQL = text(
    "SELECT count(*), coalesce(max(id), 0), current_schema() FROM knowledge_chunks WHERE model = :model"
)
# The newest chunk of the model: a lookup in an index, where count(*) reads all of the model's entries.
_NEWEST = text(
    "SELECT coalesce((SELECT id FROM knowledge_chunks WHERE model = :model ORDER BY id DESC LIMIT 1), 0), ''"
)
_NEWEST_POSTGRESQL = text(
    "SELECT coalesce((SELECT id FROM knowledge_chunks WHERE model = :model ORDER BY id DESC LIMIT 1), 0), "
    "current_schema()"
)
# Deletions (and chunks embedded again under an older id) are seen by the count, at most this often.
COUNT_EVERY_SECONDS = 2.0
_IDS = text("SELECT id FROM knowledge_chunks WHERE model = :model")
_ROWS = """SELECT c.id, d.collection_id, c.embedding FROM knowledge_chunks AS c
    JOIN knowledge_documents AS d ON d.id = c.document_id
    WHERE c.model = :model AND c.embedding IS NOT NULL"""
_FETCH_BATCH = 500


class VectorCache:
    """Chunk embeddings of one model: ids, their collections and a contiguous float32 matrix."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.dimensions: int | None = None
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._collections = np.zeros(0, dtype=np.int64)
        self._size = 0
        self._rows: dict[int, int] = {}  # chunk id -> row
        self._max_id = 0
        self._database: tuple[str, str] | None = None  # (URL, schema) the cache was loaded from
        self._lock = threading.RLock()
        self._refresh_lock = asyncio.Lock()
        self._refresh_loop: asyncio.AbstractEventLoop | None = None
        self._expected = 0
        self._counted_at = 0.0
        self._count: asyncio.Task[None] | None = None  # the count in the background (count_later)

    def __len__(self) -> int:
        return self._size

    @property
    def loaded(self) -> bool:
        return self._database is not None

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (matrix with its spare rows, ids, collections)."""
        return self._matrix.nbytes + self._ids.nbytes + self._collections.nbytes

    # -- changes --------------------------------------------------------------------

    def upsert(self, chunk_ids: Sequence[int], collection_ids: Sequence[int], matrix: Any) -> None:
        """Add or replace chunks' vectors (rows of `matrix`, L2-normalised float32)."""
        vectors = np.asarray(matrix, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if not (len(chunk_ids) == len(collection_ids) == vectors.shape[0]):
            raise ValueError("upsert needs one chunk id and one collection id per row")
        if not len(chunk_ids):
            return
        with self._lock:
            if self.dimensions is None:
                self.dimensions = vectors.shape[1]
            if vectors.shape[1] != self.dimensions:
                raise ValueError(f"vectors of {vectors.shape[1]} dimensions in a cache of {self.dimensions}")
            new = [i for i, chunk_id in enumerate(chunk_ids) if int(chunk_id) not in self._rows]
            self._reserve(max(self._size + len(new), self._expected))
            self._expected = 0
            for i, chunk_id in enumerate(chunk_ids):
                row = self._rows.get(int(chunk_id))
                if row is None:
                    row = self._rows[int(chunk_id)] = self._size
                    self._ids[row] = int(chunk_id)
                    self._size += 1
                self._matrix[row] = vectors[i]
                self._collections[row] = int(collection_ids[i])
            self._max_id = max(self._max_id, max(int(c) for c in chunk_ids))

    def remove(self, chunk_ids: Iterable[int]) -> None:
        """Drop chunks (unknown ids are ignored); the last row moves into each freed one."""
        with self._lock:
            for chunk_id in chunk_ids:
                row = self._rows.pop(int(chunk_id), None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:
                    moved = int(self._ids[last])
                    self._matrix[row] = self._matrix[last]
                    self._ids[row] = moved
                    self._collections[row] = self._collections[last]
                    self._rows[moved] = row
                self._size = last
            self._max_id = int(self._ids[: self._size].max()) if self._size else 0

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._size = 0
            self._max_id = 0
            self._matrix = np.zeros((0, self.dimensions or 0), dtype=np.float32)
            self._ids = np.zeros(0, dtype=np.int64)
            self._collections = np.zeros(0, dtype=np.int64)

    def _reserve(self, rows: int) -> None:
        capacity = self._matrix.shape[0]
        if rows <= capacity and self._matrix.shape[1] == self.dimensions:
            return
        grown = max(rows, int(capacity * 1.25) + 64)
        matrix = np.zeros((grown, self.dimensions or 0), dtype=np.float32)
        ids = np.zeros(grown, dtype=np.int64)
        collections = np.zeros(grown, dtype=np.int64)
        if self._size:
            matrix[: self._size] = self._matrix[: self._size]
            ids[: self._size] = self._ids[: self._size]
            collections[: self._size] = self._collections[: self._size]
        self._matrix, self._ids, self._collections = matrix, ids, collections

    # -- search ---------------------------------------------------------------------

    def search(self, query_vec: Any, k: int, collection_ids: set[int] | None = None) -> list[tuple[int, float]]:
        """The k chunks most similar to `query_vec` (cosine, best first), in `collection_ids` if given."""
        query = np.asarray(query_vec, dtype=np.float32).reshape(-1)
        with self._lock:
            if k <= 0 or not self._size or (collection_ids is not None and not collection_ids):
                return []
            if query.shape[0] != self.dimensions:
                raise ValueError(f"a query of {query.shape[0]} dimensions for vectors of {self.dimensions}")
            scores = self._matrix[: self._size] @ query
            ids = self._ids[: self._size]
            if collection_ids is not None:
                wanted = np.fromiter((int(c) for c in collection_ids), dtype=np.int64)
                rows = np.flatnonzero(np.isin(self._collections[: self._size], wanted))
                scores, ids = scores[rows], ids[rows]
            if k < scores.shape[0]:
                top = np.argpartition(-scores, k - 1)[:k]
            else:
                top = np.arange(scores.shape[0])
            order = top[np.lexsort((ids[top], -scores[top]))]  # best first, then by id
            return [(int(ids[i]), float(scores[i])) for i in order]

    # -- the database ---------------------------------------------------------------

    async def refresh(self, session: AsyncSession, *, count_later: bool = False) -> None:
        """Bring the cache in line with the database (see the module's docstring). Concurrent
        searches wait for one refresh instead of each loading the matrix. With `count_later`, a
        count that is due runs in the background on a connection of its own (`counted` awaits it)."""
        loop = asyncio.get_running_loop()
        if self._refresh_loop is not loop:
            self._refresh_lock, self._refresh_loop, self._count = asyncio.Lock(), loop, None
        async with self._refresh_lock:
            due = await self._refresh(session, count=not count_later)
        engine = session.bind
        if due and isinstance(engine, AsyncEngine) and (self._count is None or self._count.done()):
            self._counted_at = time.monotonic()
            self._count = loop.create_task(self._count_apart(engine))

    async def counted(self) -> None:
        """Wait for the count in the background, if one runs."""
        if self._count is not None and self._refresh_loop is asyncio.get_running_loop():
            await asyncio.shield(self._count)

    async def _count_apart(self, engine: AsyncEngine) -> None:
        try:
            async with engine.connect() as connection:
                url = engine.url.render_as_string(hide_password=True)
                postgresql = engine.dialect.name == "postgresql"
                count, max_id, schema = (
                    await connection.execute(_VERSION_POSTGRESQL if postgresql else _VERSION, {"model": self.model})
                ).one()
                async with self._refresh_lock:
                    if (url, schema) == self._database and (int(count), int(max_id)) != (self._size, self._max_id):
                        await self._reconcile(connection, int(count), int(max_id))
        except Exception as exc:  # noqa: BLE001 - the next count tries again
            log.warning("vector cache for %s: the count failed (%s: %s)", self.model, type(exc).__name__, exc)

    async def _refresh(self, session: AsyncSession, *, count: bool) -> bool:
        """True when a count is due and was left to the caller (`count` false)."""
        bind = session.get_bind()
        postgresql = bind.dialect.name == "postgresql"
        url = bind.engine.url.render_as_string(hide_password=True)
        now = time.monotonic()
        due = now - self._counted_at >= COUNT_EVERY_SECONDS
        if self._database is not None and self._database[0] == url and (not due or not count):
            # Between counts, only the newest id (an index lookup): new chunks are loaded at once.
            max_id, schema = (
                await session.execute(_NEWEST_POSTGRESQL if postgresql else _NEWEST, {"model": self.model})
            ).one()
            if (url, schema) == self._database and int(max_id) >= self._max_id:
                if int(max_id) > self._max_id:
                    await self._load_after(session)
                return due
        count_, max_id, schema = (
            await session.execute(_VERSION_POSTGRESQL if postgresql else _VERSION, {"model": self.model})
        ).one()
        self._counted_at = now
        # SQLite's reader and writer engines share the file; PostgreSQL tests share a URL, not a schema.
        database = (url, schema)
        if database != self._database:
            await self._load_all(session, int(count_))
            self._database = database
            return False
        await self._reconcile(session, int(count_), int(max_id))
        return False

    async def _load_after(self, connection: AsyncSession | AsyncConnection) -> None:
        """The chunks above the cache's largest id."""
        sql = text(_ROWS + " AND c.id > :after ORDER BY c.id")
        self._add_rows((await connection.execute(sql, {"model": self.model, "after": self._max_id})).all())

    async def _reconcile(self, connection: AsyncSession | AsyncConnection, count: int, max_id: int) -> None:
        """Bring the cache to the database's `count` chunks up to `max_id`: new chunks above the
        cache's largest id first (the common case); when that does not close the gap, the ids."""
        if (count, max_id) == (self._size, self._max_id):
            return
        if max_id > self._max_id and count > self._size:
            await self._load_after(connection)
            if (count, max_id) == (self._size, self._max_id):
                return
        ids = {row[0] for row in await connection.execute(_IDS, {"model": self.model})}
        with self._lock:
            gone = [chunk_id for chunk_id in self._rows if chunk_id not in ids]
            missing = sorted(ids.difference(self._rows))
        self.remove(gone)
        for start in range(0, len(missing), _FETCH_BATCH):
            batch = missing[start : start + _FETCH_BATCH]
            sql = text(_ROWS + f" AND c.id IN ({', '.join(str(int(i)) for i in batch)})")
            self._add_rows((await connection.execute(sql, {"model": self.model})).all())

    async def _load_all(self, session: AsyncSession, expected: int = 0) -> None:
        result = await session.stream(text(_ROWS + " ORDER BY c.id"), {"model": self.model})
        self.clear()
        self._expected = expected  # the first batch reserves this many rows: no regrowing while loading
        async for rows in result.partitions(5000):
            self._add_rows(rows)
        log.info("vector cache for %s: %d chunks loaded", self.model, self._size)

    def _add_rows(self, rows: Sequence[Any]) -> None:
        if not rows:
            return
        width = self.dimensions or len(rows[0][2]) // 4
        good = [row for row in rows if row[2] is not None and len(row[2]) == width * 4]
        if len(good) < len(rows):
            log.warning(
                "%d chunks of %s have no vector of %d dimensions: left out", len(rows) - len(good), self.model, width
            )
        if good:
            matrix = np.frombuffer(b"".join(row[2] for row in good), dtype="<f4").reshape(len(good), width)
            self.upsert([row[0] for row in good], [row[1] for row in good], matrix)


_caches: dict[str, VectorCache] = {}
_caches_lock = threading.Lock()


def cache_for(model: str) -> VectorCache:
    """The process's vector cache for `model`."""
    with _caches_lock:
        cache = _caches.get(model)
        if cache is None:
            cache = _caches[model] = VectorCache(model)
        return cache

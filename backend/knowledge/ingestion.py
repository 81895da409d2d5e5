"""The ingestion worker: moves documents from `pending` to `ready` in the background.

pending → fetching (URLs: fetch.py) → chunking (extract the text: extract.py; cut it:
chunking.py) → embedding (embeddings of the chunks that have none) → ready, or failed with
the reason. Each step's status is committed before the step's work starts, and all state lives
in the document's row (an upload's bytes in `raw` until extracted), so a restart resumes every
unfinished document from where it stood. The worker is woken after a commit that added work
(`service.WAKE_KEY`, through `Database.on_commit`) and looks at the database every few
seconds for work other processes committed. It runs in the process that runs agents (one per
database). Slow work (fetching, extraction, embedding) happens outside any transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, undefer

from ..config import Settings
from ..db import Database
from ..kit.signals import wait_for_signal
from ..models import DocumentKind, DocumentStatus, KnowledgeDocument
from . import embeddings, extract, fetch, service
from .chunking import TARGET_CHARS, Chunk, chunk_markdown, embedding_input

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0
EMBED_BATCH = 64


class IngestionWorker:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop_reacting: Callable[[], None] | None = None
        self.idle = asyncio.Event()  # set while there is nothing to do (tests wait on it)

    async def start(self) -> None:
        self._stop_reacting = self.database.on_commit(self._on_commit)
        self._wake.set()  # resume what a previous server left unfinished
        self._task = asyncio.create_task(self._loop(), name="knowledge-ingestion")

    async def stop(self) -> None:
        if self._stop_reacting is not None:
            self._stop_reacting()
            self._stop_reacting = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self.idle.clear()
        self._wake.set()

    def _on_commit(self, session: Session) -> None:
        if session.info.pop(service.WAKE_KEY, False):
            self.wake()

    async def _loop(self) -> None:
        while True:
            await wait_for_signal(self._wake, POLL_SECONDS)
            self._wake.clear()
            try:
                async with self.database.session() as session:
                    waiting = await service.unfinished_ids(session)
                for document_id in waiting:
                    await self.ingest(document_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("knowledge ingestion failed; trying again shortly")
                await asyncio.sleep(1)
                continue
            if not self._wake.is_set():
                self.idle.set()

    async def ingest(self, document_id: int) -> None:
        """Take one document through its remaining steps; a failure is stored on it."""
        try:
            await self._ingest(document_id)
        except asyncio.CancelledError:
            raise
        except (fetch.FetchFailed, extract.UnsupportedContent) as exc:
            await self._fail(document_id, str(exc))
        except Exception as exc:
            log.exception("ingesting knowledge document %s failed", document_id)
            await self._fail(document_id, f"ingestion failed: {type(exc).__name__}: {exc}")

    async def _fail(self, document_id: int, reason: str) -> None:
        async with self.database.session(write=True) as session:
            await service.fail(session, document_id, reason)

    async def _load(self, document_id: int) -> KnowledgeDocument | None:
        async with self.database.session() as session:
            return await session.get(KnowledgeDocument, document_id, options=[undefer(KnowledgeDocument.raw)])

    async def _step(self, document_id: int, status: DocumentStatus, **values: Any) -> KnowledgeDocument | None:
        """Commit the document's next status (and the values the previous step produced)."""
        async with self.database.session(write=True) as session:
            document = await session.get(KnowledgeDocument, document_id, with_for_update=True)
            if document is None:
                return None
            await service.set_status(session, document, status, **values)
            return document

    async def _ingest(self, document_id: int) -> None:
        document = await self._load(document_id)
        if document is None or document.status in (DocumentStatus.ready.value, DocumentStatus.failed.value):
            return
        status = DocumentStatus(document.status)
        raw = document.raw
        if document.kind == DocumentKind.url.value and status in (DocumentStatus.pending, DocumentStatus.fetching):
            if await self._step(document_id, DocumentStatus.fetching) is None:
                return
            assert document.source_uri is not None
            fetched = await fetch.fetch(
                document.source_uri,
                allow_private=self.settings.knowledge_allow_private_urls,
                max_bytes=self.settings.knowledge_max_upload_bytes,
                total_seconds=self.settings.knowledge_fetch_timeout_seconds,
            )
            media_type = extract.sniff(fetched.data, urlsplit_name(fetched.url), fetched.content_type)
            raw = fetched.data
            if (
                await self._step(
                    document_id, DocumentStatus.chunking, raw=raw, media_type=media_type, size_bytes=len(raw)
                )
                is None
            ):
                return
            document.media_type = media_type
        elif status is DocumentStatus.pending:
            if await self._step(document_id, DocumentStatus.chunking) is None:
                return
        if status in (DocumentStatus.pending, DocumentStatus.fetching, DocumentStatus.chunking):
            await self._chunk(document, raw)
        await self._embed(document_id)

    async def _chunk(self, document: KnowledgeDocument, raw: bytes | None) -> None:
        values: dict[str, Any] = {}
        content = document.content
        if raw is not None:
            extracted = await asyncio.to_thread(
                extract.extract_text, raw, document.media_type or extract.PLAIN, document.title
            )
            content = extracted.text
            values["content"] = content
            if document.kind == DocumentKind.url.value:
                values["content_hash"] = service.sha256(content)
                if extracted.title and document.title == (document.source_uri or "")[:300]:
                    values["title"] = extracted.title[:300]
        title = values.get("title", document.title)
        if document.kind == DocumentKind.url.value and title == (document.source_uri or "")[:300]:
            title = None  # the URL stands in for a title the page did not have
        chunks: list[Chunk] = await asyncio.to_thread(chunk_markdown, content, TARGET_CHARS, title)
        if not chunks:
            raise extract.UnsupportedContent("the document has no text")
        async with self.database.session(write=True) as session:
            current = await session.get(KnowledgeDocument, document.id, with_for_update=True)
            if current is None:
                return
            changes = await service.replace_chunks(session, current, chunks)
            log.info(
                "document %s: %s chunks kept, %s new, %s removed",
                document.id,
                changes.kept,
                changes.added,
                changes.removed,
            )
            await service.set_status(
                session, current, DocumentStatus.embedding, chunk_count=len(chunks), raw=None, **values
            )

    async def _embed(self, document_id: int) -> None:
        """Embed the chunks without an embedding of the model (all of them the first time, the
        changed ones after a re-ingest); with embeddings off or unavailable the document is ready
        for keyword search, and `error` says that it is not embedded."""
        embedder = embeddings.get_embedder(self.settings)
        note = None
        try:
            while embedder is not None:
                async with self.database.session() as session:
                    todo = await service.chunks_to_embed(session, document_id, embedder.model_name, EMBED_BATCH)
                if not todo:
                    break
                texts = [embedding_input(Chunk(heading, text)) for _, heading, text in todo]
                matrix = await asyncio.to_thread(embedder.embed_passages, texts)
                blobs = [(chunk_id, embeddings.to_blob(vector)) for (chunk_id, _, _), vector in zip(todo, matrix)]
                async with self.database.session(write=True) as session:
                    # The vector cache finds the new rows itself before its next search (refresh).
                    await service.store_embeddings(session, embedder.model_name, blobs)
        except embeddings.EmbeddingUnavailable as exc:
            note = f"Not embedded, found by keyword search only: {exc}"
        async with self.database.session(write=True) as session:
            document = await session.get(KnowledgeDocument, document_id, with_for_update=True)
            if document is None:
                return
            await service.set_status(session, document, DocumentStatus.ready, raw=None, error=note)


def urlsplit_name(url: str) -> str | None:
    """The last part of a URL's path (its file name), to tell Markdown from plain text."""
    from urllib.parse import urlsplit

    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name or None

"""Knowledge collections, documents and project bindings: every state change. No FastAPI here.

Adding a document writes its row (status `pending`) and notes on the session that the
ingestion worker has work (`WAKE_KEY`); the worker (ingestion.py) is woken after the commit and
moves the document on, step by step, through the functions at the end of this module.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .. import git
from ..db import outside_transaction
from ..errors import Conflict, InvalidInput, KanbanError, NotFound
from ..events import service as event_log
from ..events.types import BoardEventType
from ..kit.queries import get_or_404
from ..models import (
    AgentRun,
    DocumentKind,
    DocumentStatus,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
    Project,
    ProjectKnowledgeBinding,
    Task,
)
from ..models.base import utcnow
from ..models.knowledge import UNFINISHED_STATUSES
from . import extract
from .chunking import Chunk, embedding_input
from .schemas import (
    BindingRead,
    BoundProject,
    CollectionCreate,
    CollectionRead,
    CollectionUpdate,
    DocumentRead,
    DocumentSummary,
    NoteCreate,
    UrlCreate,
)

# session.info key: the ingestion worker has new work once this transaction commits.
WAKE_KEY = "knowledge_wake"
# A task result's text is cut here (the run's result can be long).
MAX_RESULT_CHARS = 50_000


class PayloadTooLarge(KanbanError):
    status_code = 413


class UnsupportedMediaType(KanbanError):
    status_code = 415


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# -- collections ---------------------------------------------------------------------


async def get_collection(session: AsyncSession, collection_id: int) -> KnowledgeCollection:
    return await get_or_404(session, KnowledgeCollection, collection_id, "Collection")


async def check_collections(session: AsyncSession, collection_ids: Sequence[int]) -> None:
    """NotFound for the first of `collection_ids` that does not exist (one query for all)."""
    wanted = list(dict.fromkeys(collection_ids))
    if not wanted:
        return
    found = set((await session.scalars(select(KnowledgeCollection.id).where(KnowledgeCollection.id.in_(wanted)))).all())
    for collection_id in wanted:
        if collection_id not in found:
            raise NotFound(f"Collection {collection_id} not found")


async def _name_taken(session: AsyncSession, name: str, except_id: int | None = None) -> bool:
    query = select(KnowledgeCollection.id).where(func.lower(KnowledgeCollection.name) == name.lower())
    if except_id is not None:
        query = query.where(KnowledgeCollection.id != except_id)
    return await session.scalar(query) is not None


async def _ensure_name_free(session: AsyncSession, name: str, except_id: int | None = None) -> None:
    if await _name_taken(session, name, except_id):
        raise Conflict(f"A collection named {name!r} already exists; choose another name")


async def read_collections(session: AsyncSession, ids: Sequence[int] | None = None) -> list[CollectionRead]:
    """Collections with their counts and bound projects, by name (only `ids` when given)."""
    documents = (
        select(KnowledgeDocument.collection_id, func.count().label("n"))
        .group_by(KnowledgeDocument.collection_id)
        .subquery()
    )
    chunks = (
        select(KnowledgeDocument.collection_id, func.count(KnowledgeChunk.id).label("n"))
        .join(KnowledgeChunk, KnowledgeChunk.document_id == KnowledgeDocument.id)
        .group_by(KnowledgeDocument.collection_id)
        .subquery()
    )
    query = (
        select(KnowledgeCollection, func.coalesce(documents.c.n, 0), func.coalesce(chunks.c.n, 0))
        .outerjoin(documents, documents.c.collection_id == KnowledgeCollection.id)
        .outerjoin(chunks, chunks.c.collection_id == KnowledgeCollection.id)
        .order_by(KnowledgeCollection.name)
    )
    if ids is not None:
        query = query.where(KnowledgeCollection.id.in_(ids))
    rows = (await session.execute(query)).all()
    bound = await session.execute(
        select(ProjectKnowledgeBinding.collection_id, Project.id, Project.name, ProjectKnowledgeBinding.can_write)
        .join(Project, Project.id == ProjectKnowledgeBinding.project_id)
        .where(ProjectKnowledgeBinding.collection_id.in_([row[0].id for row in rows]))
        .order_by(Project.name)
    )
    projects: dict[int, list[BoundProject]] = {}
    for collection_id, project_id, project_name, can_write in bound:
        projects.setdefault(collection_id, []).append(
            BoundProject(project_id=project_id, project_name=project_name, can_write=can_write)
        )
    return [
        CollectionRead.model_validate(collection).model_copy(
            update={"document_count": n_docs, "chunk_count": n_chunks, "projects": projects.get(collection.id, [])}
        )
        for collection, n_docs, n_chunks in rows
    ]


async def read_collection(session: AsyncSession, collection_id: int) -> CollectionRead:
    await get_collection(session, collection_id)
    return (await read_collections(session, [collection_id]))[0]


async def _collection_event(session: AsyncSession, type: BoardEventType, collection: KnowledgeCollection) -> None:
    read = await read_collection(session, collection.id)
    await event_log.record(session, type, collection.project_id, read.model_dump(mode="json"))


async def create_collection(session: AsyncSession, data: CollectionCreate) -> CollectionRead:
    await _ensure_name_free(session, data.name)
    if data.scope == "project" and data.project_id is None:
        raise InvalidInput("project_id: a collection with scope project needs the project's id")
    if data.scope == "global" and data.project_id is not None:
        raise InvalidInput("project_id: only a collection with scope project belongs to a project")
    if data.project_id is not None:
        await get_or_404(session, Project, data.project_id, "Project", for_update=True)
    collection = KnowledgeCollection(
        name=data.name, description=data.description, scope=data.scope, project_id=data.project_id
    )
    session.add(collection)
    await session.flush()
    if data.project_id is not None:
        # A project's own collection is bound to it, and is its write collection if it has none yet.
        writable = await _writable_binding(session, data.project_id)
        session.add(
            ProjectKnowledgeBinding(project_id=data.project_id, collection_id=collection.id, can_write=writable is None)
        )
        await session.flush()
    await _collection_event(session, BoardEventType.knowledge_collection_created, collection)
    return await read_collection(session, collection.id)


async def update_collection(session: AsyncSession, collection_id: int, data: CollectionUpdate) -> CollectionRead:
    collection = await get_collection(session, collection_id)
    if data.name is not None and data.name != collection.name:
        await _ensure_name_free(session, data.name, except_id=collection.id)
        collection.name = data.name
    if data.description is not None:
        collection.description = data.description
    collection.updated_at = utcnow()
    await session.flush()
    await _collection_event(session, BoardEventType.knowledge_collection_updated, collection)
    return await read_collection(session, collection.id)


async def delete_collection(session: AsyncSession, collection_id: int) -> None:
    """The collection with its documents and chunks (the vector cache drops them on its next check)."""
    collection = await get_collection(session, collection_id)
    payload = {"id": collection.id, "name": collection.name}
    await session.execute(
        delete(KnowledgeChunk).where(
            KnowledgeChunk.document_id.in_(
                select(KnowledgeDocument.id).where(KnowledgeDocument.collection_id == collection.id)
            )
        )
    )
    await session.delete(collection)
    await session.flush()
    await event_log.record(session, BoardEventType.knowledge_collection_deleted, collection.project_id, payload)


# -- documents -----------------------------------------------------------------------


async def get_document(session: AsyncSession, document_id: int, *, for_update: bool = False) -> KnowledgeDocument:
    return await get_or_404(session, KnowledgeDocument, document_id, "Document", for_update=for_update)


async def list_documents(
    session: AsyncSession, collection_id: int, kind: str | None = None, status: str | None = None
) -> Sequence[KnowledgeDocument]:
    await get_collection(session, collection_id)
    query = select(KnowledgeDocument).where(KnowledgeDocument.collection_id == collection_id)
    if kind is not None:
        query = query.where(KnowledgeDocument.kind == kind)
    if status is not None:
        query = query.where(KnowledgeDocument.status == status)
    return (await session.scalars(query.order_by(KnowledgeDocument.id.desc()))).all()


async def read_document(session: AsyncSession, document_id: int, *, unchanged: bool = False) -> DocumentRead:
    document = await get_document(session, document_id)
    short_id = (
        await session.scalar(select(Task.short_id).where(Task.id == document.task_id)) if document.task_id else None
    )
    return DocumentRead.model_validate(document).model_copy(update={"task_short_id": short_id, "unchanged": unchanged})


async def _document_event(session: AsyncSession, document: KnowledgeDocument) -> None:
    project_id = await session.scalar(
        select(KnowledgeCollection.project_id).where(KnowledgeCollection.id == document.collection_id)
    )
    payload = DocumentSummary.model_validate(document).model_dump(mode="json")
    await event_log.record(session, BoardEventType.knowledge_document_updated, project_id, payload)


async def _same_content(session: AsyncSession, collection_id: int, content_hash: str) -> KnowledgeDocument | None:
    return await session.scalar(
        select(KnowledgeDocument)
        .where(
            KnowledgeDocument.collection_id == collection_id,
            KnowledgeDocument.content_hash == content_hash,
            KnowledgeDocument.status != DocumentStatus.failed.value,
        )
        .order_by(KnowledgeDocument.id)
        .limit(1)
    )


async def _add(session: AsyncSession, document: KnowledgeDocument) -> KnowledgeDocument:
    document.status = DocumentStatus.pending.value
    document.status_at = utcnow()
    session.add(document)
    await session.flush()
    await _document_event(session, document)
    session.info[WAKE_KEY] = True
    return document


@dataclass(frozen=True, slots=True)
class Added:
    document: KnowledgeDocument
    unchanged: bool


async def add_note(
    session: AsyncSession,
    collection_id: int,
    data: NoteCreate,
    *,
    kind: DocumentKind = DocumentKind.note,
    task_id: int | None = None,
    run_id: int | None = None,
) -> Added:
    """A note (or task result): its text is its content. The same text in the same collection
    again adds nothing (`unchanged`)."""
    await get_collection(session, collection_id)
    if data.supersedes_id is not None:
        await get_document(session, data.supersedes_id)
    if task_id is not None:
        await get_or_404(session, Task, task_id, "Task")
    if run_id is not None:
        run = await get_or_404(session, AgentRun, run_id, "Run")
        if task_id is not None and run.task_id != task_id:
            raise InvalidInput(f"run_id: run {run_id} is not a run of task {task_id}")
    content_hash = sha256(data.content)
    existing = await _same_content(session, collection_id, content_hash)
    if existing is not None:
        return Added(existing, unchanged=True)
    document = KnowledgeDocument(
        collection_id=collection_id,
        title=data.title,
        kind=kind.value,
        source_uri=data.source_uri,
        content=data.content,
        content_hash=content_hash,
        supersedes_id=data.supersedes_id,
        media_type=extract.MARKDOWN,
        size_bytes=len(data.content.encode()),
        task_id=task_id,
        run_id=run_id,
    )
    return Added(await _add(session, document), unchanged=False)


async def add_file(
    session: AsyncSession, collection_id: int, filename: str, data: bytes, title: str | None, max_bytes: int
) -> Added:
    """An upload, sniffed by its bytes: Markdown, text, HTML or PDF (else 415, nothing written).
    The same bytes in the same collection again add nothing (`unchanged`)."""
    await get_collection(session, collection_id)
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The file is {len(data):,} bytes; uploads may be {max_bytes:,} bytes (KANBAN_KNOWLEDGE_MAX_UPLOAD_BYTES)"
        )
    if not data:
        raise InvalidInput("file: the file is empty")
    try:
        media_type = extract.sniff(data, filename)
        if media_type in (extract.MARKDOWN, extract.PLAIN):
            extract.decode_text(data, filename)
    except extract.UnsupportedContent as exc:
        raise UnsupportedMediaType(f"file: {exc}") from None
    content_hash = sha256(data)
    existing = await _same_content(session, collection_id, content_hash)
    if existing is not None:
        return Added(existing, unchanged=True)
    document = KnowledgeDocument(
        collection_id=collection_id,
        title=title or filename or "Upload",
        kind=DocumentKind.file.value,
        source_uri=None,
        content="",
        content_hash=content_hash,
        media_type=media_type,
        size_bytes=len(data),
        raw=data,
    )
    return Added(await _add(session, document), unchanged=False)


async def add_url(session: AsyncSession, collection_id: int, data: UrlCreate) -> KnowledgeDocument:
    """A web page or PDF to fetch in the background. The same URL in the same collection again
    fetches it again into the same document (its unchanged chunks keep their embeddings)."""
    await get_collection(session, collection_id)
    existing = await session.scalar(
        select(KnowledgeDocument).where(
            KnowledgeDocument.collection_id == collection_id,
            KnowledgeDocument.kind == DocumentKind.url.value,
            KnowledgeDocument.source_uri == data.url,
        )
    )
    if existing is not None:
        return await reingest(session, existing.id)
    document = KnowledgeDocument(
        collection_id=collection_id,
        title=data.title or data.url[:300],
        kind=DocumentKind.url.value,
        source_uri=data.url,
        content="",
        content_hash="",
    )
    return await _add(session, document)


async def reingest(session: AsyncSession, document_id: int) -> KnowledgeDocument:
    """Go through the pipeline again: fetch again (URL) or chunk and embed the content again."""
    document = await get_document(session, document_id, for_update=True)
    if document.status in {status.value for status in UNFINISHED_STATUSES}:
        raise Conflict(f"Document {document.id} is being ingested ({document.status}); wait until it is done")
    if document.kind == DocumentKind.file.value and not document.content and document.raw is None:
        raise Conflict(f"Document {document.id} has no content to ingest again; upload the file again")
    document.error = None
    document.updated_at = utcnow()
    document.status = DocumentStatus.pending.value
    document.status_at = utcnow()
    await session.flush()
    await _document_event(session, document)
    session.info[WAKE_KEY] = True
    return document


async def delete_document(session: AsyncSession, document_id: int) -> None:
    document = await get_document(session, document_id)
    project_id = await session.scalar(
        select(KnowledgeCollection.project_id).where(KnowledgeCollection.id == document.collection_id)
    )
    payload = {"id": document.id, "collection_id": document.collection_id}
    await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
    await session.delete(document)
    await session.flush()
    await event_log.record(session, BoardEventType.knowledge_document_deleted, project_id, payload)


async def queue(session: AsyncSession) -> tuple[Sequence[KnowledgeDocument], int]:
    """Documents not ready yet (oldest first), and how many failed."""
    waiting = (
        await session.scalars(
            select(KnowledgeDocument)
            .where(KnowledgeDocument.status.in_([s.value for s in UNFINISHED_STATUSES]))
            .order_by(KnowledgeDocument.id)
            .limit(200)
        )
    ).all()
    failed = await session.scalar(select(func.count()).where(KnowledgeDocument.status == DocumentStatus.failed.value))
    return waiting, failed or 0


# -- project bindings ------------------------------------------------------------------


async def _writable_binding(session: AsyncSession, project_id: int) -> ProjectKnowledgeBinding | None:
    return await session.scalar(
        select(ProjectKnowledgeBinding).where(
            ProjectKnowledgeBinding.project_id == project_id, ProjectKnowledgeBinding.can_write.is_(True)
        )
    )


async def list_bindings(session: AsyncSession, project_id: int) -> list[BindingRead]:
    await get_or_404(session, Project, project_id, "Project")
    rows = await session.execute(
        select(ProjectKnowledgeBinding, KnowledgeCollection.name)
        .join(KnowledgeCollection, KnowledgeCollection.id == ProjectKnowledgeBinding.collection_id)
        .where(ProjectKnowledgeBinding.project_id == project_id)
        .order_by(KnowledgeCollection.name)
    )
    return [
        BindingRead(
            project_id=binding.project_id,
            collection_id=binding.collection_id,
            collection_name=name,
            can_write=binding.can_write,
        )
        for binding, name in rows
    ]


async def set_binding(session: AsyncSession, project_id: int, collection_id: int, can_write: bool) -> BindingRead:
    """Bind a collection to a project (its agents read it). `can_write` makes it the project's
    write collection and takes that from the project's other binding (at most one)."""
    await get_or_404(session, Project, project_id, "Project", for_update=True)
    collection = await get_collection(session, collection_id)
    if collection.scope == "project" and collection.project_id != project_id:
        raise Conflict(f"Collection {collection.name!r} belongs to another project; only global collections are shared")
    if can_write:
        await session.execute(
            update(ProjectKnowledgeBinding)
            .where(
                ProjectKnowledgeBinding.project_id == project_id,
                ProjectKnowledgeBinding.collection_id != collection_id,
                ProjectKnowledgeBinding.can_write.is_(True),
            )
            .values(can_write=False)
        )
    binding = await session.get(ProjectKnowledgeBinding, (project_id, collection_id))
    if binding is None:
        binding = ProjectKnowledgeBinding(project_id=project_id, collection_id=collection_id, can_write=can_write)
        session.add(binding)
    else:
        binding.can_write = can_write
    await session.flush()
    await _collection_event(session, BoardEventType.knowledge_collection_updated, collection)
    return BindingRead(
        project_id=project_id, collection_id=collection_id, collection_name=collection.name, can_write=can_write
    )


async def ensure_write_collection(session: AsyncSession, project_id: int) -> BindingRead:
    """The project's write collection; a project without one gets its own, named after it, so
    its agents' notes always have a place (a research workflow's report, say)."""
    project = await get_or_404(session, Project, project_id, "Project", for_update=True)
    binding = await _writable_binding(session, project_id)
    if binding is None:
        candidates = [project.name[:100], f"{project.name[:80]} ({project.key})", f"{project.key} notes {project.id}"]
        # The last one is taken only if someone chose it by hand: then create says so (409).
        name = candidates[-1]
        for candidate in candidates:
            if not await _name_taken(session, candidate):
                name = candidate
                break
        await create_collection(
            session,
            CollectionCreate(
                name=name,
                description=f"Notes and results of the project {project.name}"[:2_000],
                scope="project",
                project_id=project_id,
            ),
        )
        binding = await _writable_binding(session, project_id)
        assert binding is not None  # a project's first own collection is its write collection
    collection = await get_collection(session, binding.collection_id)
    return BindingRead(
        project_id=project_id, collection_id=collection.id, collection_name=collection.name, can_write=True
    )


async def remove_binding(session: AsyncSession, project_id: int, collection_id: int) -> None:
    binding = await session.get(ProjectKnowledgeBinding, (project_id, collection_id))
    if binding is None:
        raise NotFound(f"Collection {collection_id} is not bound to project {project_id}")
    await session.delete(binding)
    await session.flush()
    await _collection_event(
        session, BoardEventType.knowledge_collection_updated, await get_collection(session, collection_id)
    )


async def project_collection_ids(session: AsyncSession, project_id: int) -> list[int]:
    await get_or_404(session, Project, project_id, "Project")
    return list(
        (
            await session.scalars(
                select(ProjectKnowledgeBinding.collection_id).where(ProjectKnowledgeBinding.project_id == project_id)
            )
        ).all()
    )


# -- task results ----------------------------------------------------------------------


def task_result_text(task: Task, run: AgentRun, files: Sequence[str]) -> str:
    lines = [f"# {task.short_id}: {task.title}", ""]
    if task.description.strip():
        lines += ["## Task", "", task.description.strip(), ""]
    result = (run.result or task.result or "").strip()
    lines += ["## Result", "", (result[:MAX_RESULT_CHARS] or "(the agent reported no summary)"), ""]
    if files:
        lines += ["## Files changed", "", *(f"- `{path}`" for path in files[:200]), ""]
    details = [f"- Task: {task.short_id} (id {task.id})", f"- Run: {run.id} (attempt {run.attempt})"]
    if run.branch:
        details.append(f"- Branch: `{run.branch}`")
    if run.head_commit:
        details.append(f"- Commit: `{run.head_commit}`")
    lines += ["## Where it came from", "", *details]
    return "\n".join(lines).strip()


async def save_run_result(
    session: AsyncSession,
    run_id: int,
    collection_id: int | None = None,
    title: str | None = None,
    files: Sequence[str] = (),
) -> Added:
    """ "Save to knowledge": the run's result as a `task_result` document, in `collection_id` or
    the project's write collection."""
    run = await get_or_404(session, AgentRun, run_id, "Run")
    task = await get_or_404(session, Task, run.task_id, "Task")
    if collection_id is None:
        binding = await _writable_binding(session, run.project_id)
        if binding is None:
            raise Conflict(
                "The project has no write collection; bind one with can_write (PUT "
                f"/api/projects/{run.project_id}/knowledge/{{collection_id}}) or name the collection"
            )
        collection_id = binding.collection_id
    note = NoteCreate(
        title=title or f"{task.short_id}: {task.title}"[:300],
        content=task_result_text(task, run, files),
        source_uri=f"task:{task.short_id}",
    )
    return await add_note(session, collection_id, note, kind=DocumentKind.task_result, task_id=task.id, run_id=run.id)


async def changed_files(workspace_path: str, run: AgentRun) -> list[str]:
    """The paths the run changed (git, base…head); none when git cannot tell."""
    if not run.base_commit or not run.head_commit:
        return []
    try:
        diff = await asyncio.to_thread(git.diff, workspace_path, run.base_commit, run.head_commit)
    except KanbanError:
        return []
    return [entry["path"] for entry in diff["files"]]


async def save_run(session: AsyncSession, run_id: int, collection_id: int | None, title: str | None) -> Added:
    """ "Save to knowledge" from the API: the files the run changed are read from git first,
    outside the write transaction."""
    run = await get_or_404(session, AgentRun, run_id, "Run")
    project = await session.get(Project, run.project_id)
    async with outside_transaction(session):
        files = await changed_files(project.workspace_path, run) if project is not None else []
    return await save_run_result(session, run_id, collection_id, title, files)


async def save_on_approve(session: AsyncSession, task: Task, run: AgentRun, files: Sequence[str]) -> Added | None:
    """When a task is approved: its result to the project's write collection, if the project has
    one and `save_task_results` is on. None when nothing is saved."""
    project = await session.get(Project, task.project_id)
    if project is None or not project.save_task_results:
        return None
    binding = await _writable_binding(session, task.project_id)
    if binding is None:
        return None
    return await save_run_result(session, run.id, binding.collection_id, files=files)


# -- the ingestion pipeline's state changes (ingestion.py does the work between them) ---------


async def unfinished_ids(session: AsyncSession) -> list[int]:
    return list(
        (
            await session.scalars(
                select(KnowledgeDocument.id)
                .where(KnowledgeDocument.status.in_([s.value for s in UNFINISHED_STATUSES]))
                .order_by(KnowledgeDocument.id)
            )
        ).all()
    )


async def set_status(session: AsyncSession, document: KnowledgeDocument, status: DocumentStatus, **values: Any) -> None:
    """Move a document to its next step (with the values that step produced) and tell the board."""
    for name, value in values.items():
        setattr(document, name, value)
    if status is not DocumentStatus.failed and "error" not in values:
        document.error = None
    document.status = status.value
    document.status_at = utcnow()
    document.updated_at = utcnow()
    await session.flush()
    await _document_event(session, document)


async def fail(session: AsyncSession, document_id: int, reason: str) -> None:
    document = await session.get(KnowledgeDocument, document_id)
    if document is None:  # deleted meanwhile
        return
    await set_status(session, document, DocumentStatus.failed, error=reason[:2000], raw=None)


@dataclass(frozen=True, slots=True)
class ChunkChanges:
    kept: int
    added: int
    removed: int


async def replace_chunks(session: AsyncSession, document: KnowledgeDocument, chunks: Sequence[Chunk]) -> ChunkChanges:
    """Make the document's chunks `chunks`: a chunk whose text hash is there already keeps its
    row (and embedding), only its place changes; new texts get new rows; the rest go."""
    existing: dict[str, list[tuple[int, int]]] = {}
    rows = await session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.text_hash, KnowledgeChunk.ordinal)
        .where(KnowledgeChunk.document_id == document.id)
        .order_by(KnowledgeChunk.ordinal)
    )
    for chunk_id, text_hash, ordinal in rows:
        existing.setdefault(text_hash, []).append((chunk_id, ordinal))
    kept = 0
    new_rows = []
    for ordinal, chunk in enumerate(chunks):
        text_hash = sha256(embedding_input(chunk))
        matches = existing.get(text_hash)
        if matches:
            chunk_id, old_ordinal = matches.pop(0)
            kept += 1
            if old_ordinal != ordinal:
                await session.execute(
                    update(KnowledgeChunk).where(KnowledgeChunk.id == chunk_id).values(ordinal=ordinal)
                )
            continue
        new_rows.append(
            {
                "document_id": document.id,
                "ordinal": ordinal,
                "heading": chunk.heading,
                "text": chunk.text,
                "text_hash": text_hash,
            }
        )
    stale = [chunk_id for matches in existing.values() for chunk_id, _ in matches]
    if stale:
        await session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.id.in_(stale)))
    if new_rows:
        await session.execute(insert(KnowledgeChunk), new_rows)
    return ChunkChanges(kept=kept, added=len(new_rows), removed=len(stale))


async def chunks_to_embed(
    session: AsyncSession, document_id: int, model: str, limit: int
) -> list[tuple[int, str, str]]:
    """(id, heading, text) of the document's chunks without an embedding of `model`."""
    rows = await session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.heading, KnowledgeChunk.text)
        .where(
            KnowledgeChunk.document_id == document_id,
            (KnowledgeChunk.embedding.is_(None)) | (KnowledgeChunk.model != model) | KnowledgeChunk.model.is_(None),
        )
        .order_by(KnowledgeChunk.ordinal)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def store_embeddings(session: AsyncSession, model: str, embedded: Sequence[tuple[int, bytes]]) -> None:
    for chunk_id, blob in embedded:
        await session.execute(
            update(KnowledgeChunk).where(KnowledgeChunk.id == chunk_id).values(embedding=blob, model=model)
        )

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status

from ..deps import ReadSession, SettingsDep, WriteSession
from ..errors import InvalidInput
from ..kit.schemas import MAX_ID, ErrorResponse, Responses, TextLimits
from ..models import DocumentKind, DocumentStatus
from . import search as knowledge_search
from . import service as knowledge_service
from .schemas import (
    BindingRead,
    BindingUpdate,
    CollectionCreate,
    CollectionRead,
    CollectionUpdate,
    DocumentRead,
    DocumentSummary,
    EmbeddingStatus,
    KnowledgeStatus,
    NoteCreate,
    RunKnowledgeSave,
    SearchMode,
    SearchResponse,
    Title,
    UrlCreate,
)

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
# Routes under /projects and /runs that belong to knowledge.
project_router = APIRouter(prefix="/projects/{project_id}/knowledge", tags=["knowledge"])
run_router = APIRouter(prefix="/runs/{run_id}/knowledge", tags=["knowledge"])

CollectionId = Annotated[int, Path(ge=1, le=MAX_ID, description="The collection's id.")]
DocumentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The document's id.")]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id.")]
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such collection or document"}}
CONFLICT: Responses = {409: {"model": ErrorResponse, "description": "Name taken, or not possible in this state"}}
FILE_ERRORS: Responses = {
    413: {"model": ErrorResponse, "description": "The file is larger than KANBAN_KNOWLEDGE_MAX_UPLOAD_BYTES"},
    415: {"model": ErrorResponse, "description": "Not a Markdown, text, HTML or PDF document (judged by its bytes)"},
}
SearchText = Annotated[str, TextLimits(1, 1_000, strip=True)]


@router.get("/collections", response_model=list[CollectionRead], summary="Knowledge collections")
async def list_collections(session: ReadSession):
    return await knowledge_service.read_collections(session)


@router.post(
    "/collections",
    response_model=CollectionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a collection",
    description="Names are unique (case-insensitive). A project collection is bound to its project, and is its "
    "write collection when the project has none yet.",
    responses={**CONFLICT, 404: {"model": ErrorResponse, "description": "No such project"}},
)
async def create_collection(body: CollectionCreate, session: WriteSession):
    return await knowledge_service.create_collection(session, body)


@router.get(
    "/collections/{collection_id}", response_model=CollectionRead, summary="Get a collection", responses=NOT_FOUND
)
async def get_collection(collection_id: CollectionId, session: ReadSession):
    return await knowledge_service.read_collection(session, collection_id)


@router.patch(
    "/collections/{collection_id}",
    response_model=CollectionRead,
    summary="Rename a collection or change its description",
    responses={**NOT_FOUND, **CONFLICT},
)
async def update_collection(collection_id: CollectionId, body: CollectionUpdate, session: WriteSession):
    return await knowledge_service.update_collection(session, collection_id, body)


@router.delete(
    "/collections/{collection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a collection with its documents",
    responses=NOT_FOUND,
)
async def delete_collection(collection_id: CollectionId, session: WriteSession) -> None:
    await knowledge_service.delete_collection(session, collection_id)


@router.get(
    "/collections/{collection_id}/documents",
    response_model=list[DocumentSummary],
    summary="A collection's documents (newest first, without content)",
    responses=NOT_FOUND,
)
async def list_documents(
    collection_id: CollectionId,
    session: ReadSession,
    kind: Annotated[DocumentKind | None, Query(description="Only documents of this kind.")] = None,
    status: Annotated[DocumentStatus | None, Query(description="Only documents in this state.")] = None,
):
    return await knowledge_service.list_documents(
        session, collection_id, kind.value if kind else None, status.value if status else None
    )


def _added(added: knowledge_service.Added, response: Response, created: int) -> DocumentRead:
    response.status_code = status.HTTP_200_OK if added.unchanged else created
    return DocumentRead.model_validate(added.document).model_copy(update={"unchanged": added.unchanged})


@router.post(
    "/collections/{collection_id}/notes",
    response_model=DocumentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a note",
    description="Chunked and embedded in the background (watch `status`). The same text already in the "
    "collection adds nothing: 200 with `unchanged: true` and that document.",
    responses={**NOT_FOUND, 200: {"model": DocumentRead, "description": "Unchanged: the same text is there already"}},
)
async def add_note(collection_id: CollectionId, body: NoteCreate, session: WriteSession, response: Response):
    added = await knowledge_service.add_note(session, collection_id, body, task_id=body.task_id, run_id=body.run_id)
    return _added(added, response, status.HTTP_201_CREATED)


@router.post(
    "/collections/{collection_id}/files",
    response_model=DocumentRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload a file (Markdown, text, HTML or PDF)",
    description="Multipart form with `file` (and optionally `title`). The type is judged by the bytes, not the "
    "name: binary data named .md is refused. Extracted, chunked and embedded in the background. The same "
    "bytes already in the collection add nothing: 200 with `unchanged: true`.",
    responses={
        **NOT_FOUND,
        **FILE_ERRORS,
        200: {"model": DocumentRead, "description": "Unchanged: the same file is there already"},
    },
)
async def upload_file(
    collection_id: CollectionId,
    session: WriteSession,
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="The document.")],
    title: Annotated[Title | None, Form(description="Default: the file's name.")] = None,
):
    limit = settings.knowledge_max_upload_bytes
    data = await file.read(limit + 1)
    name = (file.filename or "").replace("\x00", "")[:300] or None
    if name is not None and not name.strip():
        name = None
    if title is not None and not title.strip():
        raise InvalidInput("title: must not be blank")
    added = await knowledge_service.add_file(session, collection_id, name or "Upload", data, title, limit)
    return _added(added, response, status.HTTP_202_ACCEPTED)


@router.post(
    "/collections/{collection_id}/urls",
    response_model=DocumentRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add a web page or PDF by its URL",
    description="Fetched in the background (http and https only, timeouts, size limit, at most 5 redirects; "
    "loopback and private addresses are refused unless KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS is on). A URL already "
    "in the collection is fetched again into the same document.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def add_url(collection_id: CollectionId, body: UrlCreate, session: WriteSession):
    document = await knowledge_service.add_url(session, collection_id, body)
    return DocumentRead.model_validate(document)


@router.get("/documents/{document_id}", response_model=DocumentRead, summary="Get a document", responses=NOT_FOUND)
async def get_document(document_id: DocumentId, session: ReadSession):
    return await knowledge_service.read_document(session, document_id)


@router.delete(
    "/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a document",
    responses=NOT_FOUND,
)
async def delete_document(document_id: DocumentId, session: WriteSession) -> None:
    await knowledge_service.delete_document(session, document_id)


@router.post(
    "/documents/{document_id}/reingest",
    response_model=DocumentRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ingest a document again",
    description="A URL is fetched again; other documents are chunked and embedded again. Chunks whose text "
    "did not change keep their embeddings.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def reingest_document(document_id: DocumentId, session: WriteSession):
    return DocumentRead.model_validate(await knowledge_service.reingest(session, document_id))


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="Search the knowledge collections",
    description="Hybrid by default: keyword search (SQLite FTS5 / PostgreSQL full text) and semantic search "
    "(local embeddings) fused by reciprocal rank. `mode_used` says what ran; when semantic search is off or "
    "unavailable, `semantic` says why and the keyword results still come. Snippets mark the matched words "
    "with « and ».",
    responses=NOT_FOUND,
)
async def search(
    session: ReadSession,
    settings: SettingsDep,
    q: Annotated[SearchText, Query(description="What to look for, in plain words.")],
    collection_id: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_ID)]] | None, Query(description="Only these collections (repeatable).")
    ] = None,
    project_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only the collections bound to this project.")
    ] = None,
    kind: Annotated[DocumentKind | None, Query(description="Only documents of this kind.")] = None,
    mode: Annotated[SearchMode, Query(description="hybrid, keyword or semantic.")] = "hybrid",
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many hits.")] = 10,
):
    return await knowledge_search.search(
        session,
        settings,
        q,
        collection_ids=collection_id,
        project_id=project_id,
        kind=kind.value if kind else None,
        mode=mode,
        limit=limit,
    )


@router.get(
    "/status",
    response_model=KnowledgeStatus,
    summary="The embedding model's state and the ingestion queue",
)
async def knowledge_status(session: ReadSession, settings: SettingsDep):
    waiting, failed = await knowledge_service.queue(session)
    return KnowledgeStatus(
        embedding=EmbeddingStatus.model_validate(knowledge_search.semantic_status(settings)),
        queue=[DocumentSummary.model_validate(document) for document in waiting],
        failed=failed,
    )


@project_router.get(
    "",
    response_model=list[BindingRead],
    summary="The collections bound to a project",
    responses={404: {"model": ErrorResponse, "description": "No such project"}},
)
async def list_bindings(project_id: ProjectId, session: ReadSession):
    return await knowledge_service.list_bindings(session, project_id)


@project_router.post(
    "/write-collection",
    response_model=BindingRead,
    summary="The project's write collection, made if it has none",
    description="A project without a write collection gets its own, named after it (or after it and its key "
    "when that name is taken), bound for reading and writing. Agents' add_note uses this.",
    responses={
        404: {"model": ErrorResponse, "description": "No such project"},
        409: {"model": ErrorResponse, "description": "Every name it would give the collection is taken"},
    },
)
async def ensure_write_collection(project_id: ProjectId, session: WriteSession):
    return await knowledge_service.ensure_write_collection(session, project_id)


@project_router.put(
    "/{collection_id}",
    response_model=BindingRead,
    summary="Bind a collection to a project (read, or also write)",
    description="With `can_write: true` it becomes the project's write collection (agents' notes, approved "
    "tasks' results); the project's previous write collection stays bound, read only.",
    responses={**NOT_FOUND, **CONFLICT},
)
async def set_binding(project_id: ProjectId, collection_id: CollectionId, body: BindingUpdate, session: WriteSession):
    return await knowledge_service.set_binding(session, project_id, collection_id, body.can_write)


@project_router.delete(
    "/{collection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unbind a collection from a project",
    responses=NOT_FOUND,
)
async def remove_binding(project_id: ProjectId, collection_id: CollectionId, session: WriteSession) -> None:
    await knowledge_service.remove_binding(session, project_id, collection_id)


@run_router.post(
    "",
    response_model=DocumentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Save a run's result to knowledge",
    description="The run's result (task, summary, branch, link back to the task) as a task_result document in "
    "`collection_id` or the project's write collection. The same text again: 200 with `unchanged: true`.",
    responses={
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "No collection given and the project has no write collection"},
        200: {"model": DocumentRead, "description": "Unchanged: the same result is there already"},
    },
)
async def save_run_to_knowledge(run_id: RunId, body: RunKnowledgeSave, session: WriteSession, response: Response):
    added = await knowledge_service.save_run(session, run_id, body.collection_id, body.title)
    return _added(added, response, status.HTTP_201_CREATED)

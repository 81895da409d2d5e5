"""Knowledge API shapes: collections, documents, search, project bindings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ..kit.schemas import Id, InputSchema, OutputSchema, TextLimits
from ..models import DocumentKind, DocumentStatus

CollectionName = Annotated[str, TextLimits(1, 100, strip=True)]
Description = Annotated[str, TextLimits(0, 2_000, strip=True)]
Title = Annotated[str, TextLimits(1, 300, strip=True)]
# A note's text. The request body limit (KANBAN_MAX_BODY_BYTES, 1 MB by default) is lower still.
NoteText = Annotated[str, TextLimits(1, 1_000_000, strip=True)]
Uri = Annotated[str, TextLimits(1, 4_000, strip=True)]
HttpUrl = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=4_000, strip_whitespace=True, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f]+$"
    ),
    Field(description="An http:// or https:// URL.", examples=["https://docs.python.org/3/library/asyncio.html"]),
]
Scope = Literal["global", "project"]
SearchMode = Literal["hybrid", "keyword", "semantic"]
Match = Literal["keyword", "semantic", "both"]
SemanticState = Literal["off", "not_loaded", "ready", "unavailable"]

# Marks around the matched words in a search hit's snippet.
MARK_START, MARK_END = "«", "»"


class CollectionCreate(InputSchema):
    name: CollectionName = Field(examples=["Python asyncio"])
    description: Description = ""
    scope: Scope = Field(default="global", description="global: any project may bind it; project: one project's own.")
    project_id: Id | None = Field(
        default=None, description="With scope project: the project it belongs to (bound to it, writable)."
    )


class CollectionUpdate(InputSchema):
    name: CollectionName | None = None
    description: Description | None = None


class BoundProject(OutputSchema):
    project_id: int
    project_name: str
    can_write: bool


class CollectionRead(OutputSchema):
    id: int
    name: str
    description: str
    scope: Scope
    project_id: int | None
    document_count: int = 0
    chunk_count: int = 0
    projects: list[BoundProject] = Field(default_factory=list, description="The projects bound to it.")
    created_at: datetime
    updated_at: datetime


class NoteCreate(InputSchema):
    title: Title
    content: NoteText = Field(description="Markdown or plain text.")
    source_uri: Uri | None = Field(default=None, description="Where it comes from (URLs, separated by spaces).")
    supersedes_id: Id | None = Field(default=None, description="A document this one replaces (kept, marked as older).")
    task_id: Id | None = Field(default=None, description="The task it came from (the agents' tools set it).")
    run_id: Id | None = Field(default=None, description="The agent run that wrote it (the agents' tools set it).")


class UrlCreate(InputSchema):
    url: HttpUrl
    title: Title | None = Field(default=None, description="Default: the page's title.")


class DocumentSummary(OutputSchema):
    """A document without its content (lists, events)."""

    id: int
    collection_id: int
    title: str
    kind: DocumentKind
    source_uri: str | None
    content_hash: str
    status: DocumentStatus = Field(description="pending → fetching → chunking → embedding → ready, or failed.")
    error: str | None = Field(description="Why it failed (status failed).")
    task_id: int | None
    run_id: int | None
    supersedes_id: int | None
    media_type: str | None
    size_bytes: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime


class DocumentRead(DocumentSummary):
    content: str = Field(description="The text (Markdown or plain), as extracted; empty until fetched.")
    task_short_id: str | None = Field(default=None, description="The task it came from (KAN-12).")
    unchanged: bool = Field(
        default=False,
        description="True when the same content already was in the collection: nothing was added, this is that document.",
    )


class SemanticStatus(OutputSchema):
    state: SemanticState
    message: str | None = None


class SearchHit(OutputSchema):
    document_id: int
    document_title: str
    collection_id: int
    collection_name: str
    kind: DocumentKind
    source_uri: str | None
    chunk_id: int
    heading: str = Field(description="The chunk's heading path (Title › Section › Subsection).")
    snippet: str = Field(description=f"Part of the chunk; matched words between {MARK_START} and {MARK_END}.")
    score: float = Field(description="Higher is better; comparable within one response only.")
    match: Match


class SearchResponse(OutputSchema):
    query: str
    mode_used: SearchMode = Field(description="What ran: hybrid, keyword (semantic unavailable or off) or semantic.")
    semantic: SemanticStatus
    hits: list[SearchHit]


class BindingUpdate(InputSchema):
    can_write: bool = Field(
        default=False,
        description="The project's write collection (where its agents add notes and approved tasks' results go). "
        "Only one per project: setting it here takes it from the project's other binding.",
    )


class BindingRead(OutputSchema):
    project_id: int
    collection_id: int
    collection_name: str
    can_write: bool


class EmbeddingStatus(OutputSchema):
    model: str | None
    state: SemanticState
    message: str | None = None


class KnowledgeStatus(OutputSchema):
    embedding: EmbeddingStatus
    queue: list[DocumentSummary] = Field(description="Documents not ready yet (and not failed), oldest first.")
    failed: int = Field(description="How many documents failed.")


class RunKnowledgeSave(InputSchema):
    collection_id: Id | None = Field(default=None, description="Default: the project's write collection.")
    title: Title | None = Field(default=None, description="Default: the task's title.")


class CollectionDeletedPayload(OutputSchema):
    id: int
    name: str


class DocumentDeletedPayload(OutputSchema):
    id: int
    collection_id: int

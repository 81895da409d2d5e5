"""Knowledge collections: documents agents search and fill, cut into chunks for search.

The keyword index lives in the database next to the chunks, made by migration 0006 only:
on SQLite the FTS5 table `knowledge_chunks_fts` (external content on `knowledge_chunks`,
kept in sync by triggers), on PostgreSQL the generated `tsvector` column `search_vector`
with a GIN index. Neither is part of the models (`is_keyword_index` tells Alembic's
comparison to leave them alone).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, sql_in


class CollectionScope(enum.StrEnum):
    global_ = "global"
    project = "project"


class DocumentKind(enum.StrEnum):
    note = "note"
    file = "file"
    url = "url"
    task_result = "task_result"


class DocumentStatus(enum.StrEnum):
    pending = "pending"
    fetching = "fetching"
    chunking = "chunking"
    embedding = "embedding"
    ready = "ready"
    failed = "failed"


# Statuses the ingestion worker still has to move on (resumed after a restart).
UNFINISHED_STATUSES = (
    DocumentStatus.pending,
    DocumentStatus.fetching,
    DocumentStatus.chunking,
    DocumentStatus.embedding,
)

FTS_TABLE = "knowledge_chunks_fts"
SEARCH_VECTOR_COLUMN = "search_vector"


def is_keyword_index(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic `include_object`: False for the keyword index objects migration 0006 makes by hand
    (the FTS5 table and its shadow tables, the tsvector column and its index)."""
    if type_ == "table" and name and name.startswith(FTS_TABLE):
        return False
    if type_ == "column" and name == SEARCH_VECTOR_COLUMN:
        return False
    return not (type_ == "index" and name == "ix_knowledge_chunks_search_vector")


class KnowledgeCollection(TimestampMixin, Base):
    """A thematic collection of documents; `global` or belonging to one project."""

    __tablename__ = "knowledge_collections"
    __table_args__ = (CheckConstraint(f"scope IN ({sql_in(CollectionScope)})", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    scope: Mapped[str] = mapped_column(String(10), default="global", server_default="global")
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)


class KnowledgeDocument(TimestampMixin, Base):
    """One note, file, web page or task result, and where its ingestion stands.

    `raw` keeps an upload's bytes (or a fetched page) until its text is extracted, so a restart
    can go on from there; it is cleared once the document is ready."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(DocumentKind)})", name="kind"),
        CheckConstraint(f"status IN ({sql_in(DocumentStatus)})", name="status"),
        Index("ix_knowledge_documents_collection_hash", "collection_id", "content_hash"),
        Index("ix_knowledge_documents_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("knowledge_collections.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    source_uri: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, default="", server_default="")
    # sha256 hex of `content` (of the raw bytes until the text is extracted).
    content_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("agent_runs.id", ondelete="SET NULL"), index=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="SET NULL"))
    media_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # When the current ingestion step started (a worker that finds an old one resumes it).
    status_at: Mapped[datetime | None] = mapped_column()


class KnowledgeChunk(Base):
    """A piece of a document: the unit of search. `text_hash` is the sha256 of what is embedded
    (heading path and text), so a re-ingested document keeps the embeddings of unchanged chunks."""

    __tablename__ = "knowledge_chunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="", server_default="")
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    # float32 little-endian, L2-normalised; NULL until embedded (or with embeddings off).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    model: Mapped[str | None] = mapped_column(String(200), index=True)


class ProjectKnowledgeBinding(Base):
    """A collection a project's agents may read; at most one per project with `can_write`
    (the collection its agents and approved tasks write to)."""

    __tablename__ = "project_knowledge"
    __table_args__ = (
        Index(
            "uq_project_knowledge_writable",
            "project_id",
            unique=True,
            sqlite_where=text("can_write"),
            postgresql_where=text("can_write"),
        ),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_collections.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    can_write: Mapped[bool] = mapped_column(default=False, server_default=false())


__all__ = [
    "FTS_TABLE",
    "UNFINISHED_STATUSES",
    "CollectionScope",
    "DocumentKind",
    "DocumentStatus",
    "KnowledgeChunk",
    "KnowledgeCollection",
    "KnowledgeDocument",
    "ProjectKnowledgeBinding",
    "is_keyword_index",
]

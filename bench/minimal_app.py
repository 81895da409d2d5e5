"""The stack's own limit: FastAPI + async SQLAlchemy inserting one row per request.

What a minimal service on the same stack does: the SQLite file in WAL mode (as ours), the
driver's default transactions and SQLAlchemy's default pool; no validation beyond a title,
no events, no ordering, no numbering.
Run: python -m bench.minimal_app PORT DATA_DIR
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import String, event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))


class ItemIn(BaseModel):
    project_id: int
    title: str


class ItemOut(ItemIn):
    id: int


def build(data_dir: str) -> FastAPI:
    engine = create_async_engine(f"sqlite+aiosqlite:///{data_dir}/minimal.db")

    @event.listens_for(engine.sync_engine, "connect")
    def _wal(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app):
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/health")
    async def health():
        return {"status": "ok"}

    @app.post("/api/tasks", status_code=201, response_model=ItemOut)
    async def create(body: ItemIn):
        async with sessions() as session:
            item = Item(project_id=body.project_id, title=body.title)
            session.add(item)
            await session.commit()
        return item

    return app


if __name__ == "__main__":
    port, data_dir = int(sys.argv[1]), sys.argv[2]
    asyncio.run(
        uvicorn.Server(uvicorn.Config(build(data_dir), host="127.0.0.1", port=port, log_level="warning")).serve()
    )

"""Local text embeddings for semantic knowledge search: fastembed (ONNX Runtime on the CPU).

- `KANBAN_KNOWLEDGE_EMBEDDING_MODEL` names a fastembed model (default `BAAI/bge-small-en-v1.5`,
  384 dimensions, about 70 MB), downloaded once into `<data dir>/models` on first use and
  loaded from there afterwards, without the network. `off` turns semantic search off.
- `KANBAN_KNOWLEDGE_MODEL_PATH` points at a local folder instead (an ONNX model and its
  tokenizer files), for machines that cannot download; the model is then called
  `local:<folder name>`.
- A model that cannot be loaded raises `EmbeddingUnavailable`, whose message says why and what
  to do. The failure is remembered: later calls raise it again at once, without another
  download attempt, until `RETRY_AFTER_SECONDS` have passed or the process restarts. Keyword
  search does not need the model.

One `Embedder` per process and configuration (`get_embedder`); it loads lazily and is
thread-safe. Embedding is CPU work that blocks: callers in the event loop run it in a thread
(`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from backend.config import Settings

log = logging.getLogger(__name__)

OFF = "off"
RETRY_AFTER_SECONDS = 300.0
BATCH_SIZE = 32
# A query is one short text: a second ONNX Runtime thread buys little for it, and its pool's
# threads spin between operators, taking a core from the matrix product and the database that
# run beside it (hybrid search). Queries get a session of their own with one thread; batches of
# passages (ingestion) keep ONNX Runtime's default, a thread per core.
QUERY_THREADS = 1
# The files a local model folder needs (fastembed's tokenizer loader wants both tokenizer files).
LOCAL_MODEL_FILES = ("model.onnx", "tokenizer.json", "tokenizer_config.json")

State = Literal["off", "not_loaded", "ready", "unavailable"]


class EmbeddingUnavailable(Exception):
    """The embedding model cannot be loaded; the message says why and what to do."""


def to_blob(vec: Any) -> bytes:
    """A vector as float32 little-endian bytes (the chunk table's `embedding`)."""
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """The vector stored by `to_blob` (a read-only view of the bytes)."""
    return np.frombuffer(blob, dtype="<f4")


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


def _what_to_do(cache_dir: Path) -> str:
    return (
        "Keyword search still works. To get semantic search: let this machine reach the model hub once "
        f"(the model is then kept in {cache_dir}), or copy a model folder (model.onnx, tokenizer.json, "
        "tokenizer_config.json) onto it and set KANBAN_KNOWLEDGE_MODEL_PATH to that folder; "
        f"KANBAN_KNOWLEDGE_EMBEDDING_MODEL={OFF} turns semantic search off. "
        f"The model is tried again after {RETRY_AFTER_SECONDS / 60:.0f} minutes or at restart."
    )


class Embedder:
    """One embedding model, loaded on first use."""

    def __init__(self, model_name: str, cache_dir: Path, model_path: Path | None = None) -> None:
        self.model_name = f"local:{model_path.name}" if model_path else model_name
        self.cache_dir = cache_dir
        self.model_path = model_path
        self._fastembed_name = model_name
        self._model: Any = None
        self._query_model: Any = None  # the session for queries (QUERY_THREADS), opened on first use
        self._dimensions: int | None = None
        self._failure: EmbeddingUnavailable | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()

    # -- state --------------------------------------------------------------------

    @property
    def state(self) -> State:
        if self._model is not None:
            return "ready"
        if self._failure is not None and not self._may_retry():
            return "unavailable"
        return "not_loaded"

    @property
    def message(self) -> str:
        state = self.state
        if state == "ready":
            return f"Semantic search uses {self.model_name} ({self.dimensions} dimensions)."
        if state == "unavailable":
            return str(self._failure)
        if self.model_path:
            return f"{self.model_name} is loaded from {self.model_path} on first use."
        return f"{self.model_name} is loaded on first use (downloaded once into {self.cache_dir} if it is not there)."

    @property
    def dimensions(self) -> int:
        self.load()
        assert self._dimensions is not None
        return self._dimensions

    def _may_retry(self) -> bool:
        return time.monotonic() - self._failed_at >= RETRY_AFTER_SECONDS

    # -- loading ------------------------------------------------------------------

    def load(self) -> None:
        """Load the model unless it is loaded; EmbeddingUnavailable when it cannot be (remembered)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self._failure is not None and not self._may_retry():
                raise self._failure
            try:
                self._model, self._dimensions = self._open()
            except EmbeddingUnavailable as exc:
                self._failure, self._failed_at = exc, time.monotonic()
                log.warning("%s", exc)
                raise
            self._failure = None
            log.info("embedding model %s loaded (%d dimensions)", self.model_name, self._dimensions)

    def _open(self, threads: int | None = None) -> tuple[Any, int]:
        return self._load_local(threads) if self.model_path else self._load_named(threads)

    def _load_named(self, threads: int | None = None) -> tuple[Any, int]:
        from fastembed import TextEmbedding

        name = self._fastembed_name
        known = {m["model"].lower(): m for m in TextEmbedding.list_supported_models()}
        description = known.get(name.lower())
        if description is None:
            raise EmbeddingUnavailable(
                f"Semantic search is unavailable: {name!r} is not an embedding model fastembed knows "
                f"(KANBAN_KNOWLEDGE_EMBEDDING_MODEL; the default is BAAI/bge-small-en-v1.5). "
                + _what_to_do(self.cache_dir)
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._download_once(name)
            model = TextEmbedding(name, cache_dir=str(self.cache_dir), local_files_only=True, threads=threads)
        except EmbeddingUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to fetch or open the model
            raise EmbeddingUnavailable(
                f"Semantic search is unavailable: the embedding model {name} could not be downloaded into "
                f"{self.cache_dir} ({type(exc).__name__}: {_short(exc)}). " + _what_to_do(self.cache_dir)
            ) from exc
        return model, int(description["dim"])

    def _download_once(self, name: str) -> None:
        """Fetch the model's files into the cache unless they are there, in one attempt.

        fastembed's own download retries three times with pauses of 3, 9 and 27 seconds; a
        machine without the network would wait that long on every start. One attempt here,
        and the model is then opened from the cache only."""
        from fastembed import TextEmbedding

        for model_class in TextEmbedding.EMBEDDINGS_REGISTRY:
            for description in model_class._list_supported_models():
                if description.model.lower() != name.lower() or not description.sources.hf:
                    continue
                patterns = [description.model_file, *description.additional_files]
                try:
                    model_class.download_files_from_huggingface(
                        description.sources.hf,
                        cache_dir=str(self.cache_dir),
                        extra_patterns=patterns,
                        local_files_only=True,
                    )
                    return
                except Exception:  # noqa: BLE001 - not in the cache yet
                    pass
                log.info("downloading the embedding model %s into %s", name, self.cache_dir)
                model_class.download_files_from_huggingface(
                    description.sources.hf, cache_dir=str(self.cache_dir), extra_patterns=patterns
                )
                return

    def _load_local(self, threads: int | None = None) -> tuple[Any, int]:
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        folder = self.model_path
        assert folder is not None
        missing = [f for f in LOCAL_MODEL_FILES if not (folder / f).is_file()]
        if missing:
            raise EmbeddingUnavailable(
                f"Semantic search is unavailable: the model folder {folder} (KANBAN_KNOWLEDGE_MODEL_PATH) lacks "
                f"{', '.join(missing)}. " + _what_to_do(self.cache_dir)
            )
        try:
            dimensions = _local_dimensions(folder)
            _register_local(self.model_name, dimensions, _local_pooling(folder), ModelSource, PoolingType)
            model = TextEmbedding(
                self.model_name, cache_dir=str(self.cache_dir), specific_model_path=str(folder), threads=threads
            )
        except Exception as exc:  # noqa: BLE001 - a broken model file or tokenizer
            raise EmbeddingUnavailable(
                f"Semantic search is unavailable: the model in {folder} (KANBAN_KNOWLEDGE_MODEL_PATH) could not "
                f"be opened ({type(exc).__name__}: {_short(exc)}). " + _what_to_do(self.cache_dir)
            ) from exc
        return model, dimensions

    # -- embedding ----------------------------------------------------------------

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """float32 (n, d), each row L2-normalised."""
        self.load()
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = list(self._model.passage_embed(texts, batch_size=BATCH_SIZE))
        return _normalise(np.vstack(rows))

    def embed_query(self, text: str) -> np.ndarray:
        """float32 (d,), L2-normalised."""
        self.load()
        if self._query_model is None:
            with self._lock:
                if self._query_model is None:
                    self._query_model = self._open(QUERY_THREADS)[0]
        return _normalise(next(iter(self._query_model.query_embed([text]))))


_registered: dict[str, tuple[int, str]] = {}
_registry_lock = threading.Lock()


def _register_local(name: str, dimensions: int, pooling: str, model_source: Any, pooling_type: Any) -> None:
    from fastembed import TextEmbedding

    with _registry_lock:
        if name in _registered:
            if _registered[name] != (dimensions, pooling):
                raise ValueError(f"another folder named like this one ({name}) is already loaded in this process")
            return
        TextEmbedding.add_custom_model(
            model=name,
            pooling=pooling_type(pooling),
            normalization=True,
            # Never fetched: the files come from the folder (specific_model_path).
            sources=model_source(hf=f"local/{name.removeprefix('local:')}"),
            dim=dimensions,
            model_file="model.onnx",
            description="A local model folder",
        )
        _registered[name] = (dimensions, pooling)


def _local_pooling(folder: Path) -> str:
    """Mean pooling unless a sentence-transformers pooling config says CLS."""
    config = folder / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "CLS"
    return "MEAN"


def _local_dimensions(folder: Path) -> int:
    config = folder / "config.json"
    if config.is_file():
        hidden = json.loads(config.read_text()).get("hidden_size")
        if isinstance(hidden, int) and hidden > 0:
            return hidden
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    size = session.get_outputs()[0].shape[-1]
    if not isinstance(size, int):
        raise ValueError("the model's output size is not fixed; add a config.json with hidden_size")
    return size


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "")


# -- one embedder per process and configuration ------------------------------------

_embedders: dict[tuple[str, str, str], Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder | None:
    """The process's embedder for these settings (not loaded yet); None when embeddings are off."""
    path = settings.knowledge_model_path
    name = settings.knowledge_embedding_model.strip()
    if path is None and name.lower() == OFF:
        return None
    folder = path.expanduser().resolve() if path else None
    key = (name, str(folder or ""), str(settings.models_dir))
    with _embedders_lock:
        embedder = _embedders.get(key)
        if embedder is None:
            embedder = _embedders[key] = Embedder(name, settings.models_dir, folder)
        return embedder


def embedding_status(settings: Settings) -> dict[str, str]:
    """{"model", "state": off|not_loaded|ready|unavailable, "message"}, without loading anything."""
    embedder = get_embedder(settings)
    if embedder is None:
        return {
            "model": OFF,
            "state": "off",
            "message": f"Semantic search is off (KANBAN_KNOWLEDGE_EMBEDDING_MODEL={OFF}); keyword search works.",
        }
    folder = embedder.model_path
    if embedder.state == "not_loaded" and folder and any(not (folder / f).is_file() for f in LOCAL_MODEL_FILES):
        with contextlib.suppress(EmbeddingUnavailable):
            embedder.load()  # fails at once, before anything is loaded, and says what is missing
    return {"model": embedder.model_name, "state": embedder.state, "message": embedder.message}

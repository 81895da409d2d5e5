"""Embeddings with a real model (the packaged all-MiniLM-L6-v2, int8) and the failures a user meets."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from backend.config import Settings
from backend.knowledge.embeddings import (
    Embedder,
    EmbeddingUnavailable,
    embedding_status,
    from_blob,
    get_embedder,
    to_blob,
)
from tests.fixtures.embedding_model import DIMENSIONS, MODEL_NAME, TOKENIZER_CONFIG


@pytest.fixture(scope="module")
def embedder(local_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), knowledge_model_path=local_model_dir)
    embedder = get_embedder(settings)
    assert embedder is not None
    return embedder


def test_similar_sentences_score_higher_than_unrelated_ones(embedder: Embedder) -> None:
    query = embedder.embed_query("How do I reset a forgotten password?")
    passages = embedder.embed_passages(
        [
            "If you lost your login credentials, the account recovery page lets you choose a new secret.",
            "The ferry to the island leaves every morning at nine from the north pier.",
            "Tomatoes need six hours of sun and regular watering.",
        ]
    )
    scores = passages @ query
    assert scores[0] > 0.4, scores
    assert scores[0] > scores[1] + 0.25 and scores[0] > scores[2] + 0.25, scores


def test_vectors_are_normalised_float32_and_batch_equals_single(embedder: Embedder) -> None:
    texts = ["A short line.", "A much longer paragraph about rivers, bridges and the towns along them. " * 5]
    batch = embedder.embed_passages(texts)
    assert batch.shape == (2, DIMENSIONS) and batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(texts):
        single = embedder.embed_passages([text])[0]
        np.testing.assert_allclose(single, batch[i], atol=1e-5)
    query = embedder.embed_query(texts[0])
    assert query.shape == (DIMENSIONS,) and query.dtype == np.float32
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-5
    assert float(query @ batch[0]) > 0.999  # the same text as query and passage (no prefix for this model)
    assert embedder.embed_passages([]).shape == (0, DIMENSIONS)


def test_vectors_are_those_of_mean_pooling_over_the_onnx_output(embedder: Embedder, local_model_dir: Path) -> None:
    """What sentence-transformers computes for all-MiniLM-L6-v2, done by hand with the same files."""
    import onnxruntime
    from tokenizers import Tokenizer

    text = "Mean pooling over the attention mask, then L2 normalisation."
    tokenizer = Tokenizer.from_file(str(local_model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    encoding = tokenizer.encode(text)
    ids = np.array([encoding.ids], dtype=np.int64)
    mask = np.array([encoding.attention_mask], dtype=np.int64)
    session = onnxruntime.InferenceSession(str(local_model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum()
    expected = pooled[0] / np.linalg.norm(pooled[0])
    np.testing.assert_allclose(embedder.embed_passages([text])[0], expected, atol=1e-4)


def test_long_texts_are_truncated_to_the_models_limit(embedder: Embedder) -> None:
    long = "word " * 2000
    head = "word " * (TOKENIZER_CONFIG["model_max_length"] - 2)
    np.testing.assert_allclose(embedder.embed_passages([long])[0], embedder.embed_passages([head])[0], atol=1e-4)


def test_status_and_name(embedder: Embedder, local_model_dir: Path) -> None:
    assert embedder.model_name == MODEL_NAME
    embedder.load()
    settings = Settings(data_dir=embedder.cache_dir.parent, knowledge_model_path=local_model_dir)
    assert get_embedder(settings) is embedder  # one per process and configuration
    status = embedding_status(settings)
    assert status["model"] == MODEL_NAME and status["state"] == "ready"
    assert str(DIMENSIONS) in status["message"]


def test_concurrent_first_use_loads_once(local_model_dir: Path, tmp_path: Path) -> None:
    embedder = Embedder("ignored", tmp_path / "models", local_model_dir)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed_query("same"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4
    for vec in results[1:]:
        np.testing.assert_allclose(vec, results[0], atol=1e-6)


def test_blob_round_trip() -> None:
    vec = np.random.default_rng(1).standard_normal(DIMENSIONS).astype(np.float32)
    blob = to_blob(vec)
    assert len(blob) == DIMENSIONS * 4
    assert blob[:4] == np.float32(vec[0]).astype("<f4").tobytes()  # little-endian whatever the machine
    np.testing.assert_array_equal(from_blob(blob), vec)
    np.testing.assert_array_equal(from_blob(to_blob([1.0, 2.0])), np.array([1, 2], dtype=np.float32))


def test_off_gives_no_embedder(tmp_path: Path) -> None:
    for value in ("off", "OFF", " off "):
        settings = Settings(data_dir=tmp_path, knowledge_embedding_model=value)
        assert get_embedder(settings) is None
        status = embedding_status(settings)
        assert status["state"] == "off" and "keyword search" in status["message"]


def test_a_folder_without_the_model_files_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    settings = Settings(data_dir=tmp_path / "data", knowledge_model_path=folder)
    embedder = get_embedder(settings)
    assert embedder is not None and embedder.model_name == "local:my-model"
    # The status says so before any search tries.
    assert embedding_status(settings)["state"] == "unavailable"
    with pytest.raises(EmbeddingUnavailable) as raised:
        embedder.embed_query("anything")
    message = str(raised.value)
    for part in (str(folder), "model.onnx", "tokenizer_config.json", "KANBAN_KNOWLEDGE_MODEL_PATH", "Keyword search"):
        assert part in message
    assert embedding_status(settings) == {"model": "local:my-model", "state": "unavailable", "message": message}


def test_a_broken_model_file_is_unavailable_not_a_crash(tmp_path: Path, local_model_dir: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((local_model_dir / name).read_bytes())
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    embedder = Embedder("ignored", tmp_path / "models", folder)
    with pytest.raises(EmbeddingUnavailable, match="could not be opened"):
        embedder.embed_passages(["x"])


def test_unreachable_hub_fails_fast_once_and_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine cannot reach the model hub: the default model fails at once with what to do,
    and the next calls do not try again."""
    settings = Settings(data_dir=tmp_path / "data")
    embedder = get_embedder(settings)
    assert embedder is not None and embedder.model_name == "BAAI/bge-small-en-v1.5"
    started = time.monotonic()
    try:
        embedder.embed_query("anything")
    except EmbeddingUnavailable as exc:
        message = str(exc)
    else:
        pytest.skip("the model hub is reachable from this machine: the model was downloaded")
    assert time.monotonic() - started < 30
    for part in (
        "BAAI/bge-small-en-v1.5",
        str(settings.models_dir),
        "KANBAN_KNOWLEDGE_MODEL_PATH",
        "KANBAN_KNOWLEDGE_EMBEDDING_MODEL=off",
        "Keyword search still works",
    ):
        assert part in message
    assert embedding_status(settings)["state"] == "unavailable"

    # Remembered: no second attempt (a download attempt would go through this function).
    from fastembed.text.onnx_embedding import OnnxTextEmbedding

    def no_download(*args, **kwargs):
        raise AssertionError("tried again")

    monkeypatch.setattr(OnnxTextEmbedding, "download_files_from_huggingface", classmethod(no_download))
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(EmbeddingUnavailable) as again:
            embedder.embed_passages(["x"])
        assert str(again.value) == message
    assert time.monotonic() - started < 0.1

    # Tried again once the pause is over.
    monkeypatch.setattr(embedder, "_failed_at", time.monotonic() - 10_000)
    assert embedding_status(settings)["state"] == "not_loaded"
    with pytest.raises(EmbeddingUnavailable, match="tried again"):
        embedder.embed_query("x")


def test_unknown_model_name_is_unavailable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, knowledge_embedding_model="no-such/model")
    embedder = get_embedder(settings)
    assert embedder is not None
    with pytest.raises(EmbeddingUnavailable, match="not an embedding model fastembed knows"):
        embedder.embed_query("x")


def test_a_hub_that_never_answers_does_not_hang(tmp_path: Path) -> None:
    """An endpoint that accepts connections and stays silent: the load gives up after the hub
    client's timeout, with the message, instead of blocking the server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    script = textwrap.dedent(
        f"""
        from backend.config import Settings
        from backend.knowledge.embeddings import EmbeddingUnavailable, get_embedder
        try:
            get_embedder(Settings(data_dir={str(tmp_path)!r})).embed_query("x")
        except EmbeddingUnavailable as exc:
            print("UNAVAILABLE", exc)
        """
    )
    env = {
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        listener.close()
    assert "UNAVAILABLE" in done.stdout, done.stderr[-2000:]
    assert "BAAI/bge-small-en-v1.5" in done.stdout
    assert time.monotonic() - started < 40

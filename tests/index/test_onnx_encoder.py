"""The ONNX Runtime dense backend: same vectors as torch, cached export, crash-safe cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import onnx_backend
from index.encoders import DenseEncoder, EncoderParams

TEXTS = [
    "How do I rotate the API keys of a tenant?",
    "",
    " ",
    "Ünïcödé façade — 東京の天気は晴れ 🌤️ naïve café",
    "word " * 600,  # longer than the model's 256 word-pieces: truncated the same way
    "a",
    "Qdrant Edge stores dense and sparse vectors side by side.",
]
CORPUS = [
    "Rotate API keys from the admin console under Security.",
    "The cafeteria serves lunch from noon until two.",
    "Sparse vectors hold BM25 term weights for each chunk.",
    "Dense embeddings come from a sentence-transformers model.",
    "Tenants are isolated by a payload filter on every query.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_encoder(dense_model_path: str, cache: Path) -> DenseEncoder:
    params = EncoderParams(dense_model=dense_model_path, backend="onnx", onnx_cache_dir=cache)
    return DenseEncoder.load(params)


def test_onnx_vectors_match_torch(encoders: Any, onnx_encoder: DenseEncoder) -> None:
    assert onnx_encoder.backend == "onnx"
    ref = encoders.dense.encode(TEXTS)
    got = onnx_encoder.encode(TEXTS)
    assert got.shape == ref.shape and got.dtype == np.float32
    cosines = (ref * got).sum(axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cosines.min() >= 0.9999, cosines


def test_onnx_ranking_matches_torch(encoders: Any, onnx_encoder: DenseEncoder) -> None:
    for query in ["rotate keys", "lunch hours", "how are tenants separated", "bm25 weights"]:
        ref = encoders.dense.encode(CORPUS) @ encoders.dense.encode([query])[0]
        got = onnx_encoder.encode(CORPUS) @ onnx_encoder.encode([query])[0]
        assert list(np.argsort(-ref)) == list(np.argsort(-got)), query


def test_second_load_hits_the_cache(
    dense_model_path: str, cache: Path, onnx_encoder: DenseEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(*_: object) -> None:
        raise AssertionError("exported again despite a cached model")

    monkeypatch.setattr(onnx_backend, "_export_fp32", no_export)
    params = EncoderParams(dense_model=dense_model_path, backend="onnx", onnx_cache_dir=cache)
    assert DenseEncoder.load(params).backend == "onnx"
    assert len(list(cache.glob("*-onnx.onnx"))) == 1


def test_changed_model_is_rebuilt(dense_model_path: str, cache: Path, tmp_path: Path) -> None:
    changed = tmp_path / "model"
    for src in Path(dense_model_path).rglob("*"):
        dst = changed / src.relative_to(dense_model_path)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    (changed / "CHANGED.txt").write_text("a new revision of the model")
    params = EncoderParams(dense_model=str(changed), backend="onnx", onnx_cache_dir=cache)
    assert DenseEncoder.load(params).backend == "onnx"
    assert len(list(cache.glob("*-onnx.onnx"))) == 2


def test_corrupted_cache_file_is_rebuilt(
    dense_model_path: str, cache: Path, onnx_encoder: DenseEncoder
) -> None:
    params = EncoderParams(dense_model=dense_model_path, backend="onnx", onnx_cache_dir=cache)
    path = cache / f"{onnx_backend.model_hash(None, dense_model_path)}-onnx.onnx"
    path.write_bytes(path.read_bytes()[:1000])  # a torn write / disk error
    again = DenseEncoder.load(params)
    assert again.backend == "onnx"
    np.testing.assert_allclose(again.encode(["hello"]), onnx_encoder.encode(["hello"]), atol=1e-6)
    assert not list(cache.glob("*.tmp"))


def test_failed_export_falls_back_to_torch(
    dense_model_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(onnx_backend, "_export_fp32", broken)
    params = EncoderParams(dense_model=dense_model_path, backend="onnx", onnx_cache_dir=tmp_path)
    enc = DenseEncoder.load(params)
    assert enc.backend == "torch"
    assert "using torch" in caplog.text
    assert enc.encode(["still works"]).shape == (1, enc.dim)


def test_unknown_backend_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    monkeypatch.setenv("RAGCTX_DENSE_BACKEND", "tensorrt; rm -rf /")
    with pytest.raises(ValidationError, match="dense_backend"):
        Settings()
    with pytest.raises(ValueError, match="unknown dense backend"):
        onnx_backend.dense_session(None, EncoderParams(dense_model="x", backend="onnx-fp8"))

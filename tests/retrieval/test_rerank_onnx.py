"""The cross-encoder on ONNX Runtime: same rankings as torch (fp32), cached export, max length.

The model is the seeded test cross-encoder of ``tests/reranker_model.py`` (real MiniLM encoder
and tokenizer, untrained one-logit head): its scores are meaningless as relevance, but equal
scores and rankings across runtimes are exactly what these tests check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInputError
from index import onnx_backend
from retrieval.rerank import CrossEncoderReranker

QUERY = "how do I rotate the api keys of a tenant"
TEXTS = [
    "Rotate API keys from the admin console under Security.",
    "The cafeteria serves lunch from noon until two.",
    "Keys rotate every 90 days with a 24-hour grace period for the old key.",
    "",
    "Ünïcödé façade — 東京の天気は晴れ 🌤️ naïve café",
    "A long passage that is truncated: " + "queues and consumers and retries " * 120,
    "Tenants are isolated by a payload filter on every query.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ce-onnx-cache")


def _load(folder: Path, backend: str, cache: Path, max_length: int = 512) -> CrossEncoderReranker:
    return CrossEncoderReranker.load(
        str(folder),
        backend=backend,
        onnx_cache_dir=cache,
        max_length=max_length,
        trained=False,
        threads=1,
    )


@pytest.fixture(scope="module")
def onnx_reranker(test_reranker_folder: Path, cache: Path) -> CrossEncoderReranker:
    return _load(test_reranker_folder, "onnx", cache)


def test_fp32_scores_and_ranking_equal_torch(
    test_reranker: CrossEncoderReranker, onnx_reranker: CrossEncoderReranker
) -> None:
    assert onnx_reranker.backend == "onnx" and onnx_reranker.max_length == 512
    ref = test_reranker.score(QUERY, TEXTS)
    got = onnx_reranker.score(QUERY, TEXTS)
    assert got == pytest.approx(ref, abs=1e-4)
    assert list(np.argsort(-np.array(got))) == list(np.argsort(-np.array(ref)))
    assert onnx_reranker.score(QUERY, []) == []


def test_max_length_applies_in_both_backends(
    test_reranker_folder: Path, cache: Path, test_reranker: CrossEncoderReranker
) -> None:
    """At 32 word-pieces a text's tail is never seen; at 512 it changes the score."""
    head = "Rotate API keys from the admin console under Security, " * 6
    texts = [head + "then log out.", head + "and the cafeteria serves lunch at noon."]
    for backend in ("torch", "onnx"):
        short = _load(test_reranker_folder, backend, cache, max_length=32)
        a, b = short.score(QUERY, texts)
        assert a == pytest.approx(b, abs=1e-6), backend
    full_a, full_b = test_reranker.score(QUERY, texts)
    assert full_a != pytest.approx(full_b, abs=1e-4)


def test_second_load_uses_the_cached_export(
    test_reranker_folder: Path,
    cache: Path,
    onnx_reranker: CrossEncoderReranker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_export(*_: object) -> None:
        raise AssertionError("exported again despite a cached model")

    monkeypatch.setattr(onnx_backend, "_export_module", no_export)
    assert _load(test_reranker_folder, "onnx", cache).backend == "onnx"
    assert len(list(cache.glob("*-ce-onnx.onnx"))) == 1


def test_int8_loads_and_scores_every_pair(test_reranker_folder: Path, cache: Path) -> None:
    int8 = _load(test_reranker_folder, "onnx-int8", cache)
    assert int8.backend == "onnx-int8"
    scores = int8.score(QUERY, TEXTS)
    assert len(scores) == len(TEXTS) and all(np.isfinite(scores))
    assert len(list(cache.glob("*-ce-onnx-int8.onnx"))) == 1


def test_unknown_backend_is_rejected_by_name(test_reranker_folder: Path, cache: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"'tensorrt'.*RAGCTX_RERANK_BACKEND") as err:
        _load(test_reranker_folder, "tensorrt", cache)
    assert err.value.field == "rerank_backend"


def test_corrupt_cached_export_is_rebuilt(test_reranker_folder: Path, tmp_path: Path) -> None:
    first = _load(test_reranker_folder, "onnx", tmp_path)
    (path,) = tmp_path.glob("*-ce-onnx.onnx")
    path.write_bytes(b"not an onnx model")
    again = _load(test_reranker_folder, "onnx", tmp_path)
    assert again.backend == "onnx"
    assert again.score(QUERY, TEXTS[:2]) == pytest.approx(first.score(QUERY, TEXTS[:2]), abs=1e-6)


def test_settings_choose_the_backend_and_reject_an_unknown_one(
    test_reranker_folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service.settings import Settings
    from service.wiring import load_reranker

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCTX_RERANK_MODEL", str(test_reranker_folder))
    monkeypatch.setenv("RAGCTX_ONNX_CACHE_DIR", str(cache))
    monkeypatch.setenv("RAGCTX_RERANK_MAX_LENGTH", "128")
    assert Settings().rerank_backend == "torch"  # the default: onnx is not faster here yet
    monkeypatch.setenv("RAGCTX_RERANK_BACKEND", "onnx")
    choice = load_reranker(Settings())
    reranker = choice.reranker
    assert choice.note == "" and isinstance(reranker, CrossEncoderReranker)
    assert (reranker.backend, reranker.max_length) == ("onnx", 128)
    monkeypatch.setenv("RAGCTX_RERANK_BACKEND", "gpu-magic")
    with pytest.raises(ValueError, match="rerank_backend"):
        Settings()

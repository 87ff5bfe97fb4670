"""The query cache: hits equal the encoding, copies protect it, bounded, never a wrong hit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.encoders import (
    Bm25Params,
    DenseEncoder,
    EncoderParams,
    Encoders,
    QueryCache,
    SparseEncoder,
)


@pytest.fixture(scope="module")
def cached(encoders: Any) -> Encoders:
    """The session's real torch model, wrapped with a small shared cache."""
    cache = QueryCache(4)
    dense = encoders.dense
    wrapped = DenseEncoder(dense._model, name=dense.name, batch_size=8, cache=cache)
    return Encoders(dense=wrapped, sparse=SparseEncoder(Bm25Params(), cache))


def test_dense_hit_equals_the_encoding_and_is_a_private_copy(
    cached: Encoders, encoders: Any
) -> None:
    cache = cached.dense._cache
    assert cache is not None
    first = cached.dense.encode_query("rotate api keys")
    first[:] = 0.0  # the caller scribbles on its vector
    hits = cache.hits
    second = cached.dense.encode_query("rotate api keys")
    assert cache.hits == hits + 1
    np.testing.assert_array_equal(second, encoders.dense.encode(["rotate api keys"])[0])
    assert second.flags.writeable


def test_sparse_hit_equals_the_encoding_and_is_a_private_copy(cached: Encoders) -> None:
    ref = SparseEncoder(Bm25Params()).embed_query("dead letter queue redrive")
    first = cached.sparse.embed_query("dead letter queue redrive")
    first.indices.append(7)
    first.values[0] = 99.0
    assert cached.sparse.embed_query("dead letter queue redrive") == ref


def test_eviction_keeps_the_bound_and_drops_the_least_recent() -> None:
    cache = QueryCache(3)
    for i in range(10):
        cache.put(("k", i), i)
        assert len(cache) <= 3
    assert cache.get(("k", 7)) == 7  # 7 is now the most recent; 8 is the least
    cache.put(("k", 10), 10)
    assert cache.get(("k", 8)) is None
    assert [cache.get(("k", i)) for i in (7, 9, 10)] == [7, 9, 10]
    cache.clear()
    assert len(cache) == 0 and (cache.hits, cache.misses) == (0, 0)


def test_size_zero_disables_and_negative_is_rejected() -> None:
    cache = QueryCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError, match=">= 0"):
        QueryCache(-1)
    params = EncoderParams(dense_model="unused", query_cache_size=0)
    assert params.query_cache_size == 0


def test_other_model_backend_or_bm25_params_never_hit(encoders: Any) -> None:
    cache = QueryCache(16)
    model = encoders.dense._model
    torch_enc = DenseEncoder(model, name="m", batch_size=8, cache=cache)
    # Same weights under another name or backend label: a different key, so a miss.
    other_name = DenseEncoder(model, name="m2", batch_size=8, cache=cache)
    other_backend = DenseEncoder(model, name="m", batch_size=8, cache=cache, backend="onnx")
    torch_enc.encode_query("uptime")
    for enc in (other_name, other_backend):
        misses = cache.misses
        enc.encode_query("uptime")
        assert cache.misses == misses + 1
    bm25_a = SparseEncoder(Bm25Params(), cache)
    bm25_b = SparseEncoder(Bm25Params(language="german"), cache)
    bm25_a.embed_query("uptime")
    misses = cache.misses
    bm25_b.embed_query("uptime")
    assert cache.misses == misses + 1
    assert len(cache) == 5


def test_threads_share_one_cache_safely() -> None:
    cache = QueryCache(50)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(2000):
                key = ("k", (seed * 7 + i) % 120)
                if cache.get(key) is None:
                    cache.put(key, key[1])
                assert len(cache) <= 50
        except BaseException as err:  # noqa: BLE001 -- reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 50
    assert all(cache.get(("k", i)) in (None, i) for i in range(120))


def test_settings_reach_the_encoder_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings
    from service.wiring import encoder_params

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCTX_QUERY_CACHE_SIZE", "7")
    assert encoder_params(Settings()).query_cache_size == 7
    monkeypatch.setenv("RAGCTX_QUERY_CACHE_SIZE", "-1")
    with pytest.raises(ValueError, match="query_cache_size"):
        Settings()

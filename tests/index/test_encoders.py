"""The encoders: the real all-MiniLM-L6-v2 dense model and Qdrant Edge's BM25 sparse encoder."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from index.encoders import Bm25Params, SparseEncoder, _checked

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [
    "The maximum message size is 256 KiB.",
    "Rotate API keys every ninety days; the old key keeps working during a grace period.",
    "queue",
    (
        "A much longer passage about dead letter queues, redrive, visibility timeouts and the "
        "receive count, written so that the batch holds texts of very different lengths."
    ),
]


def test_dense_vectors_are_normalized_with_the_models_dimension(encoders: Any) -> None:
    vecs = encoders.dense.encode(TEXTS)
    assert encoders.dense.dim == 384
    assert vecs.shape == (len(TEXTS), 384)
    assert vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_dense_batch_equals_one_by_one(encoders: Any) -> None:
    batch = encoders.dense.encode(TEXTS)
    single = np.stack([encoders.dense.encode([t])[0] for t in TEXTS])
    assert np.allclose(batch, single, atol=1e-5)


def test_dense_empty_input_gives_an_empty_matrix(encoders: Any) -> None:
    assert encoders.dense.encode([]).shape == (0, 384)


def test_dense_similarity_is_meaningful(encoders: Any) -> None:
    """A sanity check that the real model is loaded: a paraphrase beats an unrelated text."""
    q, para, other = encoders.dense.encode(
        ["how big can a message be?", "The maximum message size is 256 KiB.", "Invoices are PDF."]
    )
    assert float(q @ para) > float(q @ other) + 0.2


def test_count_tokens_counts_word_pieces_with_special_tokens_untruncated(encoders: Any) -> None:
    short, long = encoders.dense.count_tokens(["hello world", "word " * 600])
    assert short == 4  # [CLS] hello world [SEP]
    assert long == 602  # not cut at the model's limit: callers check against it
    assert long > encoders.dense.max_tokens


def test_sparse_indices_are_unique_and_documents_saturate_with_tf() -> None:
    enc = SparseEncoder(Bm25Params(k=1.2, b=0.75, avg_len=8.0))
    p = enc.params
    doc = "retry retry retry queue queues consumer retries"
    vec = enc.embed_documents([doc])[0]
    assert len(set(vec.indices)) == len(vec.indices)
    weight = dict(zip(vec.indices, vec.values, strict=True))
    (retry,) = enc.embed_query("retry").indices
    (queue,) = enc.embed_query("queue").indices
    (consumer,) = enc.embed_query("consumer").indices
    assert enc.embed_query("retries").indices == [retry]  # stemmed: "retries" is a 4th "retry"
    assert enc.embed_query("queues").indices == [queue]
    # More occurrences weigh more, with diminishing returns, below the k + 1 ceiling.
    assert weight[retry] > weight[queue] > weight[consumer] > 0
    assert weight[retry] - weight[queue] < weight[queue] - weight[consumer]
    assert max(vec.values) < p.k + 1
    # The exact BM25 document weight, tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len)).
    norm = p.k * (1 - p.b + p.b * 7 / p.avg_len)
    for term, tf in Counter({retry: 4, queue: 2, consumer: 1}).items():
        assert weight[term] == pytest.approx(tf * (p.k + 1) / (tf + norm), rel=1e-5)


def test_sparse_longer_documents_weigh_a_term_less() -> None:
    enc = SparseEncoder(Bm25Params())
    (term,) = enc.embed_query("queue").indices
    short, long = enc.embed_documents(["queue", "queue " + "consumer message timeout " * 20])
    assert dict(zip(long.indices, long.values, strict=True))[term] < short.values[0]


def test_sparse_query_is_its_unique_terms_at_weight_one() -> None:
    enc = SparseEncoder(Bm25Params())
    q = enc.embed_query("Queue queues QUEUE the consumer and the retry")
    assert len(q.indices) == len(set(q.indices)) == 3  # queue, consumer, retry; stop words gone
    assert q.values == [1.0, 1.0, 1.0]
    assert enc.embed_query("the and of").indices == []


def test_duplicate_indices_from_the_engine_are_merged() -> None:
    """Edge accepts duplicate indices where a server rejects them; the encoder merges them."""
    vec = _checked(SimpleNamespace(indices=[5, 7, 5], values=[1.0, 0.5, 0.25]))
    assert dict(zip(vec.indices, vec.values, strict=True)) == {5: 1.25, 7: 0.5}

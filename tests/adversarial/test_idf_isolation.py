"""BM25 statistics cover exactly what the caller may see: its tenant AND its groups.

Real encoders, real stores (Edge, and qdrant-client local mode standing in for a server; both
take ``IdfParams``/``IdfCorpusParams`` with a filter). A query runs, documents the caller cannot
see are added (another tenant's, and its own tenant's in a group it lacks), all full of the
query's words, and the same query runs again: every score, rank and debug field must be equal,
exactly. Then a document it can see is added and the BM25 scores must move, so the test can
fail. On the code before the fix (IDF over the tenant only) the same-tenant hidden group moved
the scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from core.types import Principal, Stage
from index.client import ClientStore
from index.edge import EdgeStore
from index.schema import PointRecord, point_id
from retrieval.hybrid import search
from retrieval.types import RetrievalParams, Retrieved

C = "idf"
CALLER = Principal("acme", ("support",), name="acme-support")
QUERY = "rotate API keys grace period"

VISIBLE = [
    (
        "acme",
        ["support"],
        "Rotate API keys every ninety days; the old key works in a grace period.",
    ),
    ("acme", ["public"], "The grace period after key rotation lasts twenty four hours."),
    ("acme", ["support"], "Revoke a leaked key at once; revocation skips the grace period."),
    ("acme", ["support"], "Webhooks deliver events with a signature header."),
]
HIDDEN = [
    ("globex", ["support"], "API keys rotate rotate grace grace period keys."),
    ("globex", ["public"], "Grace period period keys keys API API rotate."),
    ("acme", ["finance"], "API keys rotate; grace period grace period keys keys."),
    ("acme", ["finance", "legal"], "Rotate keys. Grace period. API keys, API keys."),
]
LATE_VISIBLE = [("acme", ["support"], "API keys rotate with a grace period; keys expire later.")]


def records(encoders: Any, docs: list[tuple[str, list[str], str]], tag: str) -> list[PointRecord]:
    texts = [text for _, _, text in docs]
    dense = encoders.dense.encode(texts)
    sparse = encoders.sparse.embed_documents(texts)
    return [
        PointRecord(
            id=point_id(tenant, "s", f"{tag}{i}", "h", 0),
            dense=dense[i].tolist(),
            sparse=sparse[i],
            payload={
                "tenant": tenant,
                "source": "s",
                "doc_id": f"{tag}{i}",
                "groups": groups,
                "text": text,
                "chunk_index": 0,
            },
        )
        for i, (tenant, groups, text) in enumerate(docs)
    ]


@pytest.fixture(params=["edge", "client-local"])
def store(request: pytest.FixtureRequest, tmp_path: Path, encoders: Any) -> Iterator[Any]:
    if request.param == "edge":
        s: Any = EdgeStore(tmp_path / "store")
    else:  # qdrant-client local mode: the in-process stand-in for a Qdrant server
        s = ClientStore(QdrantClient(location=":memory:"))
    s.create_collection(C, dense_dim=encoders.dense.dim, meta={})
    s.upsert(C, records(encoders, VISIBLE, "v"))
    yield s
    s.close()


def snapshot(result: Retrieved) -> dict[str, Any]:
    """Everything a caller can see of a search, timings aside."""
    return {
        "candidates": [
            (c.chunk_id, c.doc_id, c.score, c.score_kind, dict(c.stages)) for c in result.candidates
        ],
        "stages": {s: (t.count, t.active, t.note) for s, t in result.stages.items()},
        "dense_ranked": result.dense_ranked,
        "bm25_ranked": result.bm25_ranked,
        "blocked": result.blocked,
    }


def run(store: Any, encoders: Any) -> Retrieved:
    return search(
        QUERY,
        CALLER,
        collection=C,
        store=store,
        encoders=encoders,
        params=RetrievalParams(top_k=10),
    )


def test_invisible_documents_change_nothing_a_visible_one_does(store: Any, encoders: Any) -> None:
    before = run(store, encoders)
    assert len(before.bm25_ranked) == 3  # the query's words are in three visible documents
    store.upsert(C, records(encoders, HIDDEN, "h"))
    after = run(store, encoders)
    assert snapshot(after) == snapshot(before)  # exact, floats included

    store.upsert(C, records(encoders, LATE_VISIBLE, "late"))
    moved = run(store, encoders)
    old = {
        c.chunk_id: c.stages[Stage.BM25].score for c in before.candidates if Stage.BM25 in c.stages
    }
    new = {
        c.chunk_id: c.stages[Stage.BM25].score for c in moved.candidates if Stage.BM25 in c.stages
    }
    assert set(old) < set(new)
    assert all(new[k] != old[k] for k in old)  # one more document with the words: lower IDF

"""``index.schema.rrf`` against the reference: qdrant-client's own RRF (what the server runs)
and the embedded engine's fused query over the same legs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import qdrant_edge as qe
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from core.types import Principal
from index.edge import EdgeStore, _filter
from index.schema import BM25, DENSE, HybridQuery, PointRecord, SparseVec, StoredPoint, rrf
from retrieval.filters import access_filter, second_lock

ranked_ids = st.lists(st.integers(0, 60), unique=True, max_size=40)


@settings(max_examples=200, deadline=None)
@given(dense=ranked_ids, sparse=ranked_ids, k=st.integers(1, 100), limit=st.integers(1, 90))
def test_rrf_ranks_as_qdrant_client_does(
    dense: list[int], sparse: list[int], k: int, limit: int
) -> None:
    legs = [[StoredPoint(id=str(i), payload={}) for i in leg] for leg in (dense, sparse)]
    ours = rrf(legs, k=k, limit=limit)
    theirs = reciprocal_rank_fusion(
        [[models.ScoredPoint(id=i, version=0, score=0.0) for i in leg] for leg in (dense, sparse)],
        limit=limit,
        ranking_constant_k=k,
    )
    assert [pid for pid, _ in ours] == [str(p.id) for p in theirs]
    assert [s for _, s in ours] == pytest.approx([p.score for p in theirs])


def test_rrf_of_nothing_is_empty() -> None:
    assert rrf([[], []], k=60, limit=10) == []


def test_hybrid_fuses_as_the_engine_would(tmp_path: Path) -> None:
    """The store computes each leg once and fuses in Python; the engine's own fused query
    (both legs as prefetches, ``Fusion.Rrf``) over the same filter and IDF gives the same
    points with the same scores."""
    rnd = random.Random(7)
    store = EdgeStore(tmp_path / "store")
    store.create_collection("c", dense_dim=16, meta={})
    points = []
    for i in range(400):
        vec = [rnd.gauss(0, 1) for _ in range(16)]
        terms = sorted(rnd.sample(range(200), 8))
        points.append(
            PointRecord(
                id=f"00000000-0000-0000-0000-{i:012d}",
                dense=vec,
                sparse=SparseVec(terms, [float(rnd.randint(1, 3)) for _ in terms]),
                payload={"tenant": f"t{i % 3}", "groups": [f"g{i % 2}"], "doc_id": f"d{i}"},
            )
        )
    store.upsert("c", points)
    principal = Principal("t1", ("g1",))
    for trial in range(20):
        query = HybridQuery(
            dense=[rnd.gauss(0, 1) for _ in range(16)],
            sparse=SparseVec(sorted(rnd.sample(range(200), 4)), [1.0] * 4),
            filter=access_filter(principal),
            dense_limit=40,
            sparse_limit=30,
            rrf_k=60,
            limit=25,
            idf_filter=second_lock(principal),
        )
        got = store.hybrid("c", query)
        flt = _filter(query.filter)
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=_filter(query.idf_filter)))
        sparse = qe.SparseVector(indices=query.sparse.indices, values=query.sparse.values)
        engine = store._shard("c").query(  # noqa: SLF001 -- the engine's own fusion, for reference
            qe.QueryRequest(
                prefetches=[
                    qe.Prefetch(
                        query=qe.Query.Nearest(query.dense, using=DENSE), filter=flt, limit=40
                    ),
                    qe.Prefetch(
                        query=qe.Query.Nearest(sparse, using=BM25),
                        filter=flt,
                        limit=30,
                        params=idf,
                    ),
                ],
                query=qe.Fusion.Rrf(k=60),  # type: ignore[arg-type]
                filter=flt,
                limit=25,
                with_payload=False,
            )
        )
        expected = {str(p.id): p.score for p in engine}
        ours = {p.id: p.score for p in got.fused}
        # the same scores; a tie at the cut may admit a different point of equal score
        assert sorted(ours.values(), reverse=True) == pytest.approx(
            sorted(expected.values(), reverse=True), rel=1e-5
        ), f"trial {trial}"
        common = set(ours) & set(expected)
        assert all(ours[i] == pytest.approx(expected[i], rel=1e-5) for i in common)
        assert all(p.payload["tenant"] == "t1" for p in got.fused)
    store.close()

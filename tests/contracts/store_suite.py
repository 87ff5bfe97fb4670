"""The store conformance suite: every backend must give the same answers to the same calls.

Subclass ``StoreSuite`` and provide a ``store`` fixture (see tests/index/test_store_*.py).
Vectors here are hand-made so that each test knows the right answer without a model: a
document that the filter must hide is built to rank first on the dense leg *and* on the
BM25 leg, so a backend that drops a filter anywhere (top level, one prefetch, one leg) fails.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from core.errors import UnknownCollectionError
from index.schema import (
    ACCESS_FIELDS,
    DateRange,
    Filter,
    HybridQuery,
    MatchAny,
    MatchValue,
    PointRecord,
    SparseVec,
    point_id,
)

DIM = 8
C = "suite"


def unit(*weights: float) -> list[float]:
    vec = list(weights) + [0.0] * (DIM - len(weights))
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec]


def doc_point(
    doc_id: str,
    *,
    dense: list[float],
    terms: dict[int, float],
    tenant: str = "acme",
    groups: tuple[str, ...] = ("public",),
    tags: tuple[str, ...] = (),
    updated_at: str = "2026-01-01T00:00:00+00:00",
    chunk_index: int = 0,
) -> PointRecord:
    return PointRecord(
        id=point_id("t", "src", doc_id, "h1", chunk_index),
        dense=dense,
        sparse=SparseVec(indices=list(terms), values=list(terms.values())),
        payload={
            "tenant": tenant,
            "groups": list(groups),
            "tags": list(tags),
            "doc_id": doc_id,
            "doc_hash": "h1",
            "source": "src",
            "path": f"src/{doc_id}",
            "updated_at": updated_at,
            "chunk_index": chunk_index,
            "chunk_count": 1,
            "text": f"text of {doc_id}",
        },
    )


CORPUS = [
    # "secret" would rank first on both legs for the query below; filters must hide it.
    doc_point("secret", dense=unit(1.0), terms={1: 2.0, 2: 2.0}, groups=("legal",)),
    doc_point("a1", dense=unit(0.9, 0.1), terms={1: 1.5, 2: 1.0}, tags=("faq",)),
    doc_point("a2", dense=unit(0.7, 0.3), terms={1: 1.0}, updated_at="2024-06-01T00:00:00+00:00"),
    doc_point("a3", dense=unit(0.2, 0.8), terms={3: 1.0}, groups=("support",)),
    doc_point("other-tenant", dense=unit(1.0, 0.01), terms={1: 2.0, 2: 2.0}, tenant="globex"),
]
QUERY_DENSE = unit(1.0)
QUERY_SPARSE = SparseVec(indices=[1, 2], values=[1.0, 1.0])


def hybrid(
    flt: Filter | None, *, k: int = 60, limit: int = 10, vectors: bool = False
) -> HybridQuery:
    return HybridQuery(
        dense=QUERY_DENSE,
        sparse=QUERY_SPARSE,
        filter=flt,
        dense_limit=10,
        sparse_limit=10,
        rrf_k=k,
        limit=limit,
        idf_filter=None,
        with_vectors=vectors,
    )


def doc_ids(points: list[Any]) -> list[str]:
    return [p.payload["doc_id"] for p in points]


class StoreSuite:
    """Mixin: the behaviour every ``Store`` backend must have."""

    @pytest.fixture
    def filled(self, store: Any) -> Any:
        store.create_collection(C, dense_dim=DIM, meta={"dense_model": "test", "dense_dim": DIM})
        store.upsert(C, CORPUS)
        return store

    def test_create_lists_and_records_meta(self, store: Any) -> None:
        assert not store.has_collection(C)
        store.create_collection(C, dense_dim=DIM, meta={"dense_model": "m", "dense_dim": DIM})
        assert store.has_collection(C)
        assert C in store.collections()
        assert store.collection_meta(C)["dense_model"] == "m"

    def test_upsert_is_idempotent_by_id(self, filled: Any) -> None:
        assert filled.count(C) == len(CORPUS)
        filled.upsert(C, CORPUS[:2])
        assert filled.count(C) == len(CORPUS)

    def test_retrieve_and_delete_by_id(self, filled: Any) -> None:
        ids = [CORPUS[1].id, CORPUS[2].id]
        got = filled.retrieve(C, ids, with_vectors=True)
        assert sorted(doc_ids(got)) == ["a1", "a2"]
        assert got[0].dense is not None and len(got[0].dense) == DIM
        filled.delete(C, ids + ["00000000-0000-0000-0000-000000000000"])
        assert filled.count(C) == len(CORPUS) - 2
        assert filled.retrieve(C, ids) == []

    def test_scroll_pages_through_everything_matching(self, filled: Any) -> None:
        acme = Filter(must=(MatchValue("tenant", "acme"),))
        got = list(filled.scroll(C, acme, fields=["doc_id"], batch=2))
        assert sorted(p.payload["doc_id"] for p in got) == ["a1", "a2", "a3", "secret"]
        assert set(got[0].payload) == {"doc_id"}

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (Filter(must=(MatchValue("tenant", "globex"),)), {"other-tenant"}),
            (Filter(must=(MatchAny("groups", ("support", "legal")),)), {"secret", "a3"}),
            (Filter(must=(MatchValue("tags", "faq"),)), {"a1"}),
            (
                Filter(
                    must=(MatchValue("tenant", "acme"),),
                    must_not=(MatchAny("doc_id", ("a1", "secret")),),
                ),
                {"a2", "a3"},
            ),
            (
                Filter(must=(DateRange("updated_at", lte=datetime(2025, 1, 1, tzinfo=UTC)),)),
                {"a2"},
            ),
            (
                Filter(must=(DateRange("updated_at", gte=datetime(2025, 1, 1, tzinfo=UTC)),)),
                {"secret", "a1", "a3", "other-tenant"},
            ),
        ],
    )
    def test_filters_select_the_same_points(
        self, filled: Any, flt: Filter, expected: set[str]
    ) -> None:
        assert {p.payload["doc_id"] for p in filled.scroll(C, flt)} == expected
        assert filled.count(C, flt) == len(expected)

    def test_hybrid_filter_applies_to_both_legs_and_the_fusion(self, filled: Any) -> None:
        # Without a filter, the hidden documents lead both legs: the fixture is meaningful.
        open_result = filled.hybrid(C, hybrid(None))
        assert doc_ids(filled.retrieve(C, [open_result.dense[0].id])) in (
            ["secret"],
            ["other-tenant"],
        )
        assert doc_ids(filled.retrieve(C, [open_result.sparse[0].id]))[0] in {
            "secret",
            "other-tenant",
        }

        access = Filter(
            must=(MatchValue("tenant", "acme"), MatchAny("groups", ("public", "support")))
        )
        result = filled.hybrid(C, hybrid(access))
        hidden = {CORPUS[0].id, CORPUS[4].id}
        for leg in (result.fused, result.dense, result.sparse):
            assert leg, "a leg returned nothing"
            assert not hidden & {p.id for p in leg}
        assert doc_ids(result.fused)[0] == "a1"

    def test_outside_names_the_points_a_filter_does_not_match(self, filled: Any) -> None:
        access = Filter(
            must=(MatchValue("tenant", "acme"), MatchAny("groups", ("public", "support")))
        )
        everything = [p.id for p in filled.scroll(C)]
        inside = {p.id for p in filled.scroll(C, access)}
        assert inside and len(inside) < len(everything), "the fixture has both kinds"
        got = filled.outside(C, [*everything, "00000000-0000-0000-0000-000000000000"], access)
        assert {p.id for p in got} == set(everything) - inside
        for p in got:  # the access fields come along, for the log line
            assert set(p.payload) <= set(ACCESS_FIELDS) and "tenant" in p.payload
        assert filled.outside(C, sorted(inside), access) == []
        assert filled.outside(C, [], access) == []

    def test_legs_carry_ids_and_scores_only(self, filled: Any) -> None:
        result = filled.hybrid(C, hybrid(Filter(must=(MatchValue("tenant", "acme"),))))
        for leg in (result.dense, result.sparse):
            assert leg
            assert all(p.payload == {} and p.score is not None for p in leg)
        assert all("doc_id" in p.payload for p in result.fused)

    def test_rrf_scores_follow_the_formula_with_the_given_k(self, filled: Any) -> None:
        k = 10
        access = Filter(must=(MatchValue("tenant", "acme"),))
        result = filled.hybrid(C, hybrid(access, k=k))
        dense_rank = {p.id: r for r, p in enumerate(result.dense)}
        sparse_rank = {p.id: r for r, p in enumerate(result.sparse)}
        # Qdrant counts ranks from 0: score = sum over legs of 1 / (k + rank0).
        for p in result.fused:
            expected = sum(
                1.0 / (k + ranks[p.id]) for ranks in (dense_rank, sparse_rank) if p.id in ranks
            )
            assert p.score == pytest.approx(expected, rel=1e-4)

    def test_hybrid_returns_vectors_and_payload_when_asked(self, filled: Any) -> None:
        result = filled.hybrid(
            C, hybrid(Filter(must=(MatchValue("tenant", "acme"),)), vectors=True)
        )
        top = result.fused[0]
        assert top.payload["text"] == f"text of {top.payload['doc_id']}"
        assert top.dense is not None and len(top.dense) == DIM

    def test_idf_is_computed_over_the_given_corpus(self, filled: Any) -> None:
        # Term 3 occurs only in a3 (1 of 4 acme points); collection-wide it is 1 of 5.
        acme = Filter(must=(MatchValue("tenant", "acme"),))
        query = HybridQuery(
            dense=QUERY_DENSE,
            sparse=SparseVec([3], [1.0]),
            filter=acme,
            dense_limit=5,
            sparse_limit=5,
            rrf_k=60,
            limit=5,
            idf_filter=acme,
        )
        score = filled.hybrid(C, query).sparse[0].score

        def idf(n_docs: int, df: int) -> float:
            return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))

        assert score == pytest.approx(idf(4, 1) * 1.0, rel=1e-4)
        whole = filled.hybrid(C, dataclasses.replace(query, idf_filter=None))
        assert whole.sparse[0].score == pytest.approx(idf(5, 1), rel=1e-4)

    def test_facet_counts_keyword_values(self, filled: Any) -> None:
        assert filled.facet(C, "tenant") == {"acme": 4, "globex": 1}
        groups = filled.facet(C, "groups", Filter(must=(MatchValue("tenant", "acme"),)))
        assert groups == {"legal": 1, "public": 2, "support": 1}

    def test_unknown_collection_is_named_in_the_error(self, store: Any) -> None:
        with pytest.raises(UnknownCollectionError, match="'nope'"):
            store.count("nope")
        with pytest.raises(UnknownCollectionError, match="ragctx ingest"):
            store.hybrid("nope", hybrid(None))

    def test_drop_collection(self, filled: Any) -> None:
        filled.drop_collection(C)
        assert not filled.has_collection(C)

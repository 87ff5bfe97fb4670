"""Recall attribution on a constructed case: each relevant document lost at its stage."""

from __future__ import annotations

from core.types import Stage
from eval.attribution import Outcome, attribute, attribute_query

RELEVANT = ["a", "b", "c", "d", "e"]
STAGES: dict[Stage, list[str]] = {
    Stage.DENSE: ["a", "x", "c", "g"],
    Stage.BM25: ["b", "y", "d"],
    Stage.HYBRID: ["a", "x", "b", "y", "c"],  # d is cut by the fusion limit
    Stage.RERANK: ["x", "b", "a", "y", "c"],
}


def test_each_relevant_document_gets_the_stage_that_lost_it() -> None:
    outcomes, cross = attribute_query(RELEVANT, STAGES, k=2)
    assert outcomes == {
        "a": Outcome.PUSHED_DOWN_BY_RERANK,  # hybrid rank 1, rerank rank 3
        "b": Outcome.FOUND,  # hybrid rank 3, lifted to 2 by the reranker
        "c": Outcome.RANKED_BELOW_K,  # fused at 5, stays at 5
        "d": Outcome.CUT_AT_FUSION,  # only in the BM25 leg, not in the fused list
        "e": Outcome.NOT_RETRIEVED,
    }
    assert cross == {
        "missed_by_dense": 3,  # b, d, e
        "missed_by_bm25": 3,  # a, c, e
        "only_dense": 2,  # a, c
        "only_bm25": 2,  # b, d
        "lifted_by_rerank": 1,  # b
    }


def test_without_a_reranker_the_hybrid_order_is_final() -> None:
    stages: dict[Stage, list[str]] = {s: d for s, d in STAGES.items() if s is not Stage.RERANK}
    outcomes, cross = attribute_query(RELEVANT, stages, k=2)
    assert outcomes["a"] == Outcome.FOUND
    assert outcomes["b"] == Outcome.RANKED_BELOW_K
    assert cross["lifted_by_rerank"] == 0


def test_totals_sum_over_queries() -> None:
    qrels = {"q1": dict.fromkeys(RELEVANT, 1), "q2": {"x": 1}, "q3": {"z": 1}}
    rankings = {"q1": STAGES, "q2": STAGES}  # q3 has no rankings at all
    result = attribute(qrels, rankings, k=2)
    assert result.totals["found"] == 2  # b in q1, x in q2
    assert result.totals["not_retrieved"] == 2  # e in q1, z in q3
    assert result.totals["cut_at_fusion"] == 1
    assert sum(result.totals[o.value] for o in Outcome) == 7  # every judged document once
    assert result.per_query["q3"] == {"z": "not_retrieved"}
    assert result.model_dump(mode="json")["k"] == 2

"""ranx metrics on a hand-computed run; ragas' ID-based metrics wired to document ids."""

from __future__ import annotations

import math

import pytest

from eval.metrics import IR_METRICS, ir_metrics, mean, ragas_id_metrics

QRELS = {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}, "q3": {"d9": 1}}
RANKINGS = {"q1": ["d4", "d1", "d2"], "q2": ["d5", "d6", "d3"], "q3": []}


def test_ranx_metrics_match_hand_computed_values() -> None:
    scores = ir_metrics(QRELS, RANKINGS, IR_METRICS)
    # q1: DCG = 1/log2(3) + 2/log2(4) (linear gain, as trec_eval); IDCG = 2/1 + 1/log2(3)
    dcg, idcg = 1 / math.log2(3) + 2 / 2, 2 + 1 / math.log2(3)
    assert scores["ndcg@10"]["q1"] == pytest.approx(dcg / idcg)
    assert scores["recall@100"]["q1"] == pytest.approx(1.0)
    assert scores["mrr@10"]["q1"] == pytest.approx(1 / 2)
    assert scores["map@100"]["q1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # q2: the one relevant document at rank 3
    assert scores["ndcg@10"]["q2"] == pytest.approx(1 / math.log2(4))
    assert scores["mrr@10"]["q2"] == pytest.approx(1 / 3)
    assert scores["map@100"]["q2"] == pytest.approx(1 / 3)
    # q3 retrieved nothing: every metric is 0, and it still counts in the mean
    assert all(scores[m]["q3"] == 0.0 for m in IR_METRICS)
    assert mean(scores["mrr@10"]) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)


def test_cutoffs_apply_to_the_document_ranking() -> None:
    deep = {"q1": [f"x{i}" for i in range(10)] + ["d1", "d2"]}
    scores = ir_metrics({"q1": QRELS["q1"]}, deep, ("ndcg@10", "recall@100", "mrr@10"))
    assert scores["ndcg@10"]["q1"] == 0.0
    assert scores["mrr@10"]["q1"] == 0.0
    assert scores["recall@100"]["q1"] == 1.0


def test_ragas_id_metrics_score_the_top_k_documents() -> None:
    scores = ragas_id_metrics(QRELS, RANKINGS, k=2)
    precision, recall = scores["id_context_precision@2"], scores["id_context_recall@2"]
    assert precision["q1"] == pytest.approx(1 / 2)  # [d4, d1]: one of two relevant
    assert recall["q1"] == pytest.approx(1 / 2)  # d1 of {d1, d2}
    assert precision["q2"] == 0.0
    assert recall["q2"] == 0.0
    assert math.isnan(precision["q3"])  # nothing retrieved: ragas says NaN, not 0
    assert recall["q3"] == 0.0
    assert mean(precision) == pytest.approx(0.25)  # NaN left out of the mean


def test_ragas_metrics_also_work_inside_a_running_event_loop() -> None:
    import asyncio

    async def inside() -> dict[str, dict[str, float]]:
        return ragas_id_metrics(QRELS, RANKINGS, k=3)

    scores = asyncio.run(inside())
    assert scores["id_context_recall@3"]["q1"] == 1.0

"""Failure categories from a trace and its feedback: one hand-built trace per category."""

from __future__ import annotations

from typing import Any

import pytest

from service.traces.diagnose import failure_categories


def _stage(*chunks: str, active: bool = True) -> dict[str, Any]:
    return {
        "active": active,
        "candidates": [
            {"chunk_id": c, "doc_id": c.split("#")[0], "rank": r, "score": 1.0 / r}
            for r, c in enumerate(chunks, 1)
        ],
    }


def _trace(judged: list[dict[str, Any]], **stages: Any) -> dict[str, Any]:
    return {
        "stages": {
            "dense": _stage("d#1", "fuse#1", "hy#1", "rr#1", "drop#1", "big#1", "inj#1"),
            "bm25": _stage("bm#1"),
            "hybrid": _stage("hy#1", "d#1", "rr#1", "drop#1", "big#1", "inj#1"),
            "rerank": _stage("d#1", "drop#1", "big#1", "inj#1", "rr#1"),
            **stages,
        },
        "pack": {
            "items": [{"chunk_id": "d#1", "doc_id": "d", "flags": []}],
            "dropped": [
                {"chunk_id": "drop#1", "doc_id": "drop", "reason": "stale"},
                {"chunk_id": "big#1", "doc_id": "big", "reason": "over_budget"},
                {"chunk_id": "inj#1", "doc_id": "inj", "reason": "injection"},
            ],
        },
        "feedback": [{"verdict": "rejected", "judgments": judged}],
    }


@pytest.mark.parametrize(
    ("judged", "category"),
    [
        ({"chunk_id": "nowhere#1", "label": "missing"}, "not_retrieved"),
        ({"chunk_id": "fuse#1", "label": "missing"}, "cut_at_fusion"),
        ({"chunk_id": "hy#1", "label": "missing"}, "pushed_down_by_rerank"),  # not reranked
        ({"chunk_id": "rr#1", "label": "relevant"}, "pushed_down_by_rerank"),  # 3 -> 5
        ({"doc_id": "drop", "label": "missing"}, "dropped_by_policy"),
        ({"chunk_id": "big#1", "label": "missing"}, "over_budget"),
        ({"chunk_id": "inj#1", "label": "missing"}, "injection_flagged"),
    ],
)
def test_each_lost_item_gets_its_category(judged: dict[str, Any], category: str) -> None:
    got = failure_categories(_trace([judged]))
    assert [f["category"] for f in got] == [category]
    assert got[0]["label"] == judged["label"]


def test_policy_drops_name_the_rule_and_below_cut_needs_no_rerank() -> None:
    got = failure_categories(_trace([{"doc_id": "drop", "label": "missing"}]))
    assert got[0]["rule"] == "stale" and got[0]["doc_id"] == "drop"
    no_rerank = {"rerank": {"active": False, "candidates": []}}
    got = failure_categories(_trace([{"chunk_id": "hy#1", "label": "missing"}], **no_rerank))
    assert got == [
        {"category": "ranked_below_cut", "hybrid_rank": 1, "chunk_id": "hy#1", "label": "missing"}
    ]


def test_packed_not_relevant_and_repeated_judgments_are_not_failures() -> None:
    judged = [
        {"chunk_id": "d#1", "label": "relevant"},  # packed: fine
        {"chunk_id": "bm#1", "label": "not_relevant"},  # not wanted anyway
        {"chunk_id": "big#1", "label": "missing"},
        {"chunk_id": "big#1", "label": "missing"},  # judged twice, counted once
    ]
    assert [f["category"] for f in failure_categories(_trace(judged))] == ["over_budget"]


def test_empty_pack_and_packed_injection_flags() -> None:
    empty = _trace([])
    empty["pack"]["items"] = []
    assert [f["category"] for f in failure_categories(empty)] == ["empty_pack"]
    flagged = _trace([])
    flagged["pack"]["items"] = [{"chunk_id": "x#1", "doc_id": "x", "flags": ["injection_suspect"]}]
    got = failure_categories(flagged)
    assert got == [
        {"category": "injection_flagged", "chunk_id": "x#1", "doc_id": "x", "packed": True}
    ]

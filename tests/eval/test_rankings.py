"""Chunks to documents: max-passage (first appearance) and the sum variant."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from eval.rankings import DocScore, doc_ranking, ranx_run_dict


def test_max_passage_ranks_documents_by_their_best_chunk() -> None:
    # chunk order: A's chunk, B's chunk, A's second chunk, C's chunk, B's second chunk
    assert doc_ranking(["A", "B", "A", "C", "B"]) == ["A", "B", "C"]


def test_sum_adds_a_documents_chunk_scores() -> None:
    docs = ["A", "B", "B", "C"]
    assert doc_ranking(docs, [0.9, 0.5, 0.5, 0.1], mode=DocScore.SUM) == ["B", "A", "C"]
    # ties keep the order of first appearance
    assert doc_ranking(["A", "B"], [1.0, 1.0], mode=DocScore.SUM) == ["A", "B"]


def test_sum_without_scores_is_an_error_naming_the_input() -> None:
    with pytest.raises(InvalidInputError, match="one score per chunk"):
        doc_ranking(["A"], None, mode=DocScore.SUM)
    with pytest.raises(InvalidInputError, match="valid: \\['max', 'sum'\\]"):
        DocScore.parse("mean")


def test_ranx_scores_keep_the_list_order() -> None:
    run = ranx_run_dict({"q": ["c", "a", "b"], "empty": []}, depth=2)
    assert run == {"q": {"c": 2.0, "a": 1.0}, "empty": {}}

"""The context stage of ``ragctx eval``: assembler vs the naive packer, per budget."""

from __future__ import annotations

from assembler.tokens import tiktoken_counter
from eval.context_stage import AssemblerContextScorer
from tests.assembler.builders import NOW, candidate, policy, words


def test_the_assembler_keeps_a_relevant_chunk_the_naive_packer_stops_before() -> None:
    # A huge first chunk fills the naive pack's budget; the relevant small one comes after.
    counter = tiktoken_counter("cl100k_base")
    big = candidate("big", text=words(600, seed="b"), score=0.9)
    small = candidate("rel", text=words(40, seed="r"), doc_id="relevant", score=0.5)
    scorer = AssemblerContextScorer(
        policy=policy(), counter=counter, now=NOW, budgets=(512,), top_k=50
    )
    scores = scorer("q", [big, small], {"relevant"})
    assert scores == {"assembler_recall@512": 1.0, "naive_recall@512": 0.0}


def test_scores_are_shares_per_budget() -> None:
    counter = tiktoken_counter("cl100k_base")
    cands = [candidate(f"c{i}", doc_id=f"d{i}", score=1.0 - i / 10) for i in range(4)]
    scorer = AssemblerContextScorer(policy=policy(), counter=counter, now=NOW, budgets=(512, 2048))
    scores = scorer("q", cands, {"d0", "d3", "missing"})
    assert set(scores) == {
        "assembler_recall@512",
        "naive_recall@512",
        "assembler_recall@2048",
        "naive_recall@2048",
    }
    assert scores["assembler_recall@2048"] == 2 / 3
    assert all(0.0 <= v <= 1.0 for v in scores.values())

"""The ``context`` stage: how much of the relevant evidence ends up inside the packed context.

For each query and each budget (512, 1024, 2048 tokens of cl100k_base by default), the share of
the query's relevant documents with a chunk inside the context (ID-based context recall, the
quantity ragas' ``IDBasedContextRecall`` computes), for the assembler under a policy and for the
naive baseline "take ranked chunks in order until the next one does not fit".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from assembler import Policy, TokenCounter, assemble
from core.types import Candidate
from eval.naive_packer import naive_pack, relevant_share
from eval.runner import ContextScorer

DEFAULT_BUDGETS = (512, 1024, 2048)


@dataclass(frozen=True, slots=True)
class AssemblerContextScorer:
    """A ``ContextScorer`` for ``eval.run``: assembler vs naive recall at each budget.

    ``top_k`` candidates are handed on, as the service hands on its ``top_k``.
    """

    policy: Policy
    counter: TokenCounter
    now: datetime
    budgets: Sequence[int] = DEFAULT_BUDGETS
    top_k: int = 50

    def __call__(
        self,
        query: str,  # noqa: ARG002 (ContextScorer passes it; no packing rule reads the question)
        candidates: Sequence[Candidate],
        relevant: Collection[str],
    ) -> Mapping[str, float]:
        """Per-query recall inside the packed context, per budget, for both packers."""
        head = list(candidates[: self.top_k])
        wanted = set(relevant)
        scores: dict[str, float] = {}
        for budget in self.budgets:
            ours = assemble(
                head, policy=self.policy, budget=budget, counter=self.counter, now=self.now
            )
            naive = naive_pack(head, budget=budget, counter=self.counter)
            scores[f"assembler_recall@{budget}"] = relevant_share(ours, wanted)
            scores[f"naive_recall@{budget}"] = relevant_share(naive, wanted)
        return scores


@dataclass(frozen=True, slots=True)
class CombinedScorer:
    """Several ``ContextScorer``s as one: their per-query numbers side by side."""

    scorers: Sequence[ContextScorer]

    def __call__(
        self, query: str, candidates: Sequence[Candidate], relevant: Collection[str]
    ) -> Mapping[str, float]:
        """Every scorer's numbers for one query (their keys do not overlap)."""
        scores: dict[str, float] = {}
        for scorer in self.scorers:
            scores.update(scorer(query, candidates, relevant))
        return scores

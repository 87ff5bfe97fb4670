"""Rule 3, priority: multiplicative boosts, pins, and the adjusted score they produce.

Scores keep their kind. A boost or a decay multiplies a score, which only means something on a
non-negative scale where larger is better: a reranker logit of -2 "boosted" by 1.5 would become
-3, i.e. worse. So an adjusted score is ``positive(score) * decay * boosts``, where
``positive`` is a monotone map of each kind onto [0, inf) (the logistic function for logits,
(1 + cos) / 2 for cosine), and its kind is recorded as ``adjusted-from-<kind>``. Adjusted
scores are compared only with adjusted scores from the same kind.
"""

from __future__ import annotations

import math

from assembler.policy_schema import Priority
from assembler.rules.match import selects
from core.types import Candidate, ScoreKind


def positive_score(score: float, kind: ScoreKind) -> float:
    """Map a score of ``kind`` monotonically onto [0, inf), so that factors can scale it."""
    if kind is ScoreKind.RERANK:
        # A numerically stable logistic: math.exp overflows for large negative logits.
        if score >= 0:
            return 1.0 / (1.0 + math.exp(-score))
        exp = math.exp(score)
        return exp / (1.0 + exp)
    if kind is ScoreKind.DENSE:
        return (1.0 + score) / 2.0
    return max(score, 0.0)  # BM25 and RRF are non-negative already


def boost_factor(rule: Priority, candidate: Candidate) -> float:
    """The product of every boost whose selector matches ``candidate`` (1.0 when none does)."""
    factor = 1.0
    for boost in rule.boosts:
        if selects(boost, candidate):
            factor *= boost.factor
    return factor


def adjusted_kind(kind: ScoreKind) -> str:
    """The label of a score adjusted by policy from a score of ``kind``."""
    return f"adjusted-from-{kind.value}"

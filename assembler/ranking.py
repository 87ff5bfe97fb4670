"""Rule 3's result: the packing order. Pins first, then by value within each score kind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from assembler.policy_schema import Policy
from assembler.rules.priority import adjusted_kind, positive_score
from core.types import Candidate, ScoreKind


@dataclass(frozen=True, slots=True)
class Ranked:
    """A candidate that survived rules 1-3, with its value and place in the packing order."""

    index: int
    candidate: Candidate
    score: float
    score_kind: str
    pinned: bool
    rank: int


def pin_order(policy: Policy, pinned: Sequence[Candidate]) -> dict[str, int]:
    """Pinned documents and their order: the policy's list, then the caller's extra pins."""
    order = {doc: position for position, doc in enumerate(policy.priority.pinned_doc_ids)}
    for candidate in pinned:  # docs the caller pinned beyond the policy's own, in given order
        order.setdefault(candidate.doc_id, len(order))
    return order


def rank(
    inputs: Sequence[Candidate],
    alive: Sequence[int],
    *,
    policy: Policy,
    pins: dict[str, int],
    factors: dict[int, float],
) -> tuple[list[Ranked], tuple[str, ...]]:
    """Order the candidates for packing and give each its (maybe adjusted) score.

    Pins come first, in pin order and then chunk order. The rest are ranked by value within
    their score kind; kinds keep the order in which retrieval ranked them, so scores of two
    kinds are never compared.

    Args:
        inputs: Every input candidate, by input position.
        alive: The positions that survived rules 1 and 2.
        policy: The policy (does it adjust scores?).
        pins: Pinned document ids and their order (see :func:`pin_order`).
        factors: Decay times boosts per position.

    Returns:
        The ranked candidates and notes for the trace.
    """
    adjust = policy.adjusts_scores
    tiers: dict[ScoreKind, int] = {}
    for index in alive:  # retrieval order decides between kinds; their scores never meet
        tiers.setdefault(inputs[index].score_kind, len(tiers))
    keyed: list[tuple[tuple[int, int, float, int], int, float, str]] = []
    for index in alive:
        candidate = inputs[index]
        kind = candidate.score_kind
        if adjust:
            value = positive_score(candidate.score, kind) * factors.get(index, 1.0)
            label = adjusted_kind(kind)
        else:
            value, label = candidate.score, kind.value
        if math.isnan(value):  # NaN compares false both ways and would scramble the sort
            value = -math.inf
        pin = pins.get(candidate.doc_id)
        if pin is not None:
            key = (0, pin, float(candidate.chunk_index), index)
        else:
            key = (1, tiers[kind], -value, index)
        keyed.append((key, index, value, label))
    keyed.sort(key=lambda entry: entry[0])
    ranked = [
        Ranked(index, inputs[index], value, label, inputs[index].doc_id in pins, rank)
        for rank, (_, index, value, label) in enumerate(keyed)
    ]
    notes: list[str] = []
    if len(tiers) > 1:
        kinds = ", ".join(kind.value for kind in tiers)
        notes.append(f"score kinds {kinds} are never compared: ranked by kind in retrieval order")
    if adjust:
        notes.append("scores adjusted by boosts and decay: " + ", ".join(map(adjusted_kind, tiers)))
    return ranked, tuple(notes)

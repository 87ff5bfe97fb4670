"""From ranked chunks to ranked documents: BEIR judges documents, retrieval returns chunks.

The mapping is max-passage (MaxP): a document's score at a stage is its best chunk's score
there, so documents rank in the order their first chunk appears in the chunk ranking; later
chunks of the same document add nothing. ``sum`` (SumP, a document scores the sum of its
chunks' scores in the list) is kept to measure against it; eval/README.md has the figures.

A document ranking is a list of document ids, best first; scores handed to ranx are derived
from the rank (``n - i``) so that ranx ranks exactly as the list does, ties included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import InvalidInputError
from core.types import Stage

__all__ = ["DocScore", "QueryRankings", "doc_ranking", "ranx_run_dict"]


class DocScore(StrEnum):
    """How a document's score at a stage comes from its chunks' scores."""

    MAX = "max"  # max-passage: best chunk (rank of first appearance)
    SUM = "sum"  # sum of the document's chunk scores within the stage's list

    @classmethod
    def parse(cls, value: str) -> DocScore:
        """Parse, listing the valid modes on error."""
        try:
            return cls(value)
        except ValueError as err:
            raise InvalidInputError(
                f"unknown document scoring {value!r}; valid: {[m.value for m in cls]}",
                field="doc_score",
                value=value,
            ) from err


def doc_ranking(
    doc_ids: Sequence[str],
    scores: Sequence[float] | None = None,
    *,
    mode: DocScore = DocScore.MAX,
) -> list[str]:
    """Documents in rank order from chunks in rank order (``doc_ids[i]`` owns chunk ``i``).

    Args:
        doc_ids: the document id of each chunk, best chunk first.
        scores: each chunk's score at the stage; needed by ``sum`` only.
        mode: ``max`` (first appearance) or ``sum`` (ties keep first appearance).

    Returns:
        Document ids, best first, each once.

    Raises:
        InvalidInputError: ``sum`` without one score per chunk.
    """
    if mode is DocScore.MAX:
        return list(dict.fromkeys(doc_ids))
    if scores is None or len(scores) != len(doc_ids):
        raise InvalidInputError(
            "sum document scoring needs one score per chunk; pass the stage's chunk scores",
            field="scores",
            value=None if scores is None else len(scores),
        )
    total: dict[str, float] = {}
    for doc, score in zip(doc_ids, scores, strict=True):
        total[doc] = total.get(doc, 0.0) + score
    first = {doc: i for i, doc in reversed(list(enumerate(doc_ids)))}
    return sorted(total, key=lambda d: (-total[d], first[d]))


@dataclass(frozen=True, slots=True)
class QueryRankings:
    """One query's document rankings per stage, full depth (before any metric cutoff).

    A stage that did not run (rerank without a trained reranker) is absent.
    """

    query_id: str
    stages: Mapping[Stage, Sequence[str]] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)


def ranx_run_dict(
    rankings: Mapping[str, Sequence[str]], *, depth: int | None = None
) -> dict[str, dict[str, float]]:
    """``{query: {doc: score}}`` for ranx, with rank-derived scores (best = highest).

    A query with no documents gets an empty entry; ``depth`` cuts each ranking.
    """
    run: dict[str, dict[str, float]] = {}
    for qid, docs in rankings.items():
        cut = list(docs if depth is None else docs[:depth])
        run[qid] = {doc: float(len(cut) - i) for i, doc in enumerate(cut)}
    return run

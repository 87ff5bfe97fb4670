"""Per-stage recall attribution: where each relevant document was lost, per query.

For every judged relevant document of a query, one outcome, looked up in stage order against
the top ``k`` documents that would be handed on:

* ``found``: in the final stage's top ``k`` (rerank when it ran, else hybrid);
* ``not_retrieved``: neither leg returned any chunk of it (within the leg limits);
* ``cut_at_fusion``: a leg returned it, but the fused list (``top_k`` chunks) does not hold it;
* ``ranked_below_k``: fusion kept it, below rank ``k``, and no reranker lifted it into the top k;
* ``pushed_down_by_rerank``: fusion ranked it in the top ``k``; the reranker pushed it out.

Counts that cut across those (a document can be in several): ``missed_by_dense`` and
``missed_by_bm25`` (absent from that leg), ``only_dense`` and ``only_bm25`` (found by one leg
alone), ``lifted_by_rerank`` (below ``k`` after fusion, in the top ``k`` after rerank).

A drop in a later run's ``found`` count points at the stage whose count rose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from core.types import Stage

__all__ = ["Attribution", "Outcome", "attribute", "attribute_query"]


class Outcome(StrEnum):
    """Where one relevant document ended up."""

    FOUND = "found"
    NOT_RETRIEVED = "not_retrieved"
    CUT_AT_FUSION = "cut_at_fusion"
    RANKED_BELOW_K = "ranked_below_k"
    PUSHED_DOWN_BY_RERANK = "pushed_down_by_rerank"


CROSS_COUNTS = ("missed_by_dense", "missed_by_bm25", "only_dense", "only_bm25", "lifted_by_rerank")


class Attribution(BaseModel):
    """Outcome counts over all queries (outcomes and cross counts, by name), and each query's
    outcome per relevant document (query id -> document id -> outcome)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int
    totals: dict[str, int]
    per_query: dict[str, dict[str, Outcome]] = Field(default_factory=dict)


def attribute_query(
    relevant: Sequence[str],
    stages: Mapping[Stage, Sequence[str]],
    *,
    k: int,
) -> tuple[dict[str, Outcome], dict[str, int]]:
    """One query's outcome per relevant document, and its cross-cutting counts.

    Args:
        relevant: the judged relevant document ids.
        stages: document rankings (full depth) for bm25, dense, hybrid and, if it ran, rerank.
        k: the hand-on cutoff.

    Returns:
        ``{doc_id: outcome}`` and ``{count name: n}``.
    """
    dense = set(stages.get(Stage.DENSE, ()))
    bm25 = set(stages.get(Stage.BM25, ()))
    hybrid = list(stages.get(Stage.HYBRID, ()))
    hybrid_rank = {d: i + 1 for i, d in enumerate(hybrid)}
    rerank_list = stages.get(Stage.RERANK)
    rerank_rank = None if rerank_list is None else {d: i + 1 for i, d in enumerate(rerank_list)}
    outcomes: dict[str, Outcome] = {}
    cross = dict.fromkeys(CROSS_COUNTS, 0)
    for doc in relevant:
        in_dense, in_bm25 = doc in dense, doc in bm25
        cross["missed_by_dense"] += not in_dense
        cross["missed_by_bm25"] += not in_bm25
        cross["only_dense"] += in_dense and not in_bm25
        cross["only_bm25"] += in_bm25 and not in_dense
        h = hybrid_rank.get(doc)
        final = h if rerank_rank is None else rerank_rank.get(doc)
        if final is not None and final <= k:
            outcome = Outcome.FOUND
            if rerank_rank is not None and (h is None or h > k):
                cross["lifted_by_rerank"] += 1
        elif not in_dense and not in_bm25 and h is None:
            outcome = Outcome.NOT_RETRIEVED
        elif h is None:
            outcome = Outcome.CUT_AT_FUSION
        elif h <= k:
            outcome = Outcome.PUSHED_DOWN_BY_RERANK
        else:
            outcome = Outcome.RANKED_BELOW_K
        outcomes[doc] = outcome
    return outcomes, cross


def attribute(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Mapping[Stage, Sequence[str]]],
    *,
    k: int,
) -> Attribution:
    """Attribution over every judged query (``rankings``: query id -> stage -> documents)."""
    # every outcome and cross count is listed, in this order, even when it stays 0
    totals = Counter(dict.fromkeys([o.value for o in Outcome], 0) | dict.fromkeys(CROSS_COUNTS, 0))
    per_query: dict[str, dict[str, Outcome]] = {}
    for qid, judged in qrels.items():
        outcomes, cross = attribute_query(sorted(judged), rankings.get(qid, {}), k=k)
        per_query[qid] = outcomes
        totals.update(outcomes.values())
        totals.update(cross)
    return Attribution(k=k, totals=dict(totals), per_query=per_query)

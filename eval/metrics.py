"""Scores per query: ranx's IR metrics and ragas' ID-based context precision and recall.

ranx computes nDCG@10 (linear gain, as trec_eval and BEIR), Recall@100, MRR@10 and MAP@100
over the document ranking of each stage. ragas' ``IDBasedContextPrecision`` and
``IDBasedContextRecall`` (no LLM) score the top ``k`` documents that would be handed on: the
share of them that is relevant, and the share of relevant documents among them.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = [
    "IR_METRICS",
    "RAGAS_METRICS",
    "ir_metrics",
    "mean",
    "ragas_id_metrics",
    "ragas_metric_names",
]

IR_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10", "map@100")
RAGAS_METRICS: tuple[str, ...] = ("id_context_precision", "id_context_recall")


def ragas_metric_names(k: int) -> tuple[str, str]:
    """Report keys of the two ragas metrics at cutoff ``k``."""
    return (f"id_context_precision@{k}", f"id_context_recall@{k}")


def ir_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = IR_METRICS,
) -> dict[str, dict[str, float]]:
    """Per-query ranx scores: ``{metric: {query_id: score}}`` for every judged query.

    A judged query missing from ``rankings``, or ranked empty, scores 0.
    """
    from ranx import Qrels, Run, evaluate

    from eval.rankings import ranx_run_dict

    run_dict = {q: d for q, d in ranx_run_dict(rankings).items() if d and q in qrels}
    scores: dict[str, dict[str, float]] = {m: dict.fromkeys(qrels, 0.0) for m in metrics}
    if not run_dict:
        return scores
    qrels_obj = Qrels.from_dict({q: dict(r) for q, r in qrels.items()})
    run = Run.from_dict(run_dict)
    with warnings.catch_warnings():
        # numba warns about an unsigned-to-signed cast inside ranx's nDCG; harmless.
        warnings.simplefilter("ignore")
        evaluate(qrels_obj, run, list(metrics), make_comparable=True)
    for metric in metrics:
        for qid, value in run.scores[metric].items():
            scores[metric][str(qid)] = float(value)
    return scores


def ragas_id_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    *,
    k: int,
) -> dict[str, dict[str, float]]:
    """Per-query ragas ID-based context precision and recall of each ranking's top ``k``.

    The retrieved ids are the top ``k`` documents; the reference ids are the judged relevant
    ones. A query that retrieved nothing gets NaN precision from ragas (reported as null, left
    out of means) and recall 0.
    """
    with warnings.catch_warnings():
        # ragas 0.4 points to ragas.metrics.collections, which does not have these yet.
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas import SingleTurnSample
        from ragas.metrics import IDBasedContextPrecision, IDBasedContextRecall

    precision, recall = IDBasedContextPrecision(), IDBasedContextRecall()
    qids = list(qrels)
    samples = [
        SingleTurnSample(
            retrieved_context_ids=_ids(rankings.get(q, ())[:k]),
            reference_context_ids=_ids(sorted(qrels[q])),
        )
        for q in qids
    ]

    async def score_all() -> list[Any]:
        jobs = [m.single_turn_ascore(s) for m in (precision, recall) for s in samples]
        return list(await asyncio.gather(*jobs))

    values = _run(score_all())
    p_name, r_name = ragas_metric_names(k)
    n = len(qids)
    return {
        p_name: {q: float(values[i]) for i, q in enumerate(qids)},
        r_name: {q: float(values[n + i]) for i, q in enumerate(qids)},
    }


def _ids(values: Sequence[str]) -> list[str | int]:
    return list(values)


def _run(coro: Coroutine[Any, Any, list[Any]]) -> list[Any]:
    """Run ``coro`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def mean(values: Mapping[str, float]) -> float | None:
    """Mean over queries, NaN (not computable for that query) left out; None if none left."""
    kept = [v for v in values.values() if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None

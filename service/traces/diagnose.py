"""Why an answer went wrong: failure categories computed from a trace and its feedback.

Each item a judge marked ``missing`` or ``relevant`` that is not in the pack is followed
through the recorded stages to the first place it was lost:

- ``not_retrieved``: neither dense nor BM25 returned it;
- ``cut_at_fusion``: a retriever returned it, hybrid fusion did not keep it;
- ``pushed_down_by_rerank``: fused, then ranked lower by the reranker, and not handed on;
- ``ranked_below_cut``: fused (and reranked) but ranked below the candidates handed on;
- ``dropped_by_policy``: the assembler dropped it under a rule (``rule`` names it);
- ``over_budget``: dropped because the budget was spent;
- ``injection_flagged``: dropped, or packed with a flag, as a suspected prompt injection.

``empty_pack`` is a failure of the whole trace: nothing was packed.
"""

from __future__ import annotations

from typing import Any

from assembler.packing import INJECTION_FLAG

_WANTED = ("missing", "relevant")
#: Every failure category, in the order a trace is lost along the pipeline.
CATEGORIES = (
    "not_retrieved",
    "cut_at_fusion",
    "ranked_below_cut",
    "pushed_down_by_rerank",
    "dropped_by_policy",
    "over_budget",
    "injection_flagged",
    "empty_pack",
)


def _matches(entry: dict[str, Any], judged: dict[str, Any]) -> bool:
    if judged.get("chunk_id") is not None:
        return bool(entry.get("chunk_id") == judged["chunk_id"])
    return bool(entry.get("doc_id") == judged.get("doc_id"))


def _best_rank(stage: Any, judged: dict[str, Any]) -> int | None:
    if not isinstance(stage, dict):
        return None
    ranks = [c["rank"] for c in stage.get("candidates") or [] if _matches(c, judged)]
    return min(ranks) if ranks else None


def _active(stage: Any) -> bool:
    return isinstance(stage, dict) and bool(stage.get("active", True))


def _lost(trace: dict[str, Any], judged: dict[str, Any]) -> dict[str, Any] | None:
    pack = trace.get("pack") or {}
    if any(_matches(i, judged) for i in pack.get("items") or []):
        return None
    for d in pack.get("dropped") or []:
        if _matches(d, judged):
            reason = d.get("reason")
            if reason == "over_budget":
                return {"category": "over_budget"}
            if reason == "injection":
                return {"category": "injection_flagged"}
            return {"category": "dropped_by_policy", "rule": reason}
    stages = trace.get("stages") or {}
    if _best_rank(stages.get("dense"), judged) is None and (
        _best_rank(stages.get("bm25"), judged) is None
    ):
        return {"category": "not_retrieved"}
    hybrid = stages.get("hybrid")
    fused = _best_rank(hybrid, judged)
    if _active(hybrid) and fused is None:
        return {"category": "cut_at_fusion"}
    rerank = stages.get("rerank")
    if _active(rerank) and fused is not None:
        reranked = _best_rank(rerank, judged)
        if reranked is None or reranked > fused:
            return {"category": "pushed_down_by_rerank", "hybrid_rank": fused, "rank": reranked}
    return {"category": "ranked_below_cut", "hybrid_rank": fused}


def failure_categories(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The failures of one trace (a :meth:`TraceStore.get` dict), one entry per lost item.

    Each entry has ``category``, the judged item (``chunk_id`` or ``doc_id``) and its
    ``label``; extra keys (``rule``, ranks) say more. Items judged several times count once.
    """
    out: list[dict[str, Any]] = []
    pack = trace.get("pack") or {}
    if not pack.get("items"):
        out.append({"category": "empty_pack"})
    for item in pack.get("items") or []:
        if INJECTION_FLAG in (item.get("flags") or []):
            out.append(
                {
                    "category": "injection_flagged",
                    "chunk_id": item.get("chunk_id"),
                    "doc_id": item.get("doc_id"),
                    "packed": True,
                }
            )
    seen: set[tuple[str, str]] = set()
    for fb in trace.get("feedback") or []:
        for judged in fb.get("judgments") or []:
            if judged.get("label") not in _WANTED:
                continue
            key = (
                ("chunk_id", judged["chunk_id"])
                if judged.get("chunk_id")
                else (
                    "doc_id",
                    judged.get("doc_id") or "",
                )
            )
            if key in seen:
                continue
            seen.add(key)
            lost = _lost(trace, judged)
            if lost is not None:
                out.append({**lost, key[0]: key[1], "label": judged["label"]})
    return out

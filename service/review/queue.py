"""The review queue: which of a tenant's traces a person should look at first, and why.

Each trace gets the reasons it needs review (:func:`reasons`), most urgent first:

- ``rejected``: a judge already rejected the answer;
- ``empty_pack`` / ``nearly_empty_pack``: nothing packed, or at most :data:`NEARLY_EMPTY_ITEMS`
  item;
- ``injection``: a packed item carries the injection flag, or one was dropped as an injection;
- ``top_dropped_over_budget``: a candidate ranked in the top :data:`TOP_RANKS` of the final
  ranking (rerank when it ran, else hybrid) was dropped because the budget was spent;
- ``close_top_scores``: the two best candidates of the last scoring stage (rerank when it ran,
  else dense cosine) are within :data:`CLOSE_MARGIN` of each other (absolute score difference);
- ``sample``: none of the above, and the trace is in a fixed 1-in-:data:`SAMPLE_EVERY` sample
  of ordinary traffic (by its id's sha256, so the sample is stable between page loads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assembler.packing import INJECTION_FLAG
from service.traces.diagnose import failure_categories

NEARLY_EMPTY_ITEMS = 1
TOP_RANKS = 3
CLOSE_MARGIN = 0.02
SAMPLE_EVERY = 10

REASONS: tuple[str, ...] = (
    "rejected",
    "empty_pack",
    "nearly_empty_pack",
    "injection",
    "top_dropped_over_budget",
    "close_top_scores",
    "sample",
)


def _stage(trace: dict[str, Any], name: str) -> dict[str, Any] | None:
    stage = (trace.get("stages") or {}).get(name)
    if isinstance(stage, dict) and stage.get("active", True) and stage.get("candidates"):
        return stage
    return None


def final_ranking(trace: dict[str, Any]) -> dict[str, Any] | None:
    """The stage whose order the assembler received: rerank when it ran, else hybrid."""
    return _stage(trace, "rerank") or _stage(trace, "hybrid")


def top_gap(trace: dict[str, Any]) -> float | None:
    """Score of the best candidate minus the second's, in the last scoring stage."""
    stage = _stage(trace, "rerank") or _stage(trace, "dense")
    if stage is None:
        return None
    scores = sorted(
        (float(c["score"]) for c in stage["candidates"] if c.get("score") is not None),
        reverse=True,
    )
    return scores[0] - scores[1] if len(scores) >= 2 else None


def reasons(trace: dict[str, Any]) -> list[str]:
    """Why ``trace`` (a :meth:`TraceStore.list` dict) needs a person, most urgent first."""
    out: list[str] = []
    pack = trace.get("pack") or {}
    items = pack.get("items") or []
    dropped = pack.get("dropped") or []
    if any(f.get("verdict") == "rejected" for f in trace.get("feedback") or []):
        out.append("rejected")
    if not items:
        out.append("empty_pack")
    elif len(items) <= NEARLY_EMPTY_ITEMS:
        out.append("nearly_empty_pack")
    if any(INJECTION_FLAG in (i.get("flags") or []) for i in items) or any(
        d.get("reason") == "injection" for d in dropped
    ):
        out.append("injection")
    final = final_ranking(trace)
    if final is not None:
        top = {
            c["chunk_id"] for c in final["candidates"] if c.get("rank", TOP_RANKS + 1) <= TOP_RANKS
        }
        if any(d.get("reason") == "over_budget" and d.get("chunk_id") in top for d in dropped):
            out.append("top_dropped_over_budget")
    gap = top_gap(trace)
    if gap is not None and gap < CLOSE_MARGIN:
        out.append("close_top_scores")
    if (
        not out
        and int(hashlib.sha256(str(trace["id"]).encode()).hexdigest(), 16) % SAMPLE_EVERY == 0
    ):
        out.append("sample")
    return out


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One row of the queue."""

    trace: dict[str, Any]
    reasons: list[str]
    failures: list[str]

    @property
    def urgency(self) -> int:
        return min((REASONS.index(r) for r in self.reasons), default=len(REASONS))


def build_queue(
    traces: Iterable[dict[str, Any]],
    *,
    policy: str | None = None,
    failure: str | None = None,
    unjudged: bool = False,
    everything: bool = False,
) -> list[QueueEntry]:
    """The traces that need review, most urgent first (newest first within a reason).

    ``policy`` keeps traces whose policy version is ``policy`` or starts with ``policy@``;
    ``failure`` keeps traces with that failure category; ``everything`` keeps traces with no
    reason too.
    """
    entries: list[QueueEntry] = []
    for trace in traces:
        version = trace.get("policy_version") or ""
        if policy and version != policy and not version.startswith(f"{policy}@"):
            continue
        if unjudged and trace.get("feedback"):
            continue
        cats = sorted({f["category"] for f in failure_categories(trace)})
        if failure and failure not in cats:
            continue
        why = reasons(trace)
        if why or everything:
            entries.append(QueueEntry(trace=trace, reasons=why, failures=cats))
    # the store lists newest first; sorted() is stable, so that order holds within a reason
    return sorted(entries, key=lambda e: e.urgency)


def candidate_rows(trace: dict[str, Any], stage_names: Sequence[str]) -> list[dict[str, Any]]:
    """Every candidate of the trace once: its rank and score per stage, and what became of it
    (``packed``, ``dropped`` with the reason, or ``not handed on``), in final-ranking order."""
    rows: dict[str, dict[str, Any]] = {}
    stages = trace.get("stages") or {}
    for name in stage_names:
        stage = stages.get(name)
        if not isinstance(stage, dict):
            continue
        for c in stage.get("candidates") or []:
            row = rows.setdefault(
                c["chunk_id"], {"chunk_id": c["chunk_id"], "doc_id": c.get("doc_id"), "ranks": {}}
            )
            row["ranks"][name] = (c.get("rank"), c.get("score"))
    pack = trace.get("pack") or {}
    packed = {i["chunk_id"]: i for i in pack.get("items") or []}
    dropped = {d["chunk_id"]: d for d in pack.get("dropped") or []}
    for chunk_id in list(packed) + list(dropped):
        source = packed.get(chunk_id) or dropped[chunk_id]
        rows.setdefault(
            chunk_id, {"chunk_id": chunk_id, "doc_id": source.get("doc_id"), "ranks": {}}
        )
    for chunk_id, row in rows.items():
        if chunk_id in packed:
            row["outcome"], row["detail"] = "packed", None
        elif chunk_id in dropped:
            row["outcome"] = f"dropped: {dropped[chunk_id].get('reason')}"
            row["detail"] = dropped[chunk_id].get("detail")
        else:
            row["outcome"], row["detail"] = "not handed on", None
    final = final_ranking(trace)
    order = {c["chunk_id"]: c["rank"] for c in (final or {}).get("candidates") or []}
    return sorted(rows.values(), key=lambda r: (order.get(r["chunk_id"], 10**9), r["chunk_id"]))

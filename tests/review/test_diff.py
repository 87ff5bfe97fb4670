"""The policy diff's bookkeeping, without a server: the newest judgment of a chunk or its
document wins, judged chunks gained and lost, drop reasons that changed, the summary.

The new packs here are stand-ins with only the fields the diff reads (``items[].chunk_id``,
``dropped[].chunk_id / doc_id / reason``); the HTTP tests replay real ones."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from assembler.types import DropReason
from service.review.diff import diff_summary, drop_changes, judged_labels, trace_change
from service.traces.replay import Replayed, TraceDiff


def _pack(items: list[str], dropped: dict[str, DropReason]) -> Any:
    return SimpleNamespace(
        items=[SimpleNamespace(chunk_id=c) for c in items],
        dropped=[
            SimpleNamespace(chunk_id=c, doc_id=f"doc-{c}", reason=r) for c, r in dropped.items()
        ],
    )


TRACE: dict[str, Any] = {
    "id": "t1",
    "pack": {
        "items": [{"chunk_id": "a", "doc_id": "doc-a"}, {"chunk_id": "b", "doc_id": "doc-b"}],
        "dropped": [
            {"chunk_id": "c", "doc_id": "doc-c", "reason": "over_budget"},
            {"chunk_id": "d", "doc_id": "doc-d", "reason": "duplicate"},
            {"chunk_id": "e", "doc_id": "doc-e", "reason": "stale"},
        ],
    },
    "feedback": [
        {
            "judgments": [
                {"chunk_id": "a", "label": "not_relevant"},
                {"doc_id": "doc-x", "label": "missing"},
            ]
        },
        {
            "judgments": [
                {"chunk_id": "a", "label": "relevant"},
                {"doc_id": "doc-b", "label": "relevant"},
            ]
        },
    ],
}


def test_the_newest_judgment_wins_and_missing_counts_as_relevant() -> None:
    chunks, docs = judged_labels(TRACE)
    assert chunks == {"a": "relevant"}
    assert docs == {"doc-x": "relevant", "doc-b": "relevant"}


def test_drop_reasons_that_changed_for_chunks_packed_in_neither_pack() -> None:
    # c: over_budget -> excluded; d: duplicate -> duplicate (same); e: stale -> not handed on;
    # f: new, dropped as injection; b: packed before, dropped now (the diff's "removed")
    new = _pack(["a", "x1"], {"c": DropReason.EXCLUDED, "d": DropReason.DUPLICATE,
                              "f": DropReason.INJECTION, "b": DropReason.EXCLUDED})  # fmt: skip
    got = {d["chunk_id"]: (d["before"], d["after"]) for d in drop_changes(TRACE["pack"], new)}
    assert got == {
        "c": ("over_budget", "excluded"),
        "e": ("stale", "not handed on"),
        "f": ("not handed on", "injection"),
    }


def test_judged_chunks_gained_and_lost_and_the_summary() -> None:
    diff = TraceDiff(
        trace_id="t1",
        tenant="acme",
        collection="docs",
        status="changed",
        added=[{"chunk_id": "x1", "doc_id": "doc-x", "position": 2}],
        removed=[
            {"chunk_id": "a", "doc_id": "doc-a", "position": 1, "reason": "excluded"},
            {"chunk_id": "b", "doc_id": "doc-b", "position": 2, "reason": "excluded"},
        ],
        tokens_before=100,
        tokens_after=80,
    )
    change = trace_change(TRACE, Replayed(diff, cast(Any, _pack(["x1"], {}))))
    assert change.gained == {"relevant": ["x1"]}  # its document was judged missing
    assert change.lost == {"relevant": ["a", "b"]}  # a's own judgment; b by its document
    failed = trace_change(
        {"id": "t2", "feedback": []},
        Replayed(TraceDiff(trace_id="t2", tenant="acme", collection="docs", status="error")),
    )
    summary = diff_summary([change, failed])
    assert summary["traces"] == 2 and summary["changed"] == 1 and summary["error"] == 1
    assert summary["judged"] == 1
    assert (summary["relevant_gained"], summary["relevant_lost"]) == (1, 2)
    assert (summary["tokens_before"], summary["tokens_after"]) == (100, 80)

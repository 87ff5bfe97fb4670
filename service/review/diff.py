"""The policy diff view: what a candidate policy would pack instead of what each trace recorded.

Built on the replay (:func:`service.traces.replay.replay`, what ``ragctx eval replay --policy``
runs): each trace's request is re-run under the candidate policy, and the page shows per trace
the chunks added, removed and reordered, the tokens, and the drop reasons that changed. The
summary counts traces changed and unchanged and, where the trace store holds judgments, the
judged chunks the candidate gains or loses:

- a chunk's label is its own newest chunk judgment, else its document's newest judgment
  (``missing`` counts as ``relevant``: a judge said the answer needed that document);
- *gained* chunks are packed by the candidate and were not recorded as packed; *lost* ones the
  other way round.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from assembler import ContextPack
from service.traces.replay import Replayed, TraceDiff

MAX_DIFF_TRACES = 50  # traces one diff page replays
NOT_HANDED_ON = "not handed on"  # neither packed nor dropped: retrieval did not hand it on


def judged_labels(trace: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The newest label of each judged chunk and document of ``trace``'s feedback."""
    chunks: dict[str, str] = {}
    docs: dict[str, str] = {}
    for feedback in trace.get("feedback") or []:  # oldest first: later judgments win
        for j in feedback.get("judgments") or []:
            label = "relevant" if j.get("label") == "missing" else str(j.get("label"))
            if j.get("chunk_id"):
                chunks[str(j["chunk_id"])] = label
            elif j.get("doc_id"):
                docs[str(j["doc_id"])] = label
    return chunks, docs


@dataclass(frozen=True, slots=True)
class TraceChange:
    """One trace's row of the diff page."""

    trace: dict[str, Any]
    diff: TraceDiff
    # chunk_id, doc_id, before, after
    drop_changes: list[dict[str, Any]] = field(default_factory=list)
    gained: dict[str, list[str]] = field(default_factory=dict)  # label -> chunk ids
    lost: dict[str, list[str]] = field(default_factory=dict)

    @property
    def judged(self) -> bool:
        return any(f.get("judgments") for f in self.trace.get("feedback") or [])


def drop_changes(recorded: dict[str, Any], pack: ContextPack) -> list[dict[str, Any]]:
    """Chunks packed in neither pack whose drop reason changed (``not handed on`` when a pack
    did not have them as candidates at all); the packed ones are in the diff's added/removed."""
    packed = {str(i["chunk_id"]) for i in recorded.get("items") or []}
    packed |= {item.chunk_id for item in pack.items}
    before = {str(d["chunk_id"]): d for d in recorded.get("dropped") or []}
    after = {d.chunk_id: d for d in pack.dropped}
    out: list[dict[str, Any]] = []
    for chunk in sorted(set(before) | set(after)):
        if chunk in packed:
            continue
        old = str(before[chunk].get("reason")) if chunk in before else NOT_HANDED_ON
        new = after[chunk].reason.value if chunk in after else NOT_HANDED_ON
        if old != new:
            doc = after[chunk].doc_id if chunk in after else before[chunk].get("doc_id")
            out.append({"chunk_id": chunk, "doc_id": doc, "before": old, "after": new})
    return out


def trace_change(trace: dict[str, Any], replayed: Replayed) -> TraceChange:
    """The page's row for one replayed trace."""
    diff = replayed.diff
    if replayed.pack is None:
        return TraceChange(trace=trace, diff=diff)
    chunk_labels, doc_labels = judged_labels(trace)

    def label(entry: dict[str, Any]) -> str | None:
        return chunk_labels.get(str(entry["chunk_id"])) or doc_labels.get(str(entry.get("doc_id")))

    gained: dict[str, list[str]] = {}
    lost: dict[str, list[str]] = {}
    for entries, into in ((diff.added, gained), (diff.removed, lost)):
        for entry in entries:
            found = label(entry)
            if found is not None:
                into.setdefault(found, []).append(str(entry["chunk_id"]))
    return TraceChange(
        trace=trace,
        diff=diff,
        drop_changes=drop_changes(trace.get("pack") or {}, replayed.pack),
        gained=gained,
        lost=lost,
    )


def diff_summary(changes: list[TraceChange]) -> dict[str, Any]:
    """Traces per status, and judged chunks gained and lost per label, over the page."""
    statuses = Counter(c.diff.status for c in changes)
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    counted = [c.diff for c in changes if c.diff.token_change is not None]
    for c in changes:
        gained.update({k: len(v) for k, v in c.gained.items()})
        lost.update({k: len(v) for k, v in c.lost.items()})
    return {
        "traces": len(changes),
        **{s: statuses.get(s, 0) for s in ("changed", "unchanged", "skipped", "error")},
        "judged": sum(1 for c in changes if c.judged),
        "relevant_gained": gained.get("relevant", 0),
        "relevant_lost": lost.get("relevant", 0),
        "not_relevant_gained": gained.get("not_relevant", 0),
        "not_relevant_lost": lost.get("not_relevant", 0),
        # over the traces replayed with a token count before and after
        "tokens_before": sum(d.tokens_before or 0 for d in counted),
        "tokens_after": sum(d.tokens_after or 0 for d in counted),
    }

"""Replay recorded requests against the current index and policies; diff the packed context.

:func:`replay_trace` re-runs one trace's recorded request (query, collection, budget, encoding,
top_k, groups, filters) through the same pipeline as ``/v1/context`` (``service.context``
``prepare`` and ``run_pipeline``), as the trace's tenant with its recorded groups, and
:func:`diff_packs` compares the new pack with the recorded one: chunks added (with their new
position), removed (with the reason the new pack drops them, or ``not retrieved``), reordered
(old and new position) and the token change. :func:`replay` hands back the new pack as well
(the review console's policy diff view reads its drops). Replays are never recorded as traces.

Not imported by ``service.traces`` itself: it needs ``service.context``, which needs the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from assembler import ContextPack
from core.errors import RagctxError
from core.types import SearchFilters
from service.runtime import Runtime

Status = Literal["unchanged", "changed", "skipped", "error"]
NOT_RETRIEVED = "not retrieved"


@dataclass(frozen=True, slots=True)
class TraceDiff:
    """What changed in one trace's packed context when it was replayed."""

    trace_id: str
    tenant: str
    collection: str
    status: Status
    policy_before: str | None = None
    policy_after: str | None = None
    added: list[dict[str, Any]] = field(default_factory=list)  # chunk_id, doc_id, position
    removed: list[dict[str, Any]] = field(default_factory=list)  # chunk_id, doc_id, reason
    reordered: list[dict[str, Any]] = field(default_factory=list)  # chunk_id, doc_id, old, new
    tokens_before: int | None = None
    tokens_after: int | None = None
    error: str | None = None

    @property
    def token_change(self) -> int | None:
        if self.tokens_before is None or self.tokens_after is None:
            return None
        return self.tokens_after - self.tokens_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "tenant": self.tenant,
            "collection": self.collection,
            "status": self.status,
            "policy_before": self.policy_before,
            "policy_after": self.policy_after,
            "added": self.added,
            "removed": self.removed,
            "reordered": self.reordered,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "token_change": self.token_change,
            "error": self.error,
        }


def diff_packs(
    recorded: dict[str, Any], pack: ContextPack, candidates: set[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Added, removed and reordered chunks between a recorded pack (a trace's ``pack``) and a
    new one. Positions are 1-based places in the pack. A chunk counts as reordered when its
    order among the chunks in both packs changed (not when an addition or removal only shifted
    it). ``candidates``: the chunk ids the new retrieval returned, to tell ``not retrieved``
    from ``not packed``."""
    old = [str(i["chunk_id"]) for i in recorded.get("items") or []]
    old_docs = {str(i["chunk_id"]): i.get("doc_id") for i in recorded.get("items") or []}
    new = [item.chunk_id for item in pack.items]
    old_pos = {c: n for n, c in enumerate(old, start=1)}
    new_pos = {c: n for n, c in enumerate(new, start=1)}
    merged_into = {
        part: item.chunk_id
        for item in pack.items
        for part in (item.chunk_ids or ())
        if part != item.chunk_id
    }
    dropped = {d.chunk_id: d for d in pack.dropped}

    added = [
        {"chunk_id": item.chunk_id, "doc_id": item.doc_id, "position": new_pos[item.chunk_id]}
        for item in pack.items
        if item.chunk_id not in old_pos
    ]
    removed: list[dict[str, Any]] = []
    for chunk in old:
        if chunk in new_pos:
            continue
        entry: dict[str, Any] = {
            "chunk_id": chunk,
            "doc_id": old_docs.get(chunk),
            "position": old_pos[chunk],
        }
        if chunk in dropped:
            entry["reason"] = dropped[chunk].reason.value
            if dropped[chunk].detail:
                entry["detail"] = dropped[chunk].detail
        elif chunk in merged_into:
            entry["reason"] = f"merged into {merged_into[chunk]}"
        elif candidates is not None and chunk in candidates:
            entry["reason"] = "not packed"
        else:
            entry["reason"] = NOT_RETRIEVED
        removed.append(entry)
    both_old = [c for c in old if c in new_pos]
    both_new = [c for c in new if c in old_pos]
    reordered = [
        {
            "chunk_id": chunk,
            "doc_id": old_docs.get(chunk),
            "old": old_pos[chunk],
            "new": new_pos[chunk],
        }
        for rank, chunk in enumerate(both_old)
        if both_new[rank] != chunk
    ]
    return added, removed, reordered


@dataclass(frozen=True, slots=True)
class Replayed:
    """One replayed trace: the diff, and the new pack (None when skipped or failed)."""

    diff: TraceDiff
    pack: ContextPack | None = None


def replay_trace(
    trace: dict[str, Any], runtime: Runtime, *, policy: str | None = None
) -> TraceDiff:
    """Re-run one trace (a :meth:`TraceStore.get` dict) and diff its pack; a trace that cannot
    be replayed (no query text, a collection since deleted, a request the current settings
    refuse) comes back as ``skipped`` or ``error`` with the reason, never as an exception."""
    return replay(trace, runtime, policy=policy).diff


def replay(trace: dict[str, Any], runtime: Runtime, *, policy: str | None = None) -> Replayed:
    """:func:`replay_trace`, with the new pack. ``runtime`` may be a server's: the replay is
    run without its trace writer, so it is not recorded."""
    from pydantic import ValidationError

    from core.errors import validation_message
    from service.api.schemas import ContextRequest
    from service.auth import ApiKey
    from service.context import prepare, run_pipeline

    runtime = replace(runtime, traces=None)  # replays are not recorded as traces
    request: dict[str, Any] = trace.get("request") or {}
    base = {
        "trace_id": trace["id"],
        "tenant": trace["tenant"],
        "collection": trace["collection"],
        "policy_before": trace.get("policy_version"),
    }
    query = trace.get("query") or request.get("query")
    if not query:
        return Replayed(
            TraceDiff(
                **base,
                status="skipped",
                error="no query text (recorded with RAGCTX_TRACE_TEXT off)",
            )
        )
    groups = [str(g) for g in request.get("groups") or []]
    recorded = trace.get("pack") or {}
    try:
        body = ContextRequest.model_validate(
            {
                "query": None if request.get("query_source") == "conversation" else query,
                "messages": request.get("messages") or None,
                "items": request.get("items") or None,
                "format": request.get("format", "openai"),
                "budget_tokens": request.get("budget_tokens", recorded.get("budget_tokens")),
                "encoding": request.get("encoding", "cl100k_base"),
                "policy": policy or request.get("policy"),
                "collection": request.get("collection") or trace["collection"],
                "top_k": request.get("top_k", 50),
                "groups": groups,
            }
        )
        grant = ApiKey(id="replay", sha256="", tenant=trace["tenant"], groups=tuple(groups))
        prepared = replace(prepare(body, grant, runtime), filters=_filters(request.get("filters")))
        answer = run_pipeline(prepared, runtime, route="replay")
    except ValidationError as err:
        return Replayed(TraceDiff(**base, status="error", error=validation_message(err)))
    except RagctxError as err:
        return Replayed(TraceDiff(**base, status="error", error=str(err)))
    except (TypeError, ValueError) as err:  # a recorded field this code cannot read back
        error = f"unreadable recorded request: {err}"
        return Replayed(TraceDiff(**base, status="error", error=error))
    added, removed, reordered = diff_packs(
        recorded, answer.pack, {c.chunk_id for c in answer.retrieved.candidates}
    )
    ident = answer.response.policy
    before = recorded.get("tokens")
    changed = bool(added or removed or reordered) or before != answer.pack.tokens
    diff = TraceDiff(
        **{**base, "policy_after": f"{ident.name}@{ident.version}"},
        status="changed" if changed else "unchanged",
        added=added,
        removed=removed,
        reordered=reordered,
        tokens_before=before,
        tokens_after=answer.pack.tokens,
    )
    return Replayed(diff, answer.pack)


def _filters(raw: Any) -> SearchFilters:
    """The recorded ``SearchFilters`` (JSON of the dataclass) back as the dataclass."""
    if not isinstance(raw, dict):
        return SearchFilters()

    def when(value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(str(value))

    return SearchFilters(
        sources=tuple(raw.get("sources") or ()),
        exclude_sources=tuple(raw.get("exclude_sources") or ()),
        tags=tuple(raw.get("tags") or ()),
        exclude_doc_ids=tuple(raw.get("exclude_doc_ids") or ()),
        updated_after=when(raw.get("updated_after")),
        updated_before=when(raw.get("updated_before")),
    )


def summary(diffs: list[TraceDiff]) -> dict[str, int]:
    """How many traces were unchanged, changed, skipped and failed to replay."""
    counts = {"traces": len(diffs), "unchanged": 0, "changed": 0, "skipped": 0, "error": 0}
    for d in diffs:
        counts[d.status] += 1
    return counts

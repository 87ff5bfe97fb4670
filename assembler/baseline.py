"""The naive baseline the assembler is measured against in ``ragctx eval``.

"Take ranked chunks in order until the next one does not fit": no rules, no skipping, rendered
by the same renderer, so the two packs are compared on equal terms (same delimiters, same
citations list, same token counting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean
from time import perf_counter

from assembler import render
from assembler.pipeline import assemble
from assembler.policy_schema import Policy
from assembler.tokens import TokenCounter
from assembler.types import (
    Citation,
    CitationFormat,
    ContextItem,
    ContextPack,
    Dropped,
    DropReason,
    PolicyIdentity,
    StepTrace,
)
from retrieval.types import Candidate

BASELINE_POLICY = PolicyIdentity(name="naive-baseline", version="1")


def _item(candidate: Candidate, number: int) -> ContextItem:
    return ContextItem(
        citation=number,
        chunk_id=candidate.chunk_id,
        doc_id=candidate.doc_id,
        source=candidate.source,
        path=candidate.path,
        title=candidate.title,
        section=candidate.section,
        text=candidate.text,
        tokens=0,
        score=candidate.score,
        score_kind=candidate.score_kind.value,
        updated_at=candidate.updated_at,
        chunk_ids=(candidate.chunk_id,),
    )


def naive_pack(
    candidates: Sequence[Candidate],
    *,
    budget: int,
    counter: TokenCounter,
    fmt: CitationFormat = CitationFormat.XML,
) -> ContextPack:
    """Pack candidates in rank order and stop at the first one that does not fit.

    Each prefix is rendered and counted in full, so the result is exact (and slow: this is a
    baseline for quality, not a code path).

    Args:
        candidates: Retrieval's candidates, best first.
        budget: Tokens the rendered context may use.
        counter: Counts tokens in the caller's model encoding.
        fmt: The citation format, the same as the policy it is compared with.

    Returns:
        A pack whose ``dropped`` lists every candidate after the stop as ``over_budget``.

    Example:
        >>> naive = naive_pack(candidates, budget=512, counter=tiktoken_counter("cl100k_base"))
        >>> naive.tokens <= 512
        True
    """
    started = perf_counter()
    items: list[ContextItem] = []
    context, tokens = "", 0
    for candidate in candidates:
        trial = [*items, _item(candidate, len(items) + 1)]
        rendered = render.render(trial, fmt=fmt, include_list=True)
        count = counter.count(rendered)
        if count > budget:
            break
        items, context, tokens = trial, rendered, count
    stop = len(items)
    dropped = tuple(
        Dropped(c.chunk_id, c.doc_id, DropReason.OVER_BUDGET, "naive: an earlier chunk did not fit")
        for c in candidates[stop:]
    )
    ms = round((perf_counter() - started) * 1000, 3)
    return ContextPack(
        context=context,
        tokens=tokens,
        budget=budget,
        items=tuple(items),
        citations=tuple(
            Citation(
                number=item.citation,
                doc_id=item.doc_id,
                chunk_ids=item.chunk_ids,
                source=item.source,
                path=item.path,
                title=item.title,
                section=item.section,
                updated_at=item.updated_at,
            )
            for item in items
        ),
        dropped=dropped,
        trace=(StepTrace("naive", len(candidates), len(items), ms),),
        policy=BASELINE_POLICY,
        encoding=counter.name,
    )


def relevant_share(pack: ContextPack, relevant_doc_ids: set[str]) -> float:
    """The share of relevant documents with at least one chunk inside the packed context.

    Args:
        pack: A pack from ``assemble`` or ``naive_pack``.
        relevant_doc_ids: The query's relevant documents (from qrels).

    Returns:
        A number in [0, 1]; 0 when there are no relevant documents.
    """
    if not relevant_doc_ids:
        return 0.0
    packed = {item.doc_id for item in pack.items}
    return len(packed & relevant_doc_ids) / len(relevant_doc_ids)


@dataclass(frozen=True, slots=True)
class ContextQuery:
    """One evaluation query: its text, retrieval's candidates, and its relevant documents."""

    query: str
    candidates: Sequence[Candidate]
    relevant_doc_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ContextShare:
    """Mean share of relevant documents inside the context at one budget, both ways."""

    budget: int
    assembler: float
    naive: float
    queries: int


def context_shares(
    queries: Sequence[ContextQuery],
    *,
    policy: Policy,
    counter: TokenCounter,
    now: datetime,
    budgets: Sequence[int] = (512, 1024, 2048),
) -> list[ContextShare]:
    """The context stage of ``ragctx eval``: the assembler against the naive baseline.

    Queries without relevant documents are skipped (their share is undefined).

    Args:
        queries: The evaluation queries with their candidates and relevant documents.
        policy: The policy the assembler packs with; the baseline renders in its format.
        counter: Counts tokens (the eval uses ``cl100k_base``).
        now: The clock for freshness.
        budgets: Token budgets to compare at.

    Returns:
        One row per budget, in the given order.

    Example:
        >>> rows = context_shares(queries, policy=policy, counter=counter, now=now)
        >>> all(row.assembler >= row.naive for row in rows)
        True
    """
    judged = [query for query in queries if query.relevant_doc_ids]
    rows: list[ContextShare] = []
    for budget in budgets:
        ours: list[float] = []
        naive: list[float] = []
        for query in judged:
            relevant = set(query.relevant_doc_ids)
            packed = assemble(
                query.candidates,
                policy=policy,
                budget=budget,
                counter=counter,
                now=now,
            )
            ours.append(relevant_share(packed, relevant))
            baseline = naive_pack(
                query.candidates, budget=budget, counter=counter, fmt=policy.citations.format
            )
            naive.append(relevant_share(baseline, relevant))
        rows.append(
            ContextShare(
                budget=budget,
                assembler=fmean(ours) if ours else 0.0,
                naive=fmean(naive) if naive else 0.0,
                queries=len(judged),
            )
        )
    return rows


__all__ = [
    "ContextQuery",
    "ContextShare",
    "context_shares",
    "naive_pack",
    "relevant_share",
]

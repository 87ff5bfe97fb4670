"""The naive packer the assembler is measured against in ``ragctx eval`` (the context stage).

"Take ranked chunks in order until the next one does not fit": no rules, no skipping, rendered
by the assembler's renderer, so the two packs are compared on equal terms (same delimiters,
same citations list, same token counting). Evaluation only: no request path uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from assembler import render
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
from core.types import Candidate

BASELINE_POLICY = PolicyIdentity(name="naive-baseline", version="1")


def _item(candidate: Candidate, number: int) -> ContextItem:
    return ContextItem.of(
        candidate,
        citation=number,
        text=candidate.text,
        tokens=0,
        score=candidate.score,
        score_kind=candidate.score_kind.value,
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
        citations=tuple(Citation.of(item) for item in items),
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

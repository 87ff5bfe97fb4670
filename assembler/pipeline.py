"""``assemble``: candidates in, a packed, cited context out, with every drop explained.

A pure function: no I/O, the clock comes in as ``now``, and the same input always gives the
same pack (apart from the trace's timings).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from time import perf_counter

from assembler import render
from assembler.order import Group, arrange, merged_text
from assembler.packing import Admission, Costing, Packed, Packer, Screens
from assembler.policy_schema import Policy
from assembler.prompt.framing import OPENAI_FRAMING, ChatFraming
from assembler.prompt.pack import assemble_prompt
from assembler.prompt.types import CallerItem, Message, PromptFormat
from assembler.ranking import pin_order, rank
from assembler.rules.exclude import exclusion
from assembler.rules.freshness import judge_freshness
from assembler.rules.priority import boost_factor
from assembler.rules.redact import redactor
from assembler.rules.versions import judge_versions
from assembler.tokens import TokenCounter
from assembler.trace import Trace, screen_steps
from assembler.trim import trim_last
from assembler.types import (
    Citation,
    ContextItem,
    ContextPack,
    Dropped,
    DropReason,
    VersionsMode,
)
from core.errors import InvalidInputError
from core.types import Candidate


def _check_arguments(budget: int, now: datetime) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        msg = f"budget must be a whole number of tokens >= 0, got {budget!r}; pass e.g. 1500"
        raise InvalidInputError(msg, field="budget", value=budget)
    if now.tzinfo is None:
        msg = f"now must be timezone-aware, got {now.isoformat()}; pass datetime.now(UTC)"
        raise InvalidInputError(msg, field="now", value=now)


def _drop(candidate: Candidate, reason: DropReason, detail: str) -> Dropped:
    return Dropped(candidate.chunk_id, candidate.doc_id, reason, detail)


def _items(groups: Sequence[Group], costing: Costing) -> list[ContextItem]:
    """One item per group, numbered in context order; a merged group's text is counted."""
    items: list[ContextItem] = []
    for number, group in enumerate(groups, start=1):
        item = replace(group[0].item, citation=number)
        if len(group) > 1:
            text = merged_text(group)
            item = replace(
                item,
                text=text,
                tokens=costing.count_body(text),
                score=max(chunk.ranked.score for chunk in group),
                flags=tuple(dict.fromkeys(flag for chunk in group for flag in chunk.flags)),
                chunk_ids=tuple(chunk.ranked.candidate.chunk_id for chunk in group),
            )
        items.append(item)
    return items


def _intake(inputs: Sequence[Candidate], dropped: dict[int, Dropped]) -> list[int]:
    """Input positions to judge; a chunk id listed twice is a duplicate of its first entry."""
    first_seen: dict[str, int] = {}
    alive: list[int] = []
    for index, candidate in enumerate(inputs):
        kept = first_seen.setdefault(candidate.chunk_id, index)
        if kept == index:
            alive.append(index)
        else:
            detail = f"the input lists chunk {candidate.chunk_id} twice (kept entry #{kept})"
            dropped[index] = _drop(candidate, DropReason.DUPLICATE, detail)
    return alive


def _exclude(
    inputs: Sequence[Candidate], alive: Sequence[int], policy: Policy, dropped: dict[int, Dropped]
) -> list[int]:
    """Rule 1 over every candidate."""
    if policy.exclude.is_empty:
        return list(alive)
    kept: list[int] = []
    for index in alive:
        reason = exclusion(policy.exclude, inputs[index])
        if reason is None:
            kept.append(index)
        else:
            dropped[index] = _drop(inputs[index], DropReason.EXCLUDED, reason)
    return kept


def _freshness(
    inputs: Sequence[Candidate],
    alive: Sequence[int],
    *,
    policy: Policy,
    now: datetime,
    dropped: dict[int, Dropped],
    factors: dict[int, float],
) -> list[int]:
    """Rule 2 over every candidate: drop the stale ones, record each survivor's decay."""
    if policy.freshness.is_empty:
        factors.update(dict.fromkeys(alive, 1.0))
        return list(alive)
    kept: list[int] = []
    for index in alive:
        candidate = inputs[index]
        verdict = judge_freshness(policy.freshness, candidate, now)
        if verdict.stale is None:
            factors[index] = verdict.decay
            kept.append(index)
        else:
            dropped[index] = _drop(candidate, DropReason.STALE, verdict.stale)
    return kept


def _redact(
    inputs: list[Candidate], alive: Sequence[int], policy: Policy, counts: Counter[str]
) -> None:
    """Redaction over the candidates still in play: placeholders before anything is counted.

    A redacted text is no longer the one ingestion counted, so its stored counts go.
    """
    rules = redactor(policy.redact)
    if not rules.active:
        return
    for index in alive:
        candidate = inputs[index]
        text = rules.apply(candidate.text, counts)
        if text != candidate.text:
            inputs[index] = replace(candidate, text=text, body_tokens={})


def _versions(
    inputs: Sequence[Candidate],
    alive: Sequence[int],
    *,
    policy: Policy,
    dropped: dict[int, Dropped],
    flags: dict[int, tuple[str, ...]],
) -> tuple[list[int], tuple[str, ...]]:
    """Versions after freshness: drop (or flag) older versions of a document among the alive."""
    mode = policy.versions.mode
    if mode is VersionsMode.OFF:
        return list(alive), ("mode=off",)
    verdict = judge_versions([inputs[index] for index in alive])
    kept: list[int] = []
    for index, superseded in zip(alive, verdict.superseded, strict=True):
        if superseded is not None and mode is VersionsMode.PREFER_LATEST:
            dropped[index] = _drop(inputs[index], DropReason.SUPERSEDED, superseded.detail(mode))
            continue
        if superseded is not None:
            flags[index] = (superseded.flag,)
        kept.append(index)
    older = ", ".join(f"{doc} by {by.newer}" for doc, by in verdict.documents.items())
    count = len(verdict.documents)
    summary = f"{count} document{'' if count == 1 else 's'} superseded" + (
        f": {older}" if older else ""
    )
    return kept, (f"mode={mode.value}", summary, *verdict.notes)


def _render_within(
    packed: list[Packed],
    *,
    policy: Policy,
    costing: Costing,
    limit: int,
    dropped: dict[int, Dropped],
) -> tuple[list[Group], list[ContextItem], str, int, int, float]:
    """Rules 7 and 8: order, number, render, count; drop the least valuable chunk while over.

    The packing costs were taken per item; tokens need not add up across the items' joins,
    and the final citation numbers differ from the provisional ones, so the whole context is
    counted here, and that count is the one the budget holds.

    Returns:
        The groups, the items, the context, its token count, how many renders it took, and
        the milliseconds spent ordering.
    """
    rounds = 0
    order_ms = 0.0
    while True:
        rounds += 1
        started = perf_counter()
        groups = arrange(packed, policy.order)
        order_ms += (perf_counter() - started) * 1000
        items = _items(groups, costing)
        citations = policy.citations
        context = render.render(items, fmt=citations.format, include_list=citations.include_list)
        tokens = costing.counter.count(context)
        if tokens <= limit or not packed:
            return groups, items, context, tokens, rounds, order_ms
        victim = max(packed, key=lambda chunk: (not chunk.ranked.pinned, chunk.ranked.rank))
        packed.remove(victim)
        detail = (
            f"the rendered context counted {tokens} tokens, over the {limit} allowed; "
            "left out the lowest-value chunk"
        )
        dropped[victim.ranked.index] = _drop(
            victim.ranked.candidate, DropReason.OVER_BUDGET, detail
        )


def assemble(
    candidates: Sequence[Candidate],
    *,
    policy: Policy,
    budget: int,
    counter: TokenCounter,
    now: datetime,
    pinned: Sequence[Candidate] = (),
    messages: Sequence[Message] | None = None,
    items: Sequence[CallerItem] = (),
    query: str | None = None,
    fmt: PromptFormat = PromptFormat.OPENAI,
    framing: ChatFraming = OPENAI_FRAMING,
) -> ContextPack:
    """Pack the retrieved candidates, or the whole prompt, into a token budget under a policy.

    Without ``messages`` and ``items`` the budget is the context's alone (see
    :func:`pack_evidence`). With them (or a ``query`` to ask as the question) the budget is
    the whole prompt's: system messages, conversation, the caller's items and the evidence,
    chat framing included, under the policy's ``prompt`` sections (see
    :func:`assembler.prompt.pack.assemble_prompt`); the pack's ``prompt`` holds it.

    Raises:
        InvalidInputError: a bad budget or clock, malformed messages, repeated item ids.
        RequiredOverBudgetError: the whole prompt's required parts exceed the budget.
    """
    if messages is None and not items and query is None:
        return pack_evidence(
            candidates, policy=policy, budget=budget, counter=counter, now=now, pinned=pinned
        )
    _check_arguments(budget, now)

    def evidence(room: int) -> ContextPack:
        return pack_evidence(
            candidates, policy=policy, budget=room, counter=counter, now=now, pinned=pinned
        )

    prompt, pack = assemble_prompt(
        messages=messages or (),
        items=items,
        query=query,
        policy=policy,
        budget=budget,
        counter=counter,
        now=now,
        evidence=evidence,
        fmt=fmt,
        framing=framing,
    )
    totals = Counter(pack.redactions)
    totals.update(prompt.redactions)
    prompt = replace(prompt, redactions=dict(sorted(totals.items())))
    return replace(pack, budget=budget, prompt=prompt)


def pack_evidence(
    candidates: Sequence[Candidate],
    *,
    policy: Policy,
    budget: int,
    counter: TokenCounter,
    now: datetime,
    pinned: Sequence[Candidate] = (),
) -> ContextPack:
    """Pack ranked candidates into a token budget under a policy, with citations.

    Rules run in order: exclude, freshness, versions, redact, priority, injection screen,
    near-duplicates, packing, order, render. The rendered context, counted by ``counter``,
    never exceeds ``budget``; every candidate (and pinned chunk) is packed or dropped with
    one reason.

    Args:
        candidates: Retrieval's candidates, best first.
        policy: The context policy (see :func:`assembler.policy.load_policy`).
        budget: Tokens the rendered context may use, citations list included.
        counter: Counts tokens in the caller's model encoding.
        now: The caller's clock, timezone-aware (freshness is relative to it).
        pinned: Chunks of pinned documents that retrieval did not return, fetched by id
            through the caller's access filter. Pinned chunks go first when they fit.

    Returns:
        The context pack: context, tokens, items, citations, drops and trace.

    Raises:
        InvalidInputError: ``budget`` is negative or ``now`` has no timezone.

    Example:
        >>> counter = tiktoken_counter("cl100k_base")
        >>> policy = load_policy("data/policies/default.yaml").policy
        >>> pack = assemble(candidates, policy=policy, budget=1024, counter=counter,
        ...                 now=datetime.now(UTC))
        >>> pack.tokens <= 1024
        True
    """
    _check_arguments(budget, now)
    trace = Trace()
    inputs = [*candidates, *pinned]
    dropped: dict[int, Dropped] = {}

    alive = _intake(inputs, dropped)
    trace.add("input", len(inputs), len(alive), f"{len(pinned)} pinned chunks from the caller")
    allowed = _exclude(inputs, alive, policy, dropped)
    trace.add("exclude", len(alive), len(allowed))
    factors: dict[int, float] = {}
    kept = _freshness(inputs, allowed, policy=policy, now=now, dropped=dropped, factors=factors)
    undated = sum(inputs[index].updated_at is None for index in kept)
    trace.add("freshness", len(allowed), len(kept), f"{undated} without updated_at, not decayed")
    flags: dict[int, tuple[str, ...]] = {}
    fresh = kept
    kept, notes = _versions(inputs, fresh, policy=policy, dropped=dropped, flags=flags)
    trace.add("versions", len(fresh), len(kept), *notes)
    redactions: Counter[str] = Counter()
    _redact(inputs, kept, policy, redactions)
    if not policy.redact.is_empty:
        counts = ", ".join(f"{name}={count}" for name, count in sorted(redactions.items()))
        trace.add("redact", len(kept), len(kept), f"replaced: {counts or 'nothing'}")

    if policy.priority.boosts:
        for index in kept:
            factors[index] *= boost_factor(policy.priority, inputs[index])
    pins = pin_order(policy, pinned)
    ranked, notes = rank(inputs, kept, policy=policy, pins=pins, factors=factors)
    present = {inputs[index].doc_id for index in kept}
    missing = [doc for doc in pins if doc not in present]
    if missing:
        notes += (f"pinned documents not among the candidates: {', '.join(missing)}",)
    pinned_count = sum(entry.pinned for entry in ranked)
    trace.add("priority", len(kept), len(ranked), f"{pinned_count} pinned chunks", *notes)

    costing = Costing(counter, policy)
    limit = budget - policy.packing.reserve_tokens
    packer = Packer(
        policy=policy,
        available=limit - costing.overhead(),
        costing=costing,
        admission=Admission(policy, Screens()),
        flags=flags,
    )
    packer.fill(ranked)
    if policy.packing.trim_last:
        trim_last(packer)
    dropped.update(packer.dropped)
    screen_steps(trace, policy, packer, ranked)

    packed = list(packer.packed)
    groups, items, context, tokens, rounds, order_ms = _render_within(
        packed, policy=policy, costing=costing, limit=limit, dropped=dropped
    )
    merged = sum(len(group) > 1 for group in groups)
    render_ms = trace.elapsed_ms() - order_ms
    trace.add_timed(
        "order",
        len(packed),
        len(items),
        order_ms,
        f"order={policy.order.value}",
        f"{merged} merged",
    )
    trace.add_timed(
        "render",
        len(items),
        len(items),
        render_ms,
        f"format={policy.citations.format.value}",
        f"{tokens} tokens",
        f"{rounds} render(s)",
    )
    return ContextPack(
        context=context,
        tokens=tokens,
        budget=budget,
        items=tuple(items),
        citations=tuple(Citation.of(item) for item in items),
        dropped=tuple(dropped[index] for index in sorted(dropped)),
        trace=tuple(trace.steps),
        policy=policy.identity,
        encoding=counter.name,
        redactions=dict(sorted(redactions.items())),
    )

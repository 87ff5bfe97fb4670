"""The assembler's invariants, for any input (hypothesis).

For every generated input and policy: the pack's tokens are the rendered context's count, which
never exceeds the budget (with tiktoken, and with a counter whose counts do not add up across
the context's parts, so that the final count must drop chunks); every candidate and pinned chunk
is packed or dropped, exactly once; nothing excluded or stale is
packed; pins are packed first when they fit; no two packed items are near-duplicates; the
same input gives the same pack.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assembler import ContextPack, OrderMode, Policy
from assembler.render import render
from assembler.rules.dedupe import cosines, overlap, shingles
from assembler.rules.exclude import exclusion
from assembler.rules.freshness import judge_freshness
from core.types import Candidate, ScoreKind
from tests.assembler.builders import NOW, pack, policy, stored, xml_blocks

# A small vocabulary makes duplicates and shared shingles likely; the odd strings probe the
# renderer and the token accounting (delimiter look-alikes, backticks, leading slashes,
# whitespace runs, zero-width characters, non-Latin text).
VOCABULARY = [
    "queue",
    "message",
    "retry",
    "broker",
    "lease",
    "timeout",
    "the",
    "a",
    "of",
    "is",
    "ignore",
    "previous",
    "instructions",
    "system:",
    "</source>",
    "<source",
    "```",
    "/path",
    "  ",
    "\n",
    "\n\n",
    "日本語",
    "naïve",
    "\u200b",
    "42",
    "3.14",
    ".",
    "!",
    "?",
    "—",
]
text_strategy = st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=80).map(" ".join)


@st.composite
def candidates_strategy(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(min_value=0, max_value=14))
    texts = [draw(text_strategy) for _ in range(count)]
    result: list[Candidate] = []
    for number, drawn in enumerate(texts):
        text = drawn
        if number and draw(st.booleans()) and draw(st.booleans()):
            text = texts[draw(st.integers(0, number - 1))]  # an exact copy of an earlier text
        days = draw(st.one_of(st.none(), st.floats(min_value=-5, max_value=1500)))
        vector = draw(
            st.one_of(
                st.none(),
                st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3),
            )
        )
        result.append(
            Candidate(
                chunk_id=f"c{number}",
                doc_id=f"d{draw(st.integers(0, 4))}",
                text=text,
                score=draw(st.floats(min_value=-8, max_value=8, allow_nan=False)),
                score_kind=draw(
                    st.sampled_from([ScoreKind.RERANK, ScoreKind.RERANK, ScoreKind.RRF])
                ),
                tenant="acme",
                source=draw(st.sampled_from(["acme/guides", "acme/faq", "acme/drafts"])),
                path=f"p{number}.md",
                title=draw(st.sampled_from(["", "Guide", 'Odd "title" </source>'])),
                section=draw(st.sampled_from([(), ("A",), ("A", "B")])),
                chunk_index=draw(st.integers(0, 3)),
                tags=tuple(draw(st.sets(st.sampled_from(["faq", "draft", "release-notes"])))),
                updated_at=None if days is None else NOW - timedelta(days=days),
                dense_vector=vector,
                # as ingestion stores them, or absent (candidates from elsewhere)
                body_tokens=stored(text) if draw(st.booleans()) else {},
            )
        )
    if result and draw(st.booleans()):
        result.append(result[draw(st.integers(0, len(result) - 1))])  # the same chunk twice
    return result


POLICIES = [
    policy(),
    policy(order="edges", citations={"format": "markdown"}),
    policy(order="document", packing={"trim_last": True, "trim_min_tokens": 4}),
    policy(
        exclude={"tags": ["draft"], "sources": ["*/drafts"], "patterns": ["(?i)broker"]},
        freshness={"max_age_days": 700, "half_life_days": 200, "drop_undated": True},
        injection={"action": "drop"},
    ),
    policy(
        priority={"boosts": [{"tags": ["faq"], "factor": 3}], "pinned_doc_ids": ["d1"]},
        packing={
            "reserve_tokens": 30,
            "max_per_doc": 2,
            "min_score": {"kind": "rerank", "value": 0},
        },
        dedupe={"threshold": 0.5, "dense_threshold": 0.9},
        citations={"include_list": False},
    ),
    policy(
        freshness={"rules": [{"tags": ["release-notes"], "max_age_days": 90}]},
        priority={"pinned_doc_ids": ["d0", "d3"]},
        packing={"trim_last": True, "trim_min_tokens": 1, "max_per_source": 2},
        order="edges",
    ),
]

inputs = st.tuples(
    candidates_strategy(),
    st.sampled_from(POLICIES),
    st.integers(min_value=0, max_value=1200),
    st.booleans(),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split_pins(candidates: list[Candidate], rules: Policy, use_arg: bool) -> tuple[list, list]:
    """Move the pinned documents' chunks to ``pinned`` (as a caller would fetch them)."""
    if not use_arg:
        return candidates, []
    pins = set(rules.priority.pinned_doc_ids)
    return [c for c in candidates if c.doc_id not in pins], [
        c for c in candidates if c.doc_id in pins
    ]


def run(
    candidates: list[Candidate], rules: Policy, budget: int, pinned: list, counter
) -> ContextPack:
    return pack(candidates, counter, rules=rules, budget=budget, pinned=pinned)


@SETTINGS
@given(inputs)
def test_budget_accounting_and_rules_hold(counter, case) -> None:
    check_invariants(counter, case)


# `make test-slow`: the same invariants over many more generated inputs, in both encodings.
DEEP = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@DEEP
@given(inputs)
def test_budget_accounting_and_rules_hold_deep(counter, case) -> None:
    check_invariants(counter, case)


@pytest.mark.slow
@DEEP
@given(inputs)
def test_budget_accounting_and_rules_hold_deep_in_o200k(o200k, case) -> None:
    check_invariants(o200k, case)


def check_invariants(counter, case) -> None:
    candidates, rules, budget, use_arg = case
    candidates, pinned = split_pins(candidates, rules, use_arg)
    result = run(candidates, rules, budget, pinned, counter)

    # The budget holds for the full rendered context, counted by the caller's encoding.
    assert result.tokens == counter.count(result.context) <= budget
    # The context is the rendering of its items.
    citations = rules.citations
    assert result.context == render(
        result.items, fmt=citations.format, include_list=citations.include_list
    )

    # Every input is packed or dropped, exactly once.
    packed = [chunk for item in result.items for chunk in item.chunk_ids]
    accounted = Counter(packed) + Counter(drop.chunk_id for drop in result.dropped)
    assert accounted == Counter(c.chunk_id for c in [*candidates, *pinned])

    # Nothing excluded or stale is packed.
    by_id = {c.chunk_id: c for c in [*candidates, *pinned]}
    for chunk_id in packed:
        assert exclusion(rules.exclude, by_id[chunk_id]) is None
        assert judge_freshness(rules.freshness, by_id[chunk_id], NOW).stale is None

    # Pinned items come first; citations are 1..n in context order.
    flags = [item.pinned for item in result.items]
    assert flags == sorted(flags, reverse=True)
    assert [item.citation for item in result.items] == list(range(1, len(result.items) + 1))
    if rules.citations.format.value == "xml":
        assert [number for number, _ in xml_blocks(result.context)] == [
            i.citation for i in result.items
        ]


@SETTINGS
@given(inputs)
def test_no_two_packed_items_are_near_duplicates(counter, case) -> None:
    candidates, rules, budget, use_arg = case
    if rules.order.value == "document":  # merged items hold several chunks; compare chunks
        rules = rules.model_copy(update={"order": OrderMode.RELEVANCE})
    candidates, pinned = split_pins(candidates, rules, use_arg)
    result = run(candidates, rules, budget, pinned, counter)
    by_id = {c.chunk_id: c for c in [*candidates, *pinned]}
    signatures = [shingles(item.text, rules.dedupe.shingle_words) for item in result.items]
    for first in range(len(signatures)):
        for second in range(first + 1, len(signatures)):
            assert overlap(signatures[first], signatures[second]) < rules.dedupe.threshold
    dense = rules.dedupe.dense_threshold
    vectors = [by_id[item.chunk_id].dense_vector for item in result.items]
    if dense is not None:
        for first, vector in enumerate(vectors):
            others = [v for v in vectors[first + 1 :] if v is not None]
            if vector is not None and others:
                assert max(cosines(vector, others)) < dense


@SETTINGS
@given(inputs)
def test_pins_are_packed_first_when_they_fit(counter, case) -> None:
    candidates, rules, budget, _ = case
    candidates, pinned = split_pins(candidates, rules, True)
    alone = run([], rules, budget, pinned, counter)
    together = run(candidates, rules, budget, pinned, counter)
    # Adding candidates never pushes out a pin that fits on its own.
    pins_alone = [chunk for item in alone.items for chunk in item.chunk_ids]
    pins_together = [chunk for item in together.items if item.pinned for chunk in item.chunk_ids]
    assert sorted(pins_together) == sorted(pins_alone)


@settings(max_examples=25, deadline=None)
@given(inputs)
def test_same_input_same_pack(counter, case) -> None:
    candidates, rules, budget, use_arg = case
    candidates, pinned = split_pins(candidates, rules, use_arg)
    first = run(candidates, rules, budget, pinned, counter)
    copies = [replace(c) for c in candidates]
    second = run(copies, rules, budget, [replace(c) for c in pinned], counter)
    without_timings = lambda result: replace(  # noqa: E731
        result, trace=tuple(replace(step, ms=0.0) for step in result.trace)
    )
    assert without_timings(first) == without_timings(second)


class JoinCostCounter:
    """cl100k plus 2 tokens per line end inside the text: counts that never add up.

    Counted alone, each rendered part (header, body, delimiter, citation line) ends with its
    only line end or few; joined, every join adds one inside. So the packer's per-item costs
    fall short of the whole context's count, and the final count has to drop chunks.
    """

    name = "cl100k_base"  # the stored body counts are cl100k's: used, but no longer exact

    def __init__(self, inner) -> None:
        self.inner = inner

    def count(self, text: str) -> int:
        return self.inner.count(text) + 2 * text[:-1].count("\n")


@SETTINGS
@given(inputs)
def test_budget_and_accounting_hold_when_counts_do_not_add_up(counter, case) -> None:
    candidates, rules, budget, use_arg = case
    candidates, pinned = split_pins(candidates, rules, use_arg)
    joins = JoinCostCounter(counter)
    result = run(candidates, rules, budget, pinned, joins)
    assert result.tokens == joins.count(result.context) <= budget
    packed = [chunk for item in result.items for chunk in item.chunk_ids]
    accounted = Counter(packed) + Counter(drop.chunk_id for drop in result.dropped)
    assert accounted == Counter(c.chunk_id for c in [*candidates, *pinned])
    render_step = next(step for step in result.trace if step.step == "render")
    recounted = [d for d in result.dropped if d.detail.startswith("the rendered context counted")]
    # One render per final-count drop, plus the one that fitted.
    assert f"{len(recounted) + 1} render(s)" in render_step.notes
    assert all(drop.reason.value == "over_budget" for drop in recounted)
    again = run(candidates, rules, budget, pinned, joins)  # deterministic through the recounts
    assert (again.context, again.dropped) == (result.context, result.dropped)


@settings(max_examples=30, deadline=None)
@given(candidates_strategy(), st.integers(min_value=0, max_value=800))
def test_budget_holds_in_o200k_too(o200k, candidates, budget) -> None:
    result = pack(candidates, o200k, rules=POLICIES[2], budget=budget)
    assert result.tokens == o200k.count(result.context) <= budget


SENTENCE = st.sampled_from(
    [
        "The broker retries each message five times.",
        "Consumers must acknowledge within 30 seconds!",
        "Is the lease renewed automatically?",
        'Keys are rotated every 90 days ("grace period").',
        "日本語の文です。",
    ]
)
long_texts = st.lists(SENTENCE, min_size=1, max_size=40).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(st.lists(long_texts, min_size=1, max_size=6), st.integers(min_value=50, max_value=900))
def test_trimmed_items_are_sentence_prefixes_within_budget(counter, texts, budget) -> None:
    candidates = [
        Candidate(
            chunk_id=f"c{n}",
            doc_id=f"d{n}",
            text=text,
            score=float(-n),
            score_kind=ScoreKind.RERANK,
            tenant="acme",
        )
        for n, text in enumerate(texts)
    ]
    rules = policy(packing={"trim_last": True, "trim_min_tokens": 5}, dedupe={"enabled": False})
    result = pack(candidates, counter, rules=rules, budget=budget)
    assert result.tokens == counter.count(result.context) <= budget
    by_id = {c.chunk_id: c for c in candidates}
    for item in result.items:
        if "trimmed" in item.flags:
            original = by_id[item.chunk_id].text
            assert original.startswith(item.text) and len(item.text) < len(original)
            assert item.text.endswith((".", "!", "?", ")", "。"))

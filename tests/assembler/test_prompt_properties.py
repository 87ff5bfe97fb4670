"""The whole prompt's invariants, for random conversations, items, budgets and policies.

For every generated input: the rendered prompt, recounted here with tiktoken from the
answer's own messages under the stated framing rule, equals the pack's count and never
exceeds the budget; required items are packed or the call fails with
``RequiredOverBudgetError``, whose count really exceeds the budget; every message, item and
candidate is accounted for exactly once; the final user turn is the last message; a tool call
is never split from its result; the same input gives the same prompt.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import tiktoken
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from assembler import assemble
from assembler.prompt import render
from assembler.prompt.framing import prompt_tokens
from assembler.prompt.types import CallerItem, Message, PartStatus, PromptFormat, Role, ToolCall
from assembler.tokens import TiktokenCounter
from assembler.types import ItemKind, SectionName
from core.errors import RequiredOverBudgetError
from tests.assembler.builders import NOW, candidate, policy
from tests.assembler.test_properties import JoinCostCounter

WORDS = ["queue", "lease", "retry", "broker", "the", "a", "timeout", "<source", "ünïcode", "``"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=60).map(" ".join)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages = [Message(Role.SYSTEM, draw(texts)) for _ in range(draw(st.integers(0, 2)))]
    calls = 0
    for _ in range(draw(st.integers(0, 6))):
        messages.append(Message(Role.USER, draw(texts)))
        for _ in range(draw(st.integers(0, 2))):  # tool rounds
            ids = [f"call_{calls + i}" for i in range(draw(st.integers(1, 2)))]
            calls += len(ids)
            made = tuple(ToolCall(i, "lookup", '{"q": "x"}') for i in ids)
            messages.append(Message(Role.ASSISTANT, "", tool_calls=made))
            messages += [Message(Role.TOOL, draw(texts) * 3, tool_call_id=i) for i in ids]
        if draw(st.booleans()):
            messages.append(Message(Role.ASSISTANT, draw(texts)))
    if draw(st.booleans()):
        messages.append(Message(Role.USER, draw(texts)))
    return messages


@st.composite
def caller_items(draw: st.DrawFn) -> list[CallerItem]:
    count = draw(st.integers(0, 6))
    return [
        CallerItem(
            kind=draw(st.sampled_from(list(ItemKind))),
            id=f"i{n}",
            text=draw(texts),
            priority=draw(st.floats(-2, 2)),
            required=draw(st.booleans()) and draw(st.booleans()),
        )
        for n in range(count)
    ]


def limits(draw: st.DrawFn) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for section in ("memory", "evidence", "conversation", "tool_outputs", "documents"):
        if draw(st.booleans()):
            floor = draw(st.integers(0, 200))
            chosen[section] = {"floor": floor, "ceiling": draw(st.integers(floor, 800))}
    return chosen


@st.composite
def policies(draw: st.DrawFn) -> Any:
    middle = [s.value for s in SectionName if s not in (SectionName.SYSTEM, SectionName.QUESTION)]
    order = ["system", *draw(st.permutations(middle)), "question"]
    return policy(
        prompt={
            "order": order,
            "limits": limits(draw),
            "context_role": draw(st.sampled_from(["user", "system"])),
        },
        conversation={
            "keep_last_turns": draw(st.none() | st.integers(0, 4)),
            "keep_first_user_turn": draw(st.booleans()),
        },
        tool_outputs={"max_tokens": draw(st.integers(16, 120)), "min_tokens": 16},
        injection={"action": draw(st.sampled_from(["off", "flag", "drop"]))},
    )


# One random request: a conversation, caller items, candidates, a budget, a policy, a format.
prompt_inputs = given(
    messages=conversations(),
    items=caller_items(),
    n_candidates=st.integers(0, 12),
    budget=st.integers(20, 2500),
    rules=policies(),
    fmt=st.sampled_from(list(PromptFormat)),
)


def recount(pack_messages: list[dict[str, Any]], encoding: tiktoken.Encoding) -> int:
    """The framing rule of ``assembler.prompt.framing``, applied to the rendered OpenAI form."""

    def n(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    total = 3  # reply priming
    for message in pack_messages:
        total += 3 + n(message["role"]) + n(message["content"])
        if "name" in message:
            total += n(message["name"]) + 1
        if "tool_call_id" in message:
            total += n(message["tool_call_id"])
        for call in message.get("tool_calls", ()):
            function = call["function"]
            total += n(call["id"]) + n(function["name"]) + n(function["arguments"])
    return total


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@prompt_inputs
def test_whole_prompt_invariants(
    messages: list[Message],
    items: list[CallerItem],
    n_candidates: int,
    budget: int,
    rules: Any,
    fmt: PromptFormat,
    counter: TiktokenCounter,
) -> None:
    candidates = [candidate(f"c{i}", score=1 - i / 20) for i in range(n_candidates)]

    def run() -> Any:
        return assemble(
            candidates,
            policy=rules,
            budget=budget,
            counter=counter,
            now=NOW,
            messages=messages,
            items=items,
            query="what is the retention period?",
            fmt=fmt,
        )

    try:
        result = run()
    except RequiredOverBudgetError as err:
        assert err.needed > budget
        event("required parts over budget")
        return
    prompt = result.prompt
    assert prompt is not None
    event(f"dropped parts: {min(sum(p.status is PartStatus.DROPPED for p in prompt.parts), 3)}")
    event(f"evidence items: {min(len(result.items), 2)}")
    rendered = prompt.messages
    # exact counting, never over budget
    if fmt is PromptFormat.TEXT:
        assert prompt.tokens == len(counter.encoding.encode_ordinary(render.to_text(rendered)))
    else:
        assert prompt.tokens == recount(render.to_openai(rendered), counter.encoding)
    assert prompt.tokens <= budget
    assert result.tokens == counter.count(result.context)
    # every message and item exactly once
    ids = Counter(part.id for part in prompt.parts)
    question_from_query = not messages or messages[-1].role is not Role.USER
    expected = {f"messages[{i}]" for i in range(len(messages))}
    expected |= {f"{item.kind.value}:{item.id}" for item in items}
    if question_from_query:
        expected.add("query")
    assert set(ids) == expected and max(ids.values(), default=1) == 1
    # required items packed
    by_id = {part.id: part for part in prompt.parts}
    for item in items:
        if item.required:
            assert by_id[f"{item.kind.value}:{item.id}"].status is not PartStatus.DROPPED
    # the final user turn is last
    assert rendered[-1].role is Role.USER
    final = messages[-1].content if not question_from_query else "what is the retention period?"
    assert rendered[-1].content == final
    # tool calls are answered right after, in full
    for position, message in enumerate(rendered):
        if message.tool_calls:
            wanted = [call.id for call in message.tool_calls]
            after = rendered[position + 1 : position + 1 + len(wanted)]
            assert [m.tool_call_id for m in after] == wanted
        if message.role is Role.TOOL:
            assert rendered[position - 1].role in (Role.ASSISTANT, Role.TOOL)
    # every candidate once, in the evidence or dropped
    seen = Counter([c for item in result.items for c in item.chunk_ids])
    seen.update(d.chunk_id for d in result.dropped)
    assert seen == Counter(c.chunk_id for c in candidates)
    # deterministic
    again = run().prompt
    assert again is not None
    assert again.messages == rendered and again.parts == prompt.parts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@prompt_inputs
def test_the_budget_holds_when_counts_do_not_add_up(
    messages: list[Message],
    items: list[CallerItem],
    n_candidates: int,
    budget: int,
    rules: Any,
    fmt: PromptFormat,
    counter: TiktokenCounter,
) -> None:
    """With a counter whose joins cost extra (and that cannot cut at token boundaries, so long
    tool outputs are bisected), the per-part estimates fall short and the final count decides."""
    joins = JoinCostCounter(counter)
    candidates = [candidate(f"c{i}", score=1 - i / 20) for i in range(n_candidates)]
    try:
        result = assemble(
            candidates,
            policy=rules,
            budget=budget,
            counter=joins,
            now=NOW,
            messages=messages,
            items=items,
            query="q?",
            fmt=fmt,
        )
    except RequiredOverBudgetError as err:
        assert err.needed > budget
        return
    prompt = result.prompt
    assert prompt is not None
    assert prompt.tokens == prompt_tokens(prompt.messages, joins, fmt) <= budget
    expected = {f"messages[{i}]" for i in range(len(messages))}
    expected |= {f"{item.kind.value}:{item.id}" for item in items}
    ids = [part.id for part in prompt.parts]
    assert len(ids) == len(set(ids)) and expected <= set(ids)

"""The retrieval query of a conversation: the last user turn plus the earlier ones a policy names.

A follow-up ("and what about queues created before that?") is ambiguous alone; what the
conversation already established is in the earlier user turns. :func:`conversation_query` builds
one query from them, deterministically and without a model call: the BM25 leg sums the turns'
sparse vectors with weights that fall with their distance from the last turn, and the dense leg
embeds the turns' combined text (see ``retrieval.hybrid.search``, which takes either a string or
a :class:`ConversationQuery`).

Example::

    q = conversation_query(
        ["How long is the key grace period?", "and for the staging keys?"],
        ConversationRetrieval(previous_user_turns=2, decay=0.5),
    )
    q.bm25_parts  # (("How long is the key grace period?", 0.5), ("and for the staging keys?", 1.0))
    q.describe()  # "user turns 0, 1 with BM25 weights 0.5, 1"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core import defaults
from core.errors import InvalidInputError


class RetrievalRule(Protocol):
    """What the query needs of ``assembler.policy_schema.ConversationRetrieval`` (a policy's
    ``conversation.retrieval``); a Protocol, so retrieval does not import the assembler."""

    @property
    def previous_user_turns(self) -> int: ...

    @property
    def decay(self) -> float: ...

    @property
    def first_user_turn(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class QueryTurn:
    """One user turn the query uses: its 0-based position among the user turns, its text
    (stripped) and its BM25 weight."""

    index: int
    text: str
    weight: float


@dataclass(frozen=True, slots=True)
class ConversationQuery:
    """A retrieval query built from user turns, in conversation order (the last turn last).

    ``n_user_turns`` is how many user turns the conversation had, so a trace can say "turns 3,
    5 of 6"; the last turn (weight 1) is always in ``turns``.
    """

    turns: tuple[QueryTurn, ...]
    n_user_turns: int

    def __post_init__(self) -> None:
        if not self.turns:
            raise ValueError("a ConversationQuery needs at least the last user turn")

    @property
    def last(self) -> str:
        """The current question: the last user turn."""
        return self.turns[-1].text

    @property
    def dense_text(self) -> str:
        """What the dense leg embeds: the chosen turns' texts, one a line, the last turn last."""
        return "\n".join(t.text for t in self.turns)

    @property
    def bm25_parts(self) -> tuple[tuple[str, float], ...]:
        """``(text, weight)`` per chosen turn, in conversation order: the BM25 leg's query is
        the weighted sum of the parts' sparse vectors."""
        return tuple((t.text, t.weight) for t in self.turns)

    @property
    def indexes(self) -> tuple[int, ...]:
        """The 0-based positions (among the user turns) of the turns used."""
        return tuple(t.index for t in self.turns)

    def oldest_dropped(self) -> ConversationQuery:
        """The same query without its oldest turn (the last turn is never dropped)."""
        if len(self.turns) == 1:
            return self
        return ConversationQuery(self.turns[1:], self.n_user_turns)

    def describe(self) -> str:
        """One line for a trace: which user turns, with which weights."""
        return (
            f"user turns {', '.join(str(i) for i in self.indexes)} of {self.n_user_turns} "
            f"(0-based) with BM25 weights {', '.join(f'{t.weight:g}' for t in self.turns)}"
        )


def conversation_query(
    user_turns: Sequence[str],
    rule: RetrievalRule,
    *,
    max_chars: int = defaults.MAX_QUERY_CHARS,
) -> ConversationQuery:
    """The retrieval query of a conversation whose user turns are ``user_turns`` (in order, the
    last one being the current question), under ``rule``.

    - The last turn always counts, with weight 1.
    - The ``rule.previous_user_turns`` user turns before it (newest first) count, the k-th one
      back with weight ``rule.decay ** k``.
    - With ``rule.first_user_turn``, the first user turn (the task) counts too when the window
      above does not reach it, with weight ``rule.decay ** (previous_user_turns + 1)``: the
      weight the next turn beyond the window would have.
    - Blank earlier turns carry no words and are skipped (they do not use up the window).

    With ``previous_user_turns=0`` (and no first turn) the query is exactly the last turn, and
    ``retrieval.search`` answers it as it answers that string.

    Raises:
        InvalidInputError: no user turn, a turn that is not a string, a blank last turn, or a
            chosen turn over ``max_chars``.
        TypeError: ``user_turns`` is one string rather than a sequence of turns.
    """
    if isinstance(user_turns, str):
        raise TypeError("user_turns is a sequence of turns, not one string; pass [question]")
    for i, turn in enumerate(user_turns):
        if not isinstance(turn, str):
            raise InvalidInputError(
                f"user turn {i} (0-based) is a {type(turn).__name__}, not text; send each user "
                "message's content as a string",
                field="query",
            )
    if not user_turns or not user_turns[-1].strip():
        raise InvalidInputError(
            "the conversation has no user turn to retrieve for (the last user turn is missing "
            "or blank); send the question as the last user message",
            field="query",
        )
    n = len(user_turns)
    earlier = [i for i in range(n - 1) if user_turns[i].strip()]
    window = earlier[::-1][: rule.previous_user_turns]  # newest first
    chosen: dict[int, float] = {n - 1: 1.0}
    for k, index in enumerate(window, 1):
        chosen[index] = rule.decay**k
    if rule.first_user_turn and earlier and earlier[0] not in chosen:
        chosen[earlier[0]] = rule.decay ** (rule.previous_user_turns + 1)
    turns = []
    for index in sorted(chosen):
        text = user_turns[index].strip()
        if len(text) > max_chars:
            which = "the last user turn" if index == n - 1 else f"user turn {index} (0-based)"
            raise InvalidInputError(
                f"{which} is {len(text)} characters, above the limit of {max_chars}; shorten it "
                "or raise RAGCTX_MAX_QUERY_CHARS",
                field="query",
                value=len(text),
            )
        turns.append(QueryTurn(index=index, text=text, weight=chosen[index]))
    return ConversationQuery(tuple(turns), n_user_turns=n)

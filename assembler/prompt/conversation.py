"""The conversation's shape: system messages, turns, and the final user turn.

A turn is a user message and the assistant and tool messages after it, up to the next user
message; messages before the first user message (a greeting) form a turn of their own. Turns
are kept or dropped whole, so a tool call is never split from its result and a trimmed
history still starts on a user turn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from assembler.prompt.types import Message, Role
from core.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Turn:
    """Consecutive messages kept or dropped together; ``start`` is the first one's index."""

    start: int
    messages: tuple[Message, ...]

    def indexed(self) -> Iterator[tuple[int, Message]]:
        """The turn's messages with their positions in the request."""
        return enumerate(self.messages, start=self.start)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A checked conversation: system messages, earlier turns, and the final user turn."""

    system: tuple[tuple[int, Message], ...]
    turns: tuple[Turn, ...]
    question: Message
    question_index: int | None  # None: the question is the request's query

    @property
    def user_texts(self) -> list[str]:
        """The user turns' texts in order, the question last (what retrieval may use)."""
        earlier = [m.content for t in self.turns for m in t.messages if m.role is Role.USER]
        return [*earlier, self.question.content]


def _invalid(index: int, message: str) -> InvalidInputError:
    return InvalidInputError(message, field=f"messages[{index}]")


def _check_tools(messages: Sequence[Message]) -> None:
    """Every tool result answers a call of the assistant message before it; every call is
    answered before the next user or assistant message."""
    open_calls: dict[str, int] = {}
    for index, message in enumerate(messages):
        if message.role is Role.TOOL:
            call = message.tool_call_id
            if not call:
                raise _invalid(index, "a tool message needs tool_call_id: the id of its call")
            if call not in open_calls:
                raise _invalid(
                    index,
                    f"tool_call_id {call!r} answers no tool call of the assistant message "
                    "before it; put each tool result right after the assistant message that "
                    "made the call, with the call's id",
                )
            del open_calls[call]
            continue
        if open_calls:
            first = min(open_calls.values())
            raise _invalid(
                first,
                f"tool calls {', '.join(sorted(open_calls))} have no result before "
                f"messages[{index}]; add a tool message for each call right after it",
            )
        if message.tool_calls and message.role is not Role.ASSISTANT:
            raise _invalid(index, "only assistant messages make tool calls")
        if message.tool_call_id:
            raise _invalid(index, "tool_call_id belongs on tool messages only")
        ids = [call.id for call in message.tool_calls]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise _invalid(index, f"tool call ids repeat within the message: {repeated}")
        open_calls = dict.fromkeys(ids, index)
    if open_calls:
        first = min(open_calls.values())
        raise _invalid(
            first,
            f"tool calls {', '.join(sorted(open_calls))} have no result; add a tool "
            "message for each call",
        )


def split_conversation(messages: Sequence[Message], query: str | None) -> Conversation:
    """Check the messages and split them into system messages, turns and the question.

    The question is the final user message when the messages end on one; otherwise the
    request's ``query`` (added as the final user turn).

    Raises:
        InvalidInputError: a system message after the conversation began, a tool result with
            no call (or a call with no result), or neither a final user turn nor a query.
    """
    _check_tools(messages)
    system: list[tuple[int, Message]] = []
    body: list[tuple[int, Message]] = []
    for index, message in enumerate(messages):
        if message.role is Role.SYSTEM:
            if body:
                raise _invalid(
                    index,
                    "system messages come first, before any user, assistant or tool message; "
                    "move it to the start",
                )
            system.append((index, message))
        else:
            body.append((index, message))
    if body and body[-1][1].role is Role.USER:
        question_index, question = body.pop()
    elif query is not None:
        question_index, question = None, Message(Role.USER, query)
    elif not messages:
        raise InvalidInputError(
            "there is no question: give query, or messages ending with the user's question",
            field="query",
        )
    else:
        raise InvalidInputError(
            "the conversation does not end on a user turn and there is no query; end messages "
            "with the user's question or pass query",
            field=f"messages[{len(messages) - 1}]",
        )
    turns: list[Turn] = []
    current: list[tuple[int, Message]] = []
    for index, message in body:
        if message.role is Role.USER and current:
            turns.append(Turn(current[0][0], tuple(m for _, m in current)))
            current = []
        current.append((index, message))
    if current:
        turns.append(Turn(current[0][0], tuple(m for _, m in current)))
    return Conversation(tuple(system), tuple(turns), question, question_index)

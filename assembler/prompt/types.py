"""The whole prompt's input and output types: chat messages, caller items, parts and sections.

Immutable dataclasses, like the rest of the assembler's types; the HTTP layer maps its own
schemas to and from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from assembler.types import DropReason, ItemKind, SectionName


class Role(StrEnum):
    """A chat message's role."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class PromptFormat(StrEnum):
    """How the packed prompt is handed back (request field ``format``)."""

    OPENAI = "openai"  # a list of {role, content} messages, tool calls linked by id
    ANTHROPIC = "anthropic"  # ``system`` apart, user/assistant messages with content blocks
    TEXT = "text"  # one plain text, each message under its role's label


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call an assistant message made; its result is the tool message with this id."""

    id: str
    name: str
    arguments: str = "{}"  # JSON text, as the OpenAI API carries it


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: ``tool_calls`` on assistant messages, ``tool_call_id`` on tool ones."""

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallerItem:
    """Context the caller supplies besides the conversation: a fact, a tool output, a document.

    ``required`` items are packed whatever the policy says, or the request fails with the
    tokens they need; the others compete for their section's room by ``priority`` (higher
    first), then by their order in the request.
    """

    kind: ItemKind
    id: str
    text: str
    priority: float = 0.0
    required: bool = False
    updated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class PartStatus(StrEnum):
    """What became of one part of the prompt."""

    PACKED = "packed"
    TRIMMED = "trimmed"  # packed with a cut, marked in its text
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Part:
    """One message or caller item and what became of it: packed, trimmed, or dropped and why.

    ``id`` is ``messages[i]`` for a message (``query`` when the question came from the query
    field) and ``<kind>:<id>`` for a caller item. ``tokens`` is what it costs as packed (for a
    dropped part, what it would have cost).
    """

    id: str
    kind: str  # system | turn | tool | question | memory | tool_output | document | example
    section: SectionName
    status: PartStatus
    tokens: int
    reason: DropReason | None = None
    detail: str = ""
    role: Role | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SectionUsage:
    """Tokens one section of the prompt used, against its floor and ceiling."""

    name: SectionName
    tokens: int
    parts: int
    floor: int = 0
    ceiling: int | None = None


@dataclass(frozen=True, slots=True)
class PromptPack:
    """The whole prompt, ready to send: its messages, what each section used, every part's fate.

    ``tokens`` counts the rendered prompt in ``format`` under ``framing`` and never exceeds
    ``budget``; ``messages`` are the logical messages (map them with
    :mod:`assembler.prompt.render` to the chosen format). ``redactions`` counts replacements
    per redaction rule.
    """

    messages: tuple[Message, ...]
    format: PromptFormat
    tokens: int
    budget: int
    sections: tuple[SectionUsage, ...]
    parts: tuple[Part, ...]
    framing: str
    retrieval_query: str = ""
    redactions: Mapping[str, int] = field(default_factory=dict)

    @property
    def budget_left(self) -> int:
        """Tokens of the budget the prompt does not use."""
        return self.budget - self.tokens

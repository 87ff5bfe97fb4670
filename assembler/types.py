"""What the assembler hands back: the packed context, its items, its drops and its trace.

These are internal, immutable types (frozen dataclasses); the HTTP layer maps them to its own
schemas. Closed sets of values are ``StrEnum``s so that a bad value fails with the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from assembler.prompt.types import PromptPack
    from core.types import Candidate


class DropReason(StrEnum):
    """Why a candidate is not in the context. Every candidate not packed has exactly one."""

    OVER_BUDGET = "over_budget"
    DUPLICATE = "duplicate"
    EXCLUDED = "excluded"
    STALE = "stale"
    BELOW_MIN_SCORE = "below_min_score"
    SOURCE_CAP = "source_cap"
    INJECTION = "injection"
    SUPERSEDED = "superseded"  # a newer version of its series is among the candidates
    HISTORY_TRIMMED = "history_trimmed"  # an older conversation turn the policy does not keep
    SECTION_CEILING = "section_ceiling"  # its section's token ceiling is reached


class SectionName(StrEnum):
    """The sections of a whole prompt (policy ``prompt.order``)."""

    SYSTEM = "system"  # the caller's system messages: trusted, never screened or trimmed
    MEMORY = "memory"  # remembered facts (items of kind ``memory``)
    EXAMPLES = "examples"  # few-shot examples (items of kind ``example``)
    DOCUMENTS = "documents"  # the caller's own documents (items of kind ``document``)
    TOOL_OUTPUTS = "tool_outputs"  # tool outputs given as items (kind ``tool_output``)
    EVIDENCE = "evidence"  # the retrieved chunks, rendered with citations
    CONVERSATION = "conversation"  # the turns before the final user turn
    QUESTION = "question"  # the final user turn (or the request's query)


class ItemKind(StrEnum):
    """The kinds of context a caller supplies as ``items``."""

    MEMORY = "memory"
    TOOL_OUTPUT = "tool_output"
    DOCUMENT = "document"
    EXAMPLE = "example"

    @property
    def section(self) -> SectionName:
        """The prompt section items of this kind go to."""
        return _KIND_SECTIONS[self]


_KIND_SECTIONS = {
    ItemKind.MEMORY: SectionName.MEMORY,
    ItemKind.TOOL_OUTPUT: SectionName.TOOL_OUTPUTS,
    ItemKind.DOCUMENT: SectionName.DOCUMENTS,
    ItemKind.EXAMPLE: SectionName.EXAMPLES,
}


class VersionsMode(StrEnum):
    """What to do with older versions of a document series (policy ``versions.mode``)."""

    OFF = "off"
    PREFER_LATEST = "prefer_latest"  # drop the older (reason ``superseded``, naming the newer)
    KEEP_ALL_FLAGGED = "keep_all_flagged"  # keep both, flag the older ``superseded_by:<doc>``


class OrderMode(StrEnum):
    """How packed items are ordered in the context (policy key ``order``)."""

    RELEVANCE = "relevance"  # best first
    DOCUMENT = "document"  # grouped by document, in source order, adjacent chunks merged
    EDGES = "edges"  # best at the start and the end: long contexts lose the middle


class InjectionAction(StrEnum):
    """What the injection screen does with a chunk that looks like instructions to the model."""

    OFF = "off"
    FLAG = "flag"  # keep it, mark it in the header and in ``ContextItem.flags``
    DROP = "drop"  # drop it with reason ``injection``


class CitationFormat(StrEnum):
    """How items are delimited and cited in the rendered context (policy ``citations.format``)."""

    XML = "xml"
    MARKDOWN = "markdown"


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One block of the rendered context.

    ``citation`` is the item's number in the text (``[3]`` is ``items[2]``), assigned after
    ordering. In ``document`` order adjacent chunks of one document are merged into one item:
    ``chunk_ids`` lists them all and ``chunk_id`` is the first. ``tokens`` counts the item's
    text as rendered (without its header and delimiters) with the caller's counter; the
    pack's ``tokens`` counts the whole context.
    ``score_kind`` is a ``ScoreKind`` value, or ``adjusted-from-<kind>`` when the policy's
    boosts or decay changed the score.
    """

    citation: int
    chunk_id: str
    doc_id: str
    source: str
    path: str
    title: str
    section: tuple[str, ...]
    text: str
    tokens: int
    score: float
    score_kind: str
    updated_at: datetime | None
    flags: tuple[str, ...] = ()
    chunk_ids: tuple[str, ...] = ()
    pinned: bool = False

    @classmethod
    def of(
        cls,
        candidate: Candidate,
        *,
        citation: int,
        text: str,
        tokens: int,
        score: float,
        score_kind: str,
        flags: tuple[str, ...] = (),
        pinned: bool = False,
    ) -> ContextItem:
        """``candidate`` packed as ``text`` (one chunk: ``chunk_ids`` is its own id)."""
        return cls(
            citation=citation,
            chunk_id=candidate.chunk_id,
            doc_id=candidate.doc_id,
            source=candidate.source,
            path=candidate.path,
            title=candidate.title,
            section=candidate.section,
            text=text,
            tokens=tokens,
            score=score,
            score_kind=score_kind,
            updated_at=candidate.updated_at,
            flags=flags,
            chunk_ids=(candidate.chunk_id,),
            pinned=pinned,
        )


@dataclass(frozen=True, slots=True)
class Citation:
    """One entry of the citations list; ``number`` matches ``ContextItem.citation``."""

    number: int
    doc_id: str
    chunk_ids: tuple[str, ...]
    source: str
    path: str
    title: str
    section: tuple[str, ...]
    updated_at: datetime | None

    @classmethod
    def of(cls, item: ContextItem) -> Citation:
        """The citation-list entry of a packed item."""
        return cls(
            number=item.citation,
            doc_id=item.doc_id,
            chunk_ids=item.chunk_ids,
            source=item.source,
            path=item.path,
            title=item.title,
            section=item.section,
            updated_at=item.updated_at,
        )


@dataclass(frozen=True, slots=True)
class Dropped:
    """A candidate left out, with the one reason and the rule (or kept chunk) that decided."""

    chunk_id: str
    doc_id: str
    reason: DropReason
    detail: str


@dataclass(frozen=True, slots=True)
class StepTrace:
    """One assembler step: how many candidates went in and came out, and how long it took.

    ``ms`` is wall time and the only field that differs between two runs on the same input.
    """

    step: str
    count_in: int
    count_out: int
    ms: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyIdentity:
    """Which policy made a pack; ``sha256`` is the policy file's digest when it came from one."""

    name: str
    version: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ContextPack:
    """The assembler's answer: the context to put in the prompt and how it was made.

    ``tokens`` counts the full ``context`` with the caller's counter and never exceeds
    ``budget``. Every input candidate is either in ``items`` (by chunk id, see
    ``ContextItem.chunk_ids``) or in ``dropped``, exactly once. ``redactions`` counts the
    placeholders the policy's ``redact`` rules put in the candidates' text, per rule.

    When the whole prompt was packed (``assemble(..., messages=..., items=...)``), ``prompt``
    holds it and ``budget`` is the whole prompt's; ``context`` is then the evidence section,
    and ``tokens`` its count.
    """

    context: str
    tokens: int
    budget: int
    items: tuple[ContextItem, ...]
    citations: tuple[Citation, ...]
    dropped: tuple[Dropped, ...]
    trace: tuple[StepTrace, ...]
    policy: PolicyIdentity
    encoding: str = ""
    redactions: Mapping[str, int] = field(default_factory=dict)
    prompt: PromptPack | None = None

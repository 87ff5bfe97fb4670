"""The plain typed objects that stages hand each other: who asks (``Principal``), what they
narrow to (``SearchFilters``), what retrieval found (``Candidate`` with its ``StageHit`` per
``Stage``, its score of one ``ScoreKind``), and how a chunk's text is rendered.

No heavy import here: the assembler, the HTTP schemas and the client use these types without
loading Qdrant, numpy or a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.errors import ForbiddenError

PUBLIC_GROUP = "public"
"""A document in this group is visible to every principal of its tenant."""

BODY_TOKEN_ENCODINGS = ("cl100k_base", "o200k_base")
"""Encodings whose token counts of a chunk's rendered body the payload's ``body_tokens`` holds."""


def rendered_body(text: str) -> str:
    """A chunk's text as a context renders it: without outer whitespace, ending with a newline.

    The payload's ``body_tokens`` counts this string, so that the assembler packs a chunk
    without counting it again (``assembler.render.body`` is this function).
    """
    return text.strip() + "\n"


class Stage(StrEnum):
    """Pipeline stages, named the same in reports, traces and metric labels."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"
    RERANK = "rerank"
    CONTEXT = "context"


class ScoreKind(StrEnum):
    """What a score means. Scores of different kinds are never compared with each other."""

    DENSE = "dense"  # cosine similarity, [-1, 1]
    BM25 = "bm25"  # BM25 with Qdrant's IDF modifier, >= 0, unbounded
    RRF = "rrf"  # reciprocal rank fusion, sum of 1/(k + rank)
    RERANK = "rerank"  # cross-encoder logit (or the fused rerank score, see retrieval.rerank)


@dataclass(frozen=True, slots=True)
class StageHit:
    """Where a candidate stood in one stage: its 1-based rank and its score there."""

    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """One retrieved chunk with everything later stages need to judge it.

    ``stages`` maps each stage the chunk went through to its rank and score there; a stage the
    chunk did not appear in is absent (test with ``.get(stage) is None``). ``score`` and
    ``score_kind`` are the final score retrieval ranked it by.

    ``tokens`` counts the chunk's embedded text (title and headings included) in the chunking
    encoding. ``body_tokens`` maps tiktoken encoding names to the exact count of
    ``index.schema.rendered_body(text)``, taken at ingestion: the assembler packs with these
    instead of counting every candidate again. Leave it empty when unsure: a count that is
    wrong, yet plausible, would let a context run over its budget.
    """

    chunk_id: str
    doc_id: str
    text: str
    score: float
    score_kind: ScoreKind
    tenant: str
    source: str = ""
    path: str = ""
    title: str = ""
    section: tuple[str, ...] = ()
    chunk_index: int = 0
    char_start: int = 0
    char_end: int = 0
    tokens: int = 0
    body_tokens: Mapping[str, int] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stages: Mapping[Stage, StageHit] = field(default_factory=dict)
    dense_vector: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a tenant and its access groups (from an API key, never a request body)."""

    tenant: str
    groups: tuple[str, ...] = ()
    name: str = ""

    def narrowed(self, groups: Sequence[str] | None) -> Principal:
        """The same principal limited to ``groups`` (None: all of its own).

        Raises:
            ForbiddenError: a group the principal lacks (``public`` is everyone's).
        """
        if groups is None:
            return self
        extra = sorted(set(groups) - set(self.groups) - {PUBLIC_GROUP})
        if extra:
            raise ForbiddenError(
                f"groups {extra} are not granted to key {self.name!r} (granted: "
                f"{sorted(self.groups)}); a request may narrow its groups, never widen them",
                field="groups",
            )
        return Principal(tenant=self.tenant, groups=tuple(dict.fromkeys(groups)), name=self.name)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Optional narrowing a request may ask for, applied in the store with the access filter.

    Built already checked (``service.api.schemas.FiltersIn.search_filters`` for a request);
    dates are timezone-aware.
    """

    sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_doc_ids: tuple[str, ...] = ()
    updated_after: datetime | None = None
    updated_before: datetime | None = None

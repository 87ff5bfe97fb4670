"""Plain typed objects that retrieval hands to the assembler and the service.

These types are the contract between stages: the assembler imports only this module, so it
must stay free of Qdrant, torch and every other heavy dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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

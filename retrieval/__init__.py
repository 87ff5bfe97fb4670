"""Hybrid retrieval: dense + BM25 legs in one Qdrant query, RRF, then a cross-encoder.

Entry point: :func:`search`. Names load lazily (PEP 562) so that ``retrieval.types``, which the
assembler imports, stays free of qdrant, numpy and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrieval.filters import Principal, SearchFilters, access_filter, may_see
    from retrieval.hybrid import (
        RetrievalParams,
        Retrieved,
        StageTrace,
        fetch_documents,
        search,
        validate_query,
    )
    from retrieval.rerank import CrossEncoderReranker, Reranker, RerankMode, RerankParams
    from retrieval.types import Candidate, ScoreKind, Stage, StageHit

__all__ = [
    "Candidate",
    "CrossEncoderReranker",
    "Principal",
    "RerankMode",
    "RerankParams",
    "Reranker",
    "RetrievalParams",
    "Retrieved",
    "ScoreKind",
    "SearchFilters",
    "Stage",
    "StageHit",
    "StageTrace",
    "access_filter",
    "fetch_documents",
    "may_see",
    "search",
    "validate_query",
]

_LAZY = {
    **dict.fromkeys(
        ("Principal", "SearchFilters", "access_filter", "may_see"), "retrieval.filters"
    ),
    **dict.fromkeys(
        ("CrossEncoderReranker", "Reranker", "RerankMode", "RerankParams"), "retrieval.rerank"
    ),
    **dict.fromkeys(
        (
            "RetrievalParams",
            "Retrieved",
            "StageTrace",
            "fetch_documents",
            "search",
            "validate_query",
        ),
        "retrieval.hybrid",
    ),
    **dict.fromkeys(("Candidate", "ScoreKind", "Stage", "StageHit"), "retrieval.types"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

"""Hybrid retrieval: dense + BM25 legs in one Qdrant query, RRF, then a cross-encoder.

Entry point: :func:`search`.
"""

from __future__ import annotations

from retrieval.filters import Principal, SearchFilters, access_filter, may_see
from retrieval.rerank import CrossEncoderReranker, Reranker, RerankMode, RerankParams
from retrieval.search import (
    RetrievalParams,
    Retrieved,
    StageTrace,
    fetch_documents,
    search,
    validate_query,
)
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

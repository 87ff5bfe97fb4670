"""Hybrid retrieval: dense + BM25 legs in one Qdrant batch, RRF, then a cross-encoder.

Entry point: :func:`search`. The candidates it returns and the request types (``Principal``,
``SearchFilters``) are in ``core.types``.
"""

from __future__ import annotations

from retrieval.conversation import ConversationQuery, QueryTurn, conversation_query
from retrieval.filters import access_filter, may_see
from retrieval.hybrid import fetch_documents, search, validate_query
from retrieval.rerank import CrossEncoderReranker, Reranker, RerankMode, RerankParams
from retrieval.types import RetrievalParams, Retrieved, StageTrace

__all__ = [
    "ConversationQuery",
    "CrossEncoderReranker",
    "RerankMode",
    "RerankParams",
    "Reranker",
    "RetrievalParams",
    "Retrieved",
    "QueryTurn",
    "StageTrace",
    "access_filter",
    "conversation_query",
    "fetch_documents",
    "may_see",
    "search",
    "validate_query",
]

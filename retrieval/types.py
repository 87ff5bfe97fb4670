"""The types retrieval hands back: the candidates in order with each stage's trace, and the
parameters of a search. The candidate itself and the request types are in ``core.types``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core import defaults
from core.types import Candidate, Stage
from retrieval.conversation import ConversationQuery
from retrieval.rerank import RerankParams


@dataclass(frozen=True, slots=True)
class RetrievalParams:
    """Leg limits, fusion and rerank depth. ``top_k`` is how many fused candidates come back."""

    dense_limit: int = defaults.DENSE_LIMIT
    bm25_limit: int = defaults.BM25_LIMIT
    rrf_k: int = defaults.RRF_K
    top_k: int = defaults.TOP_K
    rerank: RerankParams = RerankParams()
    max_query_chars: int = defaults.MAX_QUERY_CHARS
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class StageTrace:
    """What one stage returned: how many, how long, and whether it really ran."""

    count: int
    ms: float
    active: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Candidates in final order, each with its rank and score in every stage, and the trace."""

    candidates: list[Candidate]
    stages: dict[Stage, StageTrace]
    timings_ms: dict[str, float]
    dense_ranked: list[str] = field(default_factory=list)  # chunk ids, leg order
    bm25_ranked: list[str] = field(default_factory=list)
    blocked: int = 0  # distinct chunks the second lock removed, any list (always 0 unless a bug)
    conversation: ConversationQuery | None = None  # the turns used, for a conversation's query

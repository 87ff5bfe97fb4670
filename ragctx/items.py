"""What the framework adapters share: the request they send and each packed item's metadata.

No framework is imported here; ``ragctx.llamaindex`` and ``ragctx.langchain`` turn these into
their own node and document types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.api.schemas import ContextRequest, ContextResponse, FiltersIn, ItemOut


@dataclass(frozen=True, slots=True)
class ContextOptions:
    """Everything of a context request but the question: the budget and the narrowing.

    Attributes:
        budget_tokens: tokens the packed context may use.
        policy: policy name; the server's default if None.
        collection: collection; the server's default if None.
        filters: narrowing (sources, tags, dates, excluded documents).
        groups: narrow the key's access groups to these.
        encoding: tiktoken encoding of the reader model.
        top_k: candidates retrieval hands the assembler.
    """

    budget_tokens: int
    policy: str | None = None
    collection: str | None = None
    filters: FiltersIn | None = None
    groups: tuple[str, ...] | None = None
    encoding: str = "cl100k_base"
    top_k: int = 50

    def request(self, query: str) -> ContextRequest:
        """The request for ``query``; ``debug`` on, for every item's per-stage ranks."""
        return ContextRequest.model_validate(
            {
                "query": query,
                "budget_tokens": self.budget_tokens,
                "policy": self.policy,
                "collection": self.collection,
                "filters": self.filters,
                "groups": None if self.groups is None else list(self.groups),
                "encoding": self.encoding,
                "top_k": self.top_k,
                "debug": True,
            }
        )


# Shown to the LLM next to the text; the rest (ids, ranks, trace) is for code and logs.
LLM_METADATA_KEYS = ("citation", "title", "source", "section", "updated_at")


def item_metadata(item: ItemOut, answer: ContextResponse) -> dict[str, Any]:
    """One packed item's metadata: citation, source, section, per-stage ranks, trace id.

    ``ranks`` maps each stage that saw the item (dense, bm25, hybrid, rerank) to its rank;
    ``scores`` likewise. Values are plain JSON types, as both frameworks keep metadata.
    """
    stages = item.stages or {}
    return {
        "citation": item.citation,
        "doc_id": item.doc_id,
        "chunk_id": item.chunk_id,
        "chunk_ids": list(item.chunk_ids),
        "source": item.source,
        "path": item.path,
        "title": item.title,
        "section": " > ".join(item.section),
        "section_path": list(item.section),
        "updated_at": None if item.updated_at is None else item.updated_at.isoformat(),
        "score_kind": item.score_kind,
        "pinned": item.pinned,
        "flags": list(item.flags),
        "ranks": {stage: hit.rank for stage, hit in stages.items()},
        "scores": {stage: hit.score for stage, hit in stages.items()},
        "trace_id": answer.trace.trace_id,
        "policy": f"{answer.policy.name}@{answer.policy.version}",
    }

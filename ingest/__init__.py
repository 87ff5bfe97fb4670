"""Ingestion: read sources, chunk along structure, embed, and sync into a collection.

Entry point: :func:`sync`. ``stats`` reports what a collection holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from index import Store
from index.schema import Filter, MatchValue
from ingest.chunking import Chunker, ChunkingParams
from ingest.sources import read_source
from ingest.sync import (
    Partition,
    SyncOptions,
    SyncPlan,
    SyncProgress,
    SyncReport,
    WithheldDeletion,
    plan_source,
    sync,
)
from ingest.types import Chunk, Document, FieldMapping, InputProblem, SourceSpec

__all__ = [
    "Chunk",
    "Chunker",
    "ChunkingParams",
    "CollectionStats",
    "Document",
    "FieldMapping",
    "InputProblem",
    "Partition",
    "SourceSpec",
    "SyncOptions",
    "SyncPlan",
    "SyncProgress",
    "SyncReport",
    "WithheldDeletion",
    "plan_source",
    "read_source",
    "stats",
    "sync",
]


@dataclass(frozen=True, slots=True)
class CollectionStats:
    """Documents, chunks and sources a collection holds."""

    collection: str
    documents: int
    chunks: int
    sources: dict[str, dict[str, int]]  # source -> {"documents": n, "chunks": n}
    tenants: dict[str, int]  # tenant -> chunks

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "collection": self.collection,
            "documents": self.documents,
            "chunks": self.chunks,
            "sources": self.sources,
            "tenants": self.tenants,
        }


def stats(store: Store, collection: str) -> CollectionStats:
    """Count what ``collection`` holds, per source (raises UnknownCollectionError)."""
    chunks_per_source = store.facet(collection, "source")
    sources: dict[str, dict[str, int]] = {}
    for source, chunks in sorted(chunks_per_source.items()):
        docs = store.facet(collection, "doc_id", Filter(must=(MatchValue("source", source),)))
        sources[source] = {"documents": len(docs), "chunks": chunks}
    return CollectionStats(
        collection=collection,
        documents=sum(s["documents"] for s in sources.values()),
        chunks=store.count(collection),
        sources=sources,
        tenants=store.facet(collection, "tenant"),
    )

"""The store interface both backends implement: Qdrant Edge in-process, or a server by URL.

The conformance suite in ``tests/contracts/store_suite.py`` runs the same writes, filters and
queries against every backend and expects the same answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from index.schema import Filter, HybridQuery, HybridResult, PointRecord, StoredPoint


class Store(Protocol):
    """A set of named collections of points with ``dense`` and ``bm25`` vectors."""

    def collections(self) -> list[str]:
        """Names of the collections in this store, sorted."""
        ...

    def has_collection(self, name: str) -> bool:
        """Whether ``name`` exists."""
        ...

    def create_collection(self, name: str, *, dense_dim: int, meta: dict[str, Any]) -> None:
        """Create ``name`` with the ragctx schema; ``meta`` records models and parameters."""
        ...

    def collection_meta(self, name: str) -> dict[str, Any]:
        """What ``create_collection`` recorded (dense model, dimension, BM25 parameters)."""
        ...

    def drop_collection(self, name: str) -> None:
        """Delete ``name`` and all its points."""
        ...

    def upsert(self, name: str, points: Sequence[PointRecord]) -> None:
        """Insert or replace points by id; durable when it returns."""
        ...

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        ...

    def scroll(
        self,
        name: str,
        flt: Filter | None = None,
        *,
        fields: Sequence[str] | None = None,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        """Every point matching ``flt``, with the payload ``fields`` (``None`` = all)."""
        ...

    def retrieve(
        self, name: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[StoredPoint]:
        """Points by id, in no particular order; missing ids are skipped."""
        ...

    def count(self, name: str, flt: Filter | None = None) -> int:
        """Exact number of points matching ``flt``."""
        ...

    def outside(self, name: str, ids: Sequence[str], flt: Filter) -> list[StoredPoint]:
        """Those of ``ids`` that exist and do not match ``flt``, with their ``ACCESS_FIELDS``.

        One filtered read by id (answered from the payload indexes): how a caller re-checks
        the access of points that came back without their payload.
        """
        ...

    def facet(
        self, name: str, key: str, flt: Filter | None = None, limit: int = 10_000
    ) -> dict[str, int]:
        """Point counts per value of the keyword field ``key``."""
        ...

    def hybrid(self, name: str, query: HybridQuery) -> HybridResult:
        """Run each leg once under ``query.filter``, fuse them (``index.schema.rrf``) and read
        the payload of the fused ``limit`` points only."""
        ...

    def optimize(self, name: str) -> None:
        """Build indexes and merge segments (blocking on the embedded store)."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...

"""The stored schema: vector names, payload fields and their indexes, point ids, filters.

This is the contract of what a point holds (DESIGN.md §3); the payload itself is
``index.payload.ChunkPayload``. Backends translate the filter
types here into their own; nothing outside ``index`` sees a Qdrant type.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import InvalidInputError
from index.payload import DOC_HASH, DOC_ID, GROUPS, SOURCE, TAGS, TENANT, UPDATED_AT

DENSE = "dense"
BM25 = "bm25"

# Payload fields with an index, and the index kind each gets. ``tenant`` is a tenant index
# (Qdrant co-locates a tenant's points), ``updated_at`` a datetime index for range filters.
INDEXED_FIELDS: dict[str, str] = {
    TENANT: "tenant",
    GROUPS: "keyword",
    DOC_ID: "keyword",
    SOURCE: "keyword",
    TAGS: "keyword",
    UPDATED_AT: "datetime",
    DOC_HASH: "keyword",
}

ACCESS_FIELDS = (TENANT, GROUPS)
"""Payload fields that decide access; ``Store.outside`` returns them for the points it names."""


SCHEMA_VERSION = 1


_POINT_NAMESPACE = uuid.UUID("6b0f3a52-5d1e-4c39-9a57-1b8e3f2d7c10")
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_collection_name(name: str) -> str:
    """Return ``name`` if it is a valid collection name (it names a folder), else raise."""
    if not _COLLECTION_RE.fullmatch(name) or name in {".", ".."}:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            field="collection",
            value=name,
        )
    return name


def point_id(tenant: str, source: str, doc_id: str, doc_hash: str, chunk_index: int) -> str:
    """Deterministic point id of one chunk of one version of a tenant's document.

    The version (``doc_hash``) is part of the id, so a changed document's new chunks are new
    points, written next to the old ones before those are deleted: no reader finds it missing,
    and a re-run after a crash writes the same ids again instead of duplicates. The tenant is
    part of it too, so two tenants' syncs can never write the same point, whatever their
    source names and doc ids.

    Points written before the tenant was part of the id (:func:`legacy_point_id`) are never
    recomputed: a sync reads the ids a collection holds, so they stay valid until their
    document changes and is written under the new ids.
    """
    key = "\x1f".join(("v2", tenant, source, doc_id, doc_hash, str(chunk_index)))
    return str(uuid.uuid5(_POINT_NAMESPACE, key))


def legacy_point_id(source: str, doc_id: str, doc_hash: str, chunk_index: int) -> str:
    """The point id of schema version 1, without the tenant; kept to read and test old stores."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{source}\x1f{doc_id}\x1f{doc_hash}\x1f{chunk_index}"))


@dataclass(frozen=True, slots=True)
class SparseVec:
    """A sparse vector as plain lists (BM25 term weights, or a query's terms)."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class PointRecord:
    """One point to write: id, both vectors, payload."""

    id: str
    dense: list[float]
    sparse: SparseVec
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point read back from the store. ``score`` is set by queries, ``None`` otherwise."""

    id: str
    payload: dict[str, Any]
    score: float | None = None
    dense: list[float] | None = None


# Filters: a small closed set of conditions, translated by each backend.


@dataclass(frozen=True, slots=True)
class MatchValue:
    """``key`` equals ``value`` (for a list field: contains it)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class MatchAny:
    """``key`` equals any of ``values`` (for a list field: shares an element)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DateRange:
    """``key`` (an RFC 3339 datetime) within [gte, lte]; a missing bound is open."""

    key: str
    gte: datetime | None = None
    lte: datetime | None = None


Condition = MatchValue | MatchAny | DateRange


@dataclass(frozen=True, slots=True)
class Filter:
    """All of ``must`` hold and none of ``must_not`` does."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def and_(self, other: Filter) -> Filter:
        """Both filters at once."""
        return Filter(must=self.must + other.must, must_not=self.must_not + other.must_not)


def matches(flt: Filter | None, payload: Mapping[str, Any]) -> bool:
    """Evaluate ``flt`` on a payload in Python: the second lock behind the store's filter."""
    if flt is None:
        return True
    return all(_holds(c, payload) for c in flt.must) and not any(
        _holds(c, payload) for c in flt.must_not
    )


def _holds(cond: Condition, payload: Mapping[str, Any]) -> bool:
    raw = payload.get(cond.key)
    values: Sequence[Any] = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    if isinstance(cond, MatchValue):
        return cond.value in values
    if isinstance(cond, MatchAny):
        return any(v in cond.values for v in values)
    for v in values:
        try:
            when = datetime.fromisoformat(str(v))
        except ValueError:
            continue
        if (cond.gte is None or when >= cond.gte) and (cond.lte is None or when <= cond.lte):
            return True
    return False


@dataclass(frozen=True, slots=True)
class HybridQuery:
    """One hybrid query: both legs with their limits, the same filter on both, RRF fusion."""

    dense: list[float]
    sparse: SparseVec
    filter: Filter | None
    dense_limit: int
    sparse_limit: int
    rrf_k: int
    limit: int
    idf_filter: Filter | None = None  # corpus for BM25 IDF (the tenant); None = whole collection
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class HybridResult:
    """The fused list and each leg's own list.

    Each leg is computed once, in one batch, and fused by ``rrf`` outside the engine (asking
    the engine for the fused query too would compute both legs a second time). Fused points
    carry their whole payload, read by id for those ``limit`` points only. Leg points carry
    their id and score only: reading and decoding 400 payloads for the legs cost more than the
    legs themselves, and a caller re-checks their access with ``Store.outside`` instead.
    """

    fused: list[StoredPoint]
    dense: list[StoredPoint]
    sparse: list[StoredPoint]
    extra: dict[str, Any] = field(default_factory=dict)


def rrf(legs: Sequence[Sequence[StoredPoint]], *, k: int, limit: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked lists, as Qdrant defines it (``Fusion.RRF``).

    A point at 0-based position ``p`` of a list scores ``1 / (k + p)``, summed over the lists
    it is in; the best ``limit`` come back as ``(id, score)``, ties in the order the points
    first appear (the first list first), as ``qdrant_client.hybrid.fusion`` orders them.
    """
    scores: dict[str, float] = {}
    for leg in legs:
        for position, point in enumerate(leg):
            scores[point.id] = scores.get(point.id, 0.0) + 1.0 / (k + position)
    return sorted(scores.items(), key=lambda item: -item[1])[:limit]

"""Qdrant server/cluster backend through ``qdrant-client``.

Tests run this backend against qdrant-client's in-process local mode, the stand-in for a
server on machines where none can run (functionally equal, far slower).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import RagctxError, StoreUnavailableError, UnknownCollectionError
from index.schema import (
    ACCESS_FIELDS,
    BM25,
    DENSE,
    INDEXED_FIELDS,
    Condition,
    DateRange,
    Filter,
    HybridQuery,
    HybridResult,
    MatchAny,
    MatchValue,
    PointRecord,
    StoredPoint,
    rrf,
    validate_collection_name,
)

log = logging.getLogger(__name__)


class ClientStore:
    """Collections on a Qdrant server (or qdrant-client local mode), same schema as Edge."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._known: set[str] = set()

    @classmethod
    def connect(cls, url: str, *, api_key: str | None = None, timeout: int = 30) -> ClientStore:
        """Connect to a server by URL and check it answers."""
        client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
        try:
            client.get_collections()
        except (UnexpectedResponse, ResponseHandlingException, OSError) as err:
            raise StoreUnavailableError(
                f"cannot reach the Qdrant server at {url}: {err}; check RAGCTX_QDRANT_URL and "
                "RAGCTX_QDRANT_API_KEY"
            ) from err
        return cls(client)

    def close(self) -> None:
        """Close the client; idempotent."""
        self.client.close()

    def collections(self) -> list[str]:
        """Collection names on the server."""
        return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        """Whether the collection exists (cached once seen)."""
        if name in self._known:
            return True
        exists = bool(self.client.collection_exists(validate_collection_name(name)))
        if exists:
            self._known.add(name)
        return exists

    def _check(self, name: str) -> None:
        if not self.has_collection(name):
            raise UnknownCollectionError(name, available=self.collections())

    def create_collection(self, name: str, *, dense_dim: int, meta: dict[str, Any]) -> None:
        """Create with named vectors, the IDF modifier and the payload indexes."""
        self.client.create_collection(
            validate_collection_name(name),
            vectors_config={
                DENSE: models.VectorParams(size=dense_dim, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={BM25: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata=meta,
        )
        for field, kind in INDEXED_FIELDS.items():
            self.client.create_payload_index(name, field, field_schema=_index_schema(kind))
        self._known.add(name)

    def collection_meta(self, name: str) -> dict[str, Any]:
        """The metadata stored with the collection."""
        self._check(name)
        info = self.client.get_collection(name)
        return dict(info.config.metadata or {})

    def drop_collection(self, name: str) -> None:
        """Delete the collection."""
        self._check(name)
        self.client.delete_collection(name)
        self._known.discard(name)

    def upsert(self, name: str, points: Sequence[PointRecord]) -> None:
        """Upsert and wait for the write to be applied."""
        if not points:
            return
        self._check(name)
        self.client.upsert(
            name,
            points=[
                models.PointStruct(
                    id=p.id,
                    vector={
                        DENSE: p.dense,
                        BM25: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    },
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete by id and wait."""
        if ids:
            self._check(name)
            self.client.delete(
                name, points_selector=models.PointIdsList(points=list(ids)), wait=True
            )

    def flush(self, name: str) -> None:
        """A server persists on its own."""

    def scroll(
        self,
        name: str,
        flt: Filter | None = None,
        *,
        fields: Sequence[str] | None = None,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        """Page through matching points."""
        self._check(name)
        payload: bool | list[str] = True if fields is None else list(fields)
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                name,
                scroll_filter=_filter(flt),
                limit=batch,
                offset=offset,
                with_payload=payload,
                with_vectors=False,
            )
            for r in records:
                yield StoredPoint(id=str(r.id), payload=dict(r.payload or {}))
            if offset is None:
                return

    def retrieve(
        self, name: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[StoredPoint]:
        """Points by id."""
        if not ids:
            return []
        self._check(name)
        records = self.client.retrieve(
            name, ids=list(ids), with_payload=True, with_vectors=[DENSE] if with_vectors else False
        )
        return [_stored(r, with_vectors) for r in records]

    def count(self, name: str, flt: Filter | None = None) -> int:
        """Exact count."""
        self._check(name)
        return int(self.client.count(name, count_filter=_filter(flt), exact=True).count)

    def outside(self, name: str, ids: Sequence[str], flt: Filter) -> list[StoredPoint]:
        """Those of ``ids`` that do not match ``flt``."""
        self._check(name)
        inside = _filter(flt)
        if not ids or inside is None:
            return []
        records, _ = self.client.scroll(
            name,
            scroll_filter=models.Filter(
                must=[models.HasIdCondition(has_id=list(ids))], must_not=[inside]
            ),
            limit=len(ids),
            with_payload=list(ACCESS_FIELDS),
            with_vectors=False,
        )
        return [StoredPoint(id=str(r.id), payload=dict(r.payload or {})) for r in records]

    def facet(
        self, name: str, key: str, flt: Filter | None = None, limit: int = 10_000
    ) -> dict[str, int]:
        """Counts per value of a keyword field."""
        self._check(name)
        res = self.client.facet(name, key=key, facet_filter=_filter(flt), limit=limit, exact=True)
        return {str(h.value): int(h.count) for h in res.hits}

    def hybrid(self, name: str, query: HybridQuery) -> HybridResult:
        """Both legs in one batch request, fused here, then the fused points by id.

        Two round trips instead of one, so that the server computes each leg once (a fused
        query beside the legs would compute both twice) and ranks ties as the embedded store
        does.
        """
        self._check(name)
        flt = _filter(query.filter)
        corpus = _filter(query.idf_filter)
        idf = (
            models.SearchParams(idf=models.IdfCorpusParams(corpus=corpus))
            if corpus is not None
            else None
        )
        sparse = models.SparseVector(indices=query.sparse.indices, values=query.sparse.values)
        dense_res, sparse_res = self.client.query_batch_points(
            name,
            requests=[
                models.QueryRequest(
                    query=query.dense,
                    using=DENSE,
                    filter=flt,
                    limit=query.dense_limit,
                    with_payload=False,
                ),
                models.QueryRequest(
                    query=sparse,
                    using=BM25,
                    filter=flt,
                    limit=query.sparse_limit,
                    params=idf,
                    with_payload=False,
                ),
            ],
        )
        dense = [_stored(p, False) for p in dense_res.points]
        sparse_ranked = [_stored(p, False) for p in sparse_res.points]
        top = rrf((dense, sparse_ranked), k=query.rrf_k, limit=query.limit)
        records = {
            str(r.id): r
            for r in self.client.retrieve(
                name,
                ids=[pid for pid, _ in top],
                with_payload=True,
                with_vectors=[DENSE] if query.with_vectors else False,
            )
        }
        fused = [
            _stored(records[pid], query.with_vectors, score=score)
            for pid, score in top
            if pid in records  # deleted between the two calls
        ]
        return HybridResult(fused=fused, dense=dense, sparse=sparse_ranked)

    def optimize(self, name: str) -> None:
        """A server optimizes in the background; nothing to do."""
        self._check(name)


def _index_schema(kind: str) -> Any:
    if kind == "tenant":
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    if kind == "datetime":
        return models.PayloadSchemaType.DATETIME
    if kind == "keyword":
        return models.PayloadSchemaType.KEYWORD
    raise RagctxError(f"unknown index kind {kind!r}")


def _stored(p: Any, with_vectors: bool, *, score: float | None = None) -> StoredPoint:
    dense = None
    if with_vectors and isinstance(p.vector, dict) and DENSE in p.vector:
        dense = [float(x) for x in p.vector[DENSE]]
    if score is None and getattr(p, "score", None) is not None:
        score = float(p.score)
    return StoredPoint(id=str(p.id), payload=dict(p.payload or {}), score=score, dense=dense)


def _filter(flt: Filter | None) -> models.Filter | None:
    if flt is None or (not flt.must and not flt.must_not):
        return None
    return models.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _condition(cond: Condition) -> models.FieldCondition:
    if isinstance(cond, MatchValue):
        return models.FieldCondition(key=cond.key, match=models.MatchValue(value=cond.value))
    if isinstance(cond, MatchAny):
        return models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.values)))
    if isinstance(cond, DateRange):
        return models.FieldCondition(
            key=cond.key, range=models.DatetimeRange(gte=cond.gte, lte=cond.lte)
        )
    raise RagctxError(f"unsupported filter condition {cond!r}")

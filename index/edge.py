"""Qdrant Edge backend: Qdrant's engine in-process, one shard folder per collection.

Edge quirks this adapter hides (see shared/notes/qdrant-edge.md): untyped exceptions mapped by
message, ids returned as ``uuid.UUID``, RRF ``k`` required, payload indexes created explicitly,
HNSW only built by ``optimize()``. One process owns a store: a lock file in the store folder is
taken on open, so a second process fails at once with a message that says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import qdrant_edge as qe

from core.errors import (
    RagctxError,
    StoreLockedError,
    StoreUnavailableError,
    UnknownCollectionError,
)
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

LOCK_FILE = ".ragctx.lock"
META_FILE = "ragctx-collection.json"


class EdgeStore:
    """A folder of Edge shards, one per collection, owned by this process while open."""

    def __init__(self, path: Path, *, owner: str = "ragctx") -> None:
        self.path = Path(path)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock: IO[str] | None = None
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire_lock(owner)

    # ownership -----------------------------------------------------------------------------

    def _acquire_lock(self, owner: str) -> None:
        lock_path = self.path / LOCK_FILE
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (held while open)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreLockedError(
                f"the embedded store {self.path} is held by {holder}; one process owns an "
                "embedded store. Stop that process, or send the job to the server that holds "
                "it (`ragctx ingest` does this when the server is running), or point "
                "RAGCTX_QDRANT_PATH at another folder"
            ) from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"{owner} (pid {os.getpid()})\n")
        handle.flush()
        self._lock = handle

    def close(self) -> None:
        """Flush and close every shard, then release the folder; idempotent."""
        for name, shard in list(self._shards.items()):
            try:
                shard.flush()
                shard.close()
            except Exception as err:  # noqa: BLE001 (closing must go on for the others)
                log.warning("closing collection %s failed: %s", name, err)
        self._shards.clear()
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # collections ---------------------------------------------------------------------------

    def collections(self) -> list[str]:
        """Collections are the sub-folders holding an Edge shard."""
        return sorted(p.name for p in self.path.iterdir() if (p / "edge_config.json").exists())

    def has_collection(self, name: str) -> bool:
        """Whether the shard folder exists."""
        return (self.path / validate_collection_name(name) / "edge_config.json").exists()

    def create_collection(self, name: str, *, dense_dim: int, meta: dict[str, Any]) -> None:
        """Create the shard with both named vectors and every payload index."""
        folder = self.path / validate_collection_name(name)
        cfg = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dense_dim, distance=qe.Distance.Cosine)},
            sparse_vectors={BM25: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        shard = _call(lambda: qe.EdgeShard.create(str(folder), cfg), folder)
        for field, kind in INDEXED_FIELDS.items():
            shard.update(qe.UpdateOperation.create_field_index(field, _index_params(kind)))
        shard.flush()
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), "utf-8")
        self._shards[name] = shard

    def collection_meta(self, name: str) -> dict[str, Any]:
        """The JSON written beside the shard at creation."""
        self._shard(name)
        meta_path = self.path / name / META_FILE
        if not meta_path.exists():
            return {}
        meta: dict[str, Any] = json.loads(meta_path.read_text("utf-8"))
        return meta

    def drop_collection(self, name: str) -> None:
        """Close the shard and remove its folder."""
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        folder = self.path / validate_collection_name(name)
        if not (folder / "edge_config.json").exists():
            raise UnknownCollectionError(name, available=self.collections())
        shutil.rmtree(folder)

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        if self._lock is None:
            raise StoreUnavailableError(f"the embedded store {self.path} is closed")
        if not self.has_collection(name):
            raise UnknownCollectionError(name, available=self.collections())
        folder = self.path / name
        shard = _call(lambda: qe.EdgeShard.load(str(folder)), folder)
        self._shards[name] = shard
        return shard

    # points --------------------------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[PointRecord]) -> None:
        """Write points; the WAL makes them durable once ``update`` returns."""
        if not points:
            return
        shard = self._shard(name)
        edge_points = [
            qe.Point(
                id=p.id,
                vector={
                    DENSE: p.dense,
                    BM25: qe.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload=p.payload,
            )
            for p in points
        ]
        shard.update(qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by id."""
        if ids:
            self._shard(name).update(qe.UpdateOperation.delete_points(list(ids)))

    def flush(self, name: str) -> None:
        """Persist segments (the WAL already makes writes durable)."""
        self._shard(name).flush()

    def scroll(
        self,
        name: str,
        flt: Filter | None = None,
        *,
        fields: Sequence[str] | None = None,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        """Page through matching points."""
        shard = self._shard(name)
        payload: bool | list[str] = True if fields is None else list(fields)
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    filter=_filter(flt),
                    limit=batch,
                    with_payload=payload,
                    with_vector=False,
                )
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
        records = self._shard(name).retrieve(list(ids), True, [DENSE] if with_vectors else False)
        return [_stored(r, with_vectors) for r in records]

    def count(self, name: str, flt: Filter | None = None) -> int:
        """Exact count."""
        return int(self._shard(name).count(qe.CountRequest(exact=True, filter=_filter(flt))))

    def outside(self, name: str, ids: Sequence[str], flt: Filter) -> list[StoredPoint]:
        """Those of ``ids`` that do not match ``flt``."""
        shard = self._shard(name)
        inside = _filter(flt)
        if not ids or inside is None:
            return []
        records, _ = shard.scroll(
            qe.ScrollRequest(
                filter=qe.Filter(must=[qe.HasIdCondition(set(ids))], must_not=[inside]),
                limit=len(ids),
                with_payload=list(ACCESS_FIELDS),
                with_vector=False,
            )
        )
        return [StoredPoint(id=str(r.id), payload=dict(r.payload or {})) for r in records]

    def facet(
        self, name: str, key: str, flt: Filter | None = None, limit: int = 10_000
    ) -> dict[str, int]:
        """Counts per value of an indexed keyword field."""
        hits = self._shard(name).facet(
            qe.FacetRequest(key=key, limit=limit, exact=True, filter=_filter(flt))
        )
        return {str(h.value): int(h.count) for h in hits}

    def hybrid(self, name: str, query: HybridQuery) -> HybridResult:
        """Both legs in one batch, fused here, then the fused points' payload by id."""
        shard = self._shard(name)
        flt = _filter(query.filter)
        corpus = _filter(query.idf_filter)
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=corpus)) if corpus is not None else None
        sparse = qe.SparseVector(indices=query.sparse.indices, values=query.sparse.values)
        dense_hits, sparse_hits = shard.query_batch(
            qe.QueryBatchRequest(
                [
                    qe.QueryRequest(
                        query=qe.Query.Nearest(query.dense, using=DENSE),
                        filter=flt,
                        limit=query.dense_limit,
                        with_payload=False,
                    ),
                    qe.QueryRequest(
                        query=qe.Query.Nearest(sparse, using=BM25),
                        filter=flt,
                        limit=query.sparse_limit,
                        params=idf,
                        with_payload=False,
                    ),
                ]
            )
        )
        dense = [_ranked(p) for p in dense_hits]
        sparse_ranked = [_ranked(p) for p in sparse_hits]
        top = rrf((dense, sparse_ranked), k=query.rrf_k, limit=query.limit)
        with_vector: bool | list[str] = [DENSE] if query.with_vectors else False
        records = {str(r.id): r for r in shard.retrieve([pid for pid, _ in top], True, with_vector)}
        # a point deleted between the two calls (a sync running alongside) is left out
        fused = [
            _stored(records[pid], query.with_vectors, score=score)
            for pid, score in top
            if pid in records
        ]
        return HybridResult(fused=fused, dense=dense, sparse=sparse_ranked)

    def optimize(self, name: str) -> None:
        """Build HNSW and merge segments. Blocks the whole process (it holds the GIL)."""
        shard = self._shard(name)
        shard.optimize()
        shard.flush()


def _call(fn: Any, folder: Path) -> qe.EdgeShard:
    try:
        shard: qe.EdgeShard = fn()
    except Exception as err:  # Edge raises bare Exception; map by message
        message = str(err)
        if "WouldBlock" in message:
            raise StoreLockedError(
                f"the collection folder {folder} is held by another process; one process owns "
                "an embedded store: stop it or send the job to the server that holds it"
            ) from err
        raise StoreUnavailableError(f"cannot open collection folder {folder}: {message}") from err
    return shard


def _index_params(kind: str) -> Any:
    if kind == "tenant":
        return qe.KeywordIndexParams(is_tenant=True)
    if kind == "datetime":
        return qe.PayloadSchemaType.Datetime
    if kind == "keyword":
        return qe.PayloadSchemaType.Keyword
    raise RagctxError(f"unknown index kind {kind!r}")


def _stored(p: Any, with_vectors: bool, *, score: float | None = None) -> StoredPoint:
    # each attribute read converts from the engine anew: read once; the vector is a list of
    # floats already
    dense = (p.vector or {}).get(DENSE) if with_vectors else None
    if score is None and getattr(p, "score", None) is not None:
        score = float(p.score)
    return StoredPoint(id=str(p.id), payload=dict(p.payload or {}), score=score, dense=dense)


def _ranked(p: Any) -> StoredPoint:
    return StoredPoint(id=str(p.id), payload={}, score=float(p.score))


def _filter(flt: Filter | None) -> qe.Filter | None:
    if flt is None or (not flt.must and not flt.must_not):
        return None
    return qe.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _condition(cond: Condition) -> Any:
    if isinstance(cond, MatchValue):
        return qe.FieldCondition(key=cond.key, match=qe.MatchValue(cond.value))
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(key=cond.key, match=qe.MatchAny(list(cond.values)))
    if isinstance(cond, DateRange):
        return qe.FieldCondition(
            key=cond.key,
            range=qe.RangeDateTime(
                gte=cond.gte.isoformat() if cond.gte else None,
                lte=cond.lte.isoformat() if cond.lte else None,
            ),
        )
    raise RagctxError(f"unsupported filter condition {cond!r}")

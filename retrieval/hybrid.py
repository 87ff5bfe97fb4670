"""Hybrid retrieval: one Qdrant batch (dense + BM25 legs, the same filter), RRF, then rerank."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from core.errors import InvalidInputError
from core.types import Candidate, Principal, ScoreKind, SearchFilters, Stage, StageHit
from index import Encoders, Store
from index.payload import DOC_ID, TENANT, ChunkPayload
from index.schema import Filter, HybridQuery, MatchAny, SparseVec, StoredPoint
from retrieval.conversation import ConversationQuery
from retrieval.filters import access_filter, may_see, second_lock
from retrieval.rerank import Reranker, RerankMode, RerankParams, combine
from retrieval.types import RetrievalParams, Retrieved, StageTrace

log = logging.getLogger(__name__)


def validate_query(query: str, *, max_chars: int) -> str:
    """The query stripped; empty or too long is an error naming the field."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(
            "query is empty; send the question to retrieve context for", field="query"
        )
    if len(query) > max_chars:
        raise InvalidInputError(
            f"query is {len(query)} characters, above the limit of {max_chars}; shorten it or "
            "raise RAGCTX_MAX_QUERY_CHARS",
            field="query",
            value=len(query),
        )
    return query.strip()


def search(
    query: str | ConversationQuery,
    principal: Principal,
    filters: SearchFilters | None = None,
    *,
    collection: str,
    store: Store,
    encoders: Encoders,
    reranker: Reranker | None = None,
    params: RetrievalParams = RetrievalParams(),
) -> Retrieved:
    """Retrieve candidates for ``query`` that ``principal`` may see.

    Example::

        hits = search("max message size?", Principal("acme", ("support",)),
                      collection="docs", store=store, encoders=encoders)
        for c in hits.candidates[:3]:
            print(c.stages[Stage.HYBRID].rank, c.doc_id, c.score)

    Args:
        query: the question, or a conversation's query (``retrieval.conversation``): then the
            BM25 leg is the weighted sum of its turns' sparse vectors, the dense leg embeds the
            turns' combined text (its oldest turns left out when the text would exceed the
            dense model's word-piece limit, which would cut off the question), the reranker
            scores that same text, and the legs' trace notes name the turns used.
        principal: tenant and groups, from credentials.
        filters: request narrowing (sources, tags, excluded ids, dates).
        collection: the collection to search.
        store: the open store.
        encoders: the encoders the collection was built with.
        reranker: a cross-encoder, or None to skip the stage.
        params: limits, RRF k, rerank depth and mode.

    Returns:
        Candidates in final order with per-stage ranks/scores, stage traces and timings.

    Raises:
        InvalidInputError: empty or too long query.
        UnknownCollectionError: no such collection.
    """
    conversation: ConversationQuery | None = None
    notes: dict[Stage, str] = {}
    if isinstance(query, ConversationQuery):
        for turn in query.turns:
            validate_query(turn.text, max_chars=params.max_query_chars)
        conversation = query
        dense_query = _within_dense_limit(query, encoders)
        text = dense_query.dense_text
        notes[Stage.BM25] = query.describe()
        notes[Stage.DENSE] = f"embedded the combined text of {_turns(dense_query)}"
    else:
        text = validate_query(query, max_chars=params.max_query_chars)
    filters = SearchFilters() if filters is None else filters
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dense_vec = encoders.dense.encode_query(text).tolist()
    t1 = time.perf_counter()
    sparse_vec: SparseVec = (
        encoders.sparse.embed_query(text)
        if conversation is None
        else encoders.sparse.embed_weighted(conversation.bm25_parts)
    )
    t2 = time.perf_counter()
    timings["dense_encode"] = (t1 - t0) * 1000
    timings["bm25_encode"] = (t2 - t1) * 1000
    result = store.hybrid(
        collection,
        HybridQuery(
            dense=dense_vec,
            sparse=sparse_vec,
            filter=access_filter(principal, filters),
            dense_limit=params.dense_limit,
            sparse_limit=params.bm25_limit,
            rrf_k=params.rrf_k,
            limit=params.top_k,
            # BM25 statistics over exactly what the caller may see (tenant and groups), so a
            # document it cannot see never moves a score, a rank or a debug field
            idf_filter=second_lock(principal),
            with_vectors=params.with_vectors,
        ),
    )

    # The second lock applies to every list that leaves this function, legs included, and
    # ranks count only what the principal may see (a gap would betray a hidden chunk). Fused
    # points carry their payload and are checked here; the legs' other points come back
    # without one and are checked by id in the store, against the same lock.
    blocked_ids: set[str] = set()
    fused = _visible(result.fused, principal, blocked_ids)
    seen = {p.id for p in result.fused}
    unchecked = list(
        dict.fromkeys(p.id for p in (*result.dense, *result.sparse) if p.id not in seen)
    )
    for point in store.outside(collection, unchecked, second_lock(principal)):
        _block(point, principal, blocked_ids)
    t3 = time.perf_counter()
    timings["store_query"] = (t3 - t2) * 1000  # the query and the second lock's check
    dense = [p for p in result.dense if p.id not in blocked_ids]
    sparse = [p for p in result.sparse if p.id not in blocked_ids]
    dense_hits = {p.id: StageHit(r, _score(p)) for r, p in enumerate(dense, 1)}
    bm25_hits = {p.id: StageHit(r, _score(p)) for r, p in enumerate(sparse, 1)}
    candidates: list[Candidate] = []
    for rank, point in enumerate(fused, 1):
        stages: dict[Stage, StageHit] = {Stage.HYBRID: StageHit(rank, _score(point))}
        if point.id in dense_hits:
            stages[Stage.DENSE] = dense_hits[point.id]
        if point.id in bm25_hits:
            stages[Stage.BM25] = bm25_hits[point.id]
        candidates.append(candidate_from_point(point, stages=stages, score=_score(point)))
    t4 = time.perf_counter()
    timings["assemble_candidates"] = (t4 - t3) * 1000

    stage_traces = {
        Stage.DENSE: StageTrace(
            len(dense),
            timings["dense_encode"] + timings["store_query"],
            note=notes.get(Stage.DENSE, ""),
        ),
        Stage.BM25: StageTrace(
            len(sparse),
            timings["bm25_encode"] + timings["store_query"],
            note=notes.get(Stage.BM25, ""),
        ),
        Stage.HYBRID: StageTrace(len(candidates), timings["store_query"]),
    }
    if reranker is None:
        stage_traces[Stage.RERANK] = StageTrace(0, 0.0, active=False, note="no reranker configured")
    else:
        candidates, trace = _rerank(text, candidates, reranker, params.rerank)
        stage_traces[Stage.RERANK] = trace
        timings["rerank"] = trace.ms
    timings["total"] = (time.perf_counter() - t0) * 1000
    return Retrieved(
        candidates=candidates,
        stages=stage_traces,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        dense_ranked=[p.id for p in dense],
        bm25_ranked=[p.id for p in sparse],
        blocked=len(blocked_ids),
        conversation=conversation,
    )


def _within_dense_limit(query: ConversationQuery, encoders: Encoders) -> ConversationQuery:
    """``query`` without its oldest turns while the combined text exceeds the dense model's
    word-piece limit: the model truncates the end, which is the question itself."""
    limit = encoders.dense.max_tokens
    while len(query.turns) > 1 and encoders.dense.count_tokens([query.dense_text])[0] > limit:
        query = query.oldest_dropped()
    return query


def _turns(query: ConversationQuery) -> str:
    return f"user turns {', '.join(str(i) for i in query.indexes)} of {query.n_user_turns}"


def _score(point: StoredPoint) -> float:
    return 0.0 if point.score is None else point.score


def _visible(
    points: Sequence[StoredPoint], principal: Principal, blocked_ids: set[str]
) -> list[StoredPoint]:
    """The points ``principal`` may see; the others go into ``blocked_ids``, logged once each."""
    kept: list[StoredPoint] = []
    for point in points:
        if may_see(principal, point.payload):
            kept.append(point)
        else:
            _block(point, principal, blocked_ids)
    return kept


def _block(point: StoredPoint, principal: Principal, blocked_ids: set[str]) -> None:
    if point.id in blocked_ids:
        return
    blocked_ids.add(point.id)
    log.error(
        "second lock: dropped chunk %s of tenant %r for principal %r (tenant %r); the store "
        "filter let it through",
        point.id,
        point.payload.get(TENANT),
        principal.name,
        principal.tenant,
    )


def _rerank(
    query: str, candidates: list[Candidate], reranker: Reranker, params: RerankParams
) -> tuple[list[Candidate], StageTrace]:
    started = time.perf_counter()
    wanted = candidates[: params.top_n]
    logits: list[float] = []
    stopped = ""
    # In hybrid order, a batch at a time, until top_n or the budget (checked after each batch,
    # so the stage never runs longer than the budget plus one batch).
    for start in range(0, len(wanted), params.batch_size):
        batch = wanted[start : start + params.batch_size]
        logits.extend(reranker.score(query, [_rerank_text(c) for c in batch]))
        spent = (time.perf_counter() - started) * 1000
        if params.budget_ms > 0 and spent >= params.budget_ms and len(logits) < len(wanted):
            stopped = (
                f"; budget {params.budget_ms:g} ms reached after {len(logits)} of "
                f"{len(wanted)} candidates"
            )
            break
    head, tail = candidates[: len(logits)], candidates[len(logits) :]
    order = sorted(range(len(head)), key=lambda i: (-logits[i], i))
    rerank_rank = {i: r + 1 for r, i in enumerate(order)}
    annotated = [
        replace(
            c,
            stages={**c.stages, Stage.RERANK: StageHit(rerank_rank[i], logits[i])},
        )
        for i, c in enumerate(head)
    ]
    ms = (time.perf_counter() - started) * 1000
    if not reranker.trained:
        # An untrained test model: run the real code path, keep the hybrid order.
        return annotated + tail, StageTrace(
            len(head),
            ms,
            active=False,
            note=f"reranker {reranker.name!r} is marked untrained; scores recorded, order "
            f"kept{stopped}",
        )
    final, scores = combine([c.stages[Stage.HYBRID].rank for c in head], logits, params)
    kind = ScoreKind.RERANK if params.mode is RerankMode.REPLACE else ScoreKind.RRF
    reranked = [
        replace(annotated[i], score=s, score_kind=kind) for i, s in zip(final, scores, strict=True)
    ]
    if params.mode is RerankMode.FUSE:
        # the tail gets the same formula without a rerank term, so scores fall with the order
        tail = [
            replace(c, score=1.0 / (params.k + c.stages[Stage.HYBRID].rank), score_kind=kind)
            for c in tail
        ]
    return reranked + tail, StageTrace(len(head), ms, note=f"mode={params.mode.value}{stopped}")


def _rerank_text(c: Candidate) -> str:
    return f"{c.title}\n{c.text}" if c.title and not c.text.startswith(c.title) else c.text


def candidate_from_point(
    point: StoredPoint, *, stages: Mapping[Stage, StageHit], score: float
) -> Candidate:
    """A Candidate from a stored point's payload (``index.payload.ChunkPayload``)."""
    p = ChunkPayload.from_payload(point.payload)
    return Candidate(
        chunk_id=point.id,
        doc_id=p.doc_id,
        text=p.text,
        score=score,
        score_kind=ScoreKind.RRF,
        tenant=p.tenant,
        source=p.source,
        path=p.path,
        title=p.title,
        section=p.section,
        chunk_index=p.chunk_index,
        char_start=p.char_start,
        char_end=p.char_end,
        tokens=p.tokens,
        body_tokens=p.body_tokens,
        groups=p.groups,
        tags=p.tags,
        updated_at=p.updated_at,
        metadata=p.metadata,
        stages=dict(stages),
        dense_vector=tuple(point.dense) if point.dense is not None else None,
    )


def fetch_documents(
    doc_ids: Sequence[str],
    principal: Principal,
    filters: SearchFilters | None = None,
    *,
    collection: str,
    store: Store,
    with_vectors: bool = False,
) -> list[Candidate]:
    """Every chunk of ``doc_ids`` the principal may see (pinned documents), in document order.

    The same access filter as ``search`` applies, the request's narrowing included: a pinned id
    the caller may not see, or has filtered out, yields nothing.
    """
    if not doc_ids:
        return []
    flt = access_filter(principal, filters or SearchFilters()).and_(
        Filter(must=(MatchAny(DOC_ID, tuple(doc_ids)),))
    )
    points = list(store.scroll(collection, flt))
    if with_vectors and points:
        points = store.retrieve(collection, [p.id for p in points], with_vectors=True)
    out = [
        candidate_from_point(p, stages={}, score=0.0)
        for p in points
        if may_see(principal, p.payload)
    ]
    order = {d: i for i, d in enumerate(doc_ids)}
    return sorted(out, key=lambda c: (order.get(c.doc_id, len(order)), c.chunk_index))

"""The context pipeline behind ``POST /v1/context``: retrieve → pinned fetch → assemble → answer.

:func:`prepare` checks the request on the event loop (cheap, before a slot is taken);
:func:`run_pipeline` does the CPU-bound work in a worker thread: ``retrieval.search`` (both
legs, fusion, rerank), the policy's pinned documents through the same access filter, then
``assembler.assemble``. Each stage gets an OpenTelemetry span, a Prometheus observation and a
line in the answer's trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from opentelemetry import trace
from opentelemetry.trace import Span

from assembler import ContextPack, DropReason, assemble
from assembler.policy import LoadedPolicy
from index.errors import InvalidInputError
from index.schema import validate_collection_name
from retrieval.filters import Principal, SearchFilters
from retrieval.hybrid import RetrievalParams, Retrieved, fetch_documents, search, validate_query
from retrieval.rerank import RerankParams
from retrieval.types import Candidate, Stage, StageHit
from service.api.schemas import ContextRequest, ContextResponse
from service.audit import AuditRecord
from service.auth import ApiKey
from service.errors import ForbiddenError
from service.runtime import Runtime
from service.settings import Settings
from service.traces import TraceRecord

RETRIEVAL_STAGES = (Stage.DENSE, Stage.BM25, Stage.HYBRID, Stage.RERANK)
# an enum's ``.value`` is a descriptor call (~1.4 us); an answer names hundreds of reasons
_REASON = {reason: reason.value for reason in DropReason}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked request: who asks, what for, under which policy, in which collection."""

    query: str
    principal: Principal
    filters: SearchFilters
    policy: LoadedPolicy
    collection: str
    budget: int
    encoding: str
    top_k: int
    debug: bool


def prepare(body: ContextRequest, grant: ApiKey, runtime: Runtime) -> Prepared:
    """Check everything that needs no model or store; errors name the field.

    Raises:
        InvalidInputError: query too long, budget above the maximum, bad filters/collection.
        ForbiddenError: groups the key does not grant.
        UnknownPolicyError: no such policy.
    """
    settings = runtime.settings
    query = validate_query(body.query, max_chars=settings.max_query_chars)
    if body.budget_tokens > settings.max_budget_tokens:
        raise InvalidInputError(
            f"budget_tokens is {body.budget_tokens}, above this server's maximum of "
            f"{settings.max_budget_tokens}; ask for fewer tokens",
            field="budget_tokens",
            value=body.budget_tokens,
        )
    principal = grant.principal()
    if body.groups is not None:
        extra = sorted(set(body.groups) - set(grant.groups))
        if extra:
            raise ForbiddenError(
                f"groups {extra} are not granted to key {grant.id!r} (granted: "
                f"{sorted(grant.groups)}); a request may narrow its groups, never widen them",
                field="groups",
            )
        principal = principal.narrowed(tuple(dict.fromkeys(body.groups)))
    raw_filters = body.filters.model_dump(exclude_none=True) if body.filters else None
    filters = SearchFilters.parse(raw_filters)
    collection = validate_collection_name(body.collection or settings.collection)
    policy = runtime.policies.get(body.policy or settings.default_policy)
    return Prepared(
        query=query,
        principal=principal,
        filters=filters,
        policy=policy,
        collection=collection,
        budget=body.budget_tokens,
        encoding=body.encoding,
        top_k=body.top_k,
        debug=body.debug,
    )


def run_pipeline(
    req: Prepared,
    runtime: Runtime,
    record: AuditRecord | None,
    *,
    submitted: float | None = None,
) -> ContextResponse:
    """Retrieve, fetch pinned documents, assemble: the answer as a validated model.

    See :func:`answer_tree` for the arguments and errors.
    """
    return ContextResponse.model_validate(answer_tree(req, runtime, record, submitted=submitted))


def answer_json(
    req: Prepared,
    runtime: Runtime,
    record: AuditRecord | None,
    *,
    submitted: float | None = None,
) -> bytes:
    """The answer as the JSON of :class:`ContextResponse`, for the HTTP route.

    pydantic-core writes the tree as it is, without building the models: the same bytes as
    ``run_pipeline(...).model_dump_json()`` (a test holds them equal) in a fifth of the time.
    """
    return pydantic_core.to_json(answer_tree(req, runtime, record, submitted=submitted))


def answer_tree(
    req: Prepared,
    runtime: Runtime,
    record: AuditRecord | None,
    *,
    submitted: float | None = None,
) -> dict[str, Any]:
    """Retrieve, fetch pinned documents, assemble; runs in a worker thread.

    Returns the answer as plain data in the shape of :class:`ContextResponse`.

    ``submitted`` is the ``time.perf_counter()`` at which the request was handed to the worker
    pool; the wait until a thread picked it up is reported as ``timings_ms["queue"]``.

    Raises:
        UnknownCollectionError: the collection does not exist.
        NotReadyError: the models are not loaded yet.
    """
    queue_ms = None if submitted is None else (time.perf_counter() - submitted) * 1000
    models = runtime.require_models()
    settings = runtime.settings
    telemetry = runtime.telemetry
    tracer = telemetry.tracer
    stage_seconds = telemetry.metrics.stage_seconds
    policy = req.policy.policy
    counter = runtime.counter(req.encoding)
    if record is not None:
        record.collection = req.collection
        record.groups = list(req.principal.groups)
        record.budget_tokens = req.budget
        record.policy = _policy_dict(req.policy)
        if settings.audit_include_text:
            record.query = req.query

    params = retrieval_params(
        settings,
        top_k=req.top_k,
        with_vectors=policy.dedupe.enabled and policy.dedupe.dense_threshold is not None,
    )
    with _span(tracer, "retrieval") as span:
        started_ns = time.time_ns()
        retrieved = search(
            req.query,
            req.principal,
            req.filters,
            collection=req.collection,
            store=runtime.store,
            encoders=models.encoders,
            reranker=models.reranker,
            params=params,
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
        _stage_spans(tracer, span, started_ns, retrieved)
    t = retrieved.timings_ms
    stage_seconds.labels(stage="dense").observe(t.get("dense_encode", 0.0) / 1000)
    stage_seconds.labels(stage="bm25").observe(t.get("bm25_encode", 0.0) / 1000)
    stage_seconds.labels(stage="hybrid").observe(t.get("store_query", 0.0) / 1000)
    if retrieved.stages[Stage.RERANK].active or "rerank" in t:
        stage_seconds.labels(stage="rerank").observe(t.get("rerank", 0.0) / 1000)

    pinned: list[Candidate] = []
    pinned_ms = 0.0
    if policy.priority.pinned_doc_ids:
        with _span(tracer, "pinned") as span:
            t0 = time.perf_counter()
            have = {c.chunk_id for c in retrieved.candidates}
            fetched = fetch_documents(
                list(policy.priority.pinned_doc_ids),
                req.principal,
                collection=req.collection,
                store=runtime.store,
                with_vectors=params.with_vectors,
            )
            pinned = [c for c in fetched if c.chunk_id not in have and _within(c, req.filters)]
            pinned_ms = (time.perf_counter() - t0) * 1000
            span.set_attribute("ragctx.count", len(pinned))
        # The policy may pin other tenants' documents: the assembler (and its trace, which
        # names pins it did not get) sees only the pins this key may see.
        visible = {c.doc_id for c in fetched} | {c.doc_id for c in retrieved.candidates}
        own_pins = tuple(d for d in policy.priority.pinned_doc_ids if d in visible)
        policy = policy.model_copy(
            update={"priority": policy.priority.model_copy(update={"pinned_doc_ids": own_pins})}
        )

    with _span(tracer, "context") as span:
        t0 = time.perf_counter()
        pack = assemble(
            retrieved.candidates,
            policy=policy,
            budget=req.budget,
            counter=counter,
            now=datetime.now(UTC),
            pinned=pinned,
        )
        context_ms = (time.perf_counter() - t0) * 1000
        span.set_attribute("ragctx.stage", "context")
        span.set_attribute("ragctx.count", len(pack.items))
        span.set_attribute("ragctx.dropped", len(pack.dropped))
        span.set_attribute("ragctx.tokens", pack.tokens)
    stage_seconds.labels(stage="context").observe(context_ms / 1000)
    dropped_by_reason = _by_reason(_REASON[d.reason] for d in pack.dropped)
    for reason, count in dropped_by_reason.items():
        telemetry.metrics.dropped.labels(reason=reason).inc(count)

    response = _tree(
        req,
        retrieved,
        pinned,
        pack,
        trace_id=trace_id,
        pinned_ms=pinned_ms,
        context_ms=context_ms,
        queue_ms=queue_ms,
    )
    if record is not None:
        record.doc_ids = list(dict.fromkeys(item.doc_id for item in pack.items))
        record.tokens = pack.tokens
        record.counts = {
            "candidates": len(retrieved.candidates),
            "pinned": len(pinned),
            "items": len(pack.items),
            "dropped": len(pack.dropped),
            "dropped_by_reason": dropped_by_reason,
        }
    if runtime.traces is not None:
        route = "/v1/context" if record is not None else "cli:query"
        runtime.traces.submit(_trace_record(req, retrieved, pinned, pack, response, route))
    return response


def _trace_record(
    req: Prepared,
    retrieved: Retrieved,
    pinned: list[Candidate],
    pack: ContextPack,
    response: dict[str, Any],
    route: str,
) -> TraceRecord:
    """What the trace store keeps of one answer: the request, every stage's ranked candidates,
    what was packed and dropped (with reasons and flags), the policy and the timings."""
    stages: dict[str, Any] = {}
    for stage in RETRIEVAL_STAGES:
        ranked = sorted(
            (c.stages[stage].rank, c) for c in retrieved.candidates if stage in c.stages
        )
        info = retrieved.stages[stage]
        stages[stage.value] = {
            "active": info.active,
            "note": info.note,
            "candidates": [
                {
                    "chunk_id": c.chunk_id,
                    "doc_id": c.doc_id,
                    "rank": r,
                    "score": c.stages[stage].score,
                }
                for r, c in ranked
            ],
        }
    stages["pinned"] = [{"chunk_id": c.chunk_id, "doc_id": c.doc_id} for c in pinned]
    policy = response["policy"]
    return TraceRecord(
        id=response["trace"]["trace_id"],
        tenant=req.principal.tenant,
        route=route,
        collection=req.collection,
        query=req.query,
        request={
            "query": req.query,
            "collection": req.collection,
            "budget_tokens": req.budget,
            "encoding": req.encoding,
            "top_k": req.top_k,
            "groups": list(req.principal.groups),
            "filters": pydantic_core.to_jsonable_python(req.filters),
            "policy": response["policy"]["name"],
        },
        stages=stages,
        pack={
            "items": [
                {
                    "chunk_id": i["chunk_id"],
                    "doc_id": i["doc_id"],
                    "tokens": i["tokens"],
                    "flags": i["flags"],
                    "pinned": i["pinned"],
                }
                for i in response["items"]
            ],
            "dropped": response["dropped"],
            "tokens": pack.tokens,
            "budget_tokens": pack.budget,
            "steps": response["trace"]["stages"]["context"]["steps"],
        },
        timings_ms=response["trace"]["timings_ms"],
        policy_version=f"{policy['name']}@{policy['version']}",
    )


def retrieval_params(settings: Settings, *, top_k: int, with_vectors: bool) -> RetrievalParams:
    """The retrieval parameters of a request: the server's settings and the request's top_k."""
    return RetrievalParams(
        dense_limit=settings.dense_limit,
        bm25_limit=settings.bm25_limit,
        rrf_k=settings.rrf_k,
        top_k=top_k,
        rerank=RerankParams(
            top_n=settings.rerank_top_n,
            batch_size=settings.rerank_batch_size,
            budget_ms=settings.rerank_budget_ms,
        ),
        max_query_chars=settings.max_query_chars,
        with_vectors=with_vectors,
    )


def _policy_dict(loaded: LoadedPolicy) -> dict[str, str | None]:
    ident = loaded.policy.identity
    return {"name": ident.name, "version": ident.version, "sha256": ident.sha256 or loaded.sha256}


def _by_reason(reasons: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reasons:
        out[r] = out.get(r, 0) + 1
    return out


def _within(c: Candidate, f: SearchFilters) -> bool:
    """Whether a pinned chunk passes the request's own narrowing (it can only narrow)."""
    if f.sources and c.source not in f.sources:
        return False
    if c.source in f.exclude_sources or c.doc_id in f.exclude_doc_ids:
        return False
    if f.tags and not set(f.tags) & set(c.tags):
        return False
    if f.updated_after is not None or f.updated_before is not None:
        if c.updated_at is None:
            return False
        when = c.updated_at if c.updated_at.tzinfo else c.updated_at.replace(tzinfo=UTC)
        if f.updated_after is not None and when < f.updated_after:
            return False
        if f.updated_before is not None and when > f.updated_before:
            return False
    return True


def _span(tracer: trace.Tracer, name: str) -> AbstractContextManager[Span]:
    """A child span of the current one; or, where the request's span is not recorded (no
    exporter), that span itself: a child would not be recorded either, only cost time.

    With no current span at all (``ragctx query``) the child is started, for its trace id.
    """
    parent = trace.get_current_span()
    if parent.get_span_context().is_valid and not parent.is_recording():
        return nullcontext(parent)
    return tracer.start_as_current_span(name)


def _stage_spans(tracer: trace.Tracer, parent: Span, started_ns: int, retrieved: Retrieved) -> None:
    """Child spans for the retrieval stages, laid end to end from the measured timings.

    ``search`` runs both legs and the fusion as one engine call, so the ``hybrid`` span is that
    call; ``dense`` and ``bm25`` are the query encodings. Under a parent that is not recorded
    (no exporter) there is nothing to add.
    """
    if not parent.is_recording():
        return
    ctx = trace.set_span_in_context(parent)
    t = retrieved.timings_ms
    pieces = (
        (Stage.DENSE, t.get("dense_encode", 0.0)),
        (Stage.BM25, t.get("bm25_encode", 0.0)),
        (Stage.HYBRID, t.get("store_query", 0.0) + t.get("assemble_candidates", 0.0)),
        (Stage.RERANK, t.get("rerank", 0.0)),
    )
    at = started_ns
    for stage, ms in pieces:
        info = retrieved.stages[stage]
        span = tracer.start_span(stage.value, context=ctx, start_time=at)
        span.set_attribute("ragctx.stage", stage.value)
        span.set_attribute("ragctx.count", info.count)
        span.set_attribute("ragctx.active", info.active)
        if info.note:
            span.set_attribute("ragctx.note", info.note)
        at += int(ms * 1_000_000)
        span.end(end_time=at)


def _hits(stages: Mapping[Stage, StageHit]) -> dict[str, dict[str, float]]:
    return {s.value: {"rank": h.rank, "score": h.score} for s, h in stages.items()}


def _tree(
    req: Prepared,
    retrieved: Retrieved,
    pinned: list[Candidate],
    pack: ContextPack,
    *,
    trace_id: str,
    pinned_ms: float,
    context_ms: float,
    queue_ms: float | None,
) -> dict[str, Any]:
    """The answer as plain data, field for field in the order of the response models.

    Debug-only fields are left out, as the models leave them out when they are None.
    """
    debug = req.debug
    by_chunk = {c.chunk_id: c for c in (*retrieved.candidates, *pinned)} if debug else {}
    stages: dict[str, dict[str, object]] = {}
    for stage in RETRIEVAL_STAGES:
        info = retrieved.stages[stage]
        out: dict[str, object] = {
            "count": info.count,
            "ms": round(info.ms, 3),
            "active": info.active,
            "note": info.note,
        }
        if debug:
            ranked = sorted(
                (c.stages[stage].rank, c) for c in retrieved.candidates if stage in c.stages
            )
            out["candidates"] = [
                {
                    "chunk_id": c.chunk_id,
                    "doc_id": c.doc_id,
                    "rank": r,
                    "score": c.stages[stage].score,
                }
                for r, c in ranked
            ]
        stages[stage.value] = out
    stages["context"] = {
        "count": len(pack.items),
        "ms": round(context_ms, 3),
        "active": True,
        "note": f"{len(retrieved.candidates) + len(pinned)} in, {len(pack.dropped)} dropped",
        "steps": [
            {
                "step": s.step,
                "count_in": s.count_in,
                "count_out": s.count_out,
                "ms": s.ms,
                "notes": s.notes,
            }
            for s in pack.trace
        ],
    }
    timings = dict(retrieved.timings_ms)
    timings["pinned"] = round(pinned_ms, 3)
    timings["context"] = round(context_ms, 3)
    if queue_ms is not None:  # served over HTTP: the wait for a worker thread
        timings["queue"] = round(queue_ms, 3)
    items = []
    for item in pack.items:
        out = {
            "citation": item.citation,
            "doc_id": item.doc_id,
            "chunk_id": item.chunk_id,
            "chunk_ids": item.chunk_ids or (item.chunk_id,),
            "source": item.source,
            "path": item.path,
            "title": item.title,
            "section": item.section,
            "text": item.text,
            "tokens": item.tokens,
            "score": item.score,
            "score_kind": item.score_kind,
            "updated_at": item.updated_at,
            "pinned": item.pinned,
            "flags": item.flags,
        }
        if debug and (cand := by_chunk.get(item.chunk_id)) is not None:
            out["stages"] = _hits(cand.stages)
        items.append(out)
    dropped = []
    for d in pack.dropped:
        out = {
            "chunk_id": d.chunk_id,
            "doc_id": d.doc_id,
            "reason": _REASON[d.reason],
            "detail": d.detail,
        }
        if debug and (cand := by_chunk.get(d.chunk_id)) is not None:
            out["stages"] = _hits(cand.stages)
        dropped.append(out)
    ident = pack.policy
    return {
        "context": pack.context,
        "tokens": pack.tokens,
        "budget_tokens": pack.budget,
        "encoding": pack.encoding or req.encoding,
        "items": items,
        "citations": [
            {
                "number": c.number,
                "doc_id": c.doc_id,
                "chunk_ids": c.chunk_ids,
                "source": c.source,
                "path": c.path,
                "title": c.title,
                "section": c.section,
                "updated_at": c.updated_at,
            }
            for c in pack.citations
        ],
        "dropped": dropped,
        "policy": {
            "name": ident.name,
            "version": ident.version,
            "sha256": ident.sha256 or req.policy.sha256,
        },
        "trace": {"trace_id": trace_id, "stages": stages, "timings_ms": timings},
    }

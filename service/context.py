"""The context pipeline behind ``POST /v1/context``: retrieve → pinned fetch → assemble → answer.

:func:`prepare` checks the request on the event loop (cheap, before a slot is taken);
:func:`run_pipeline` does the CPU-bound work in a worker thread: ``retrieval.search`` (both
legs, fusion, rerank), the policy's pinned documents through the same access filter, then
``assembler.assemble``. Each stage gets an OpenTelemetry span, a Prometheus observation and a
line in the answer's trace; :func:`to_response` is the one mapper from the pack to the answer.
"""

from __future__ import annotations

import functools
import importlib.metadata
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from opentelemetry import trace

from assembler import ContextPack, assemble
from assembler.policy import LoadedPolicy
from assembler.prompt import render
from assembler.prompt.conversation import split_conversation
from assembler.prompt.types import CallerItem, Message, PromptFormat
from assembler.tokens import encoding_for_model
from core.errors import InvalidInputError, RagctxError
from core.types import Candidate, Principal, SearchFilters, Stage, StageHit
from index.schema import validate_collection_name
from retrieval.conversation import ConversationQuery, conversation_query
from retrieval.hybrid import fetch_documents, search, validate_query
from retrieval.types import Retrieved
from service.api.schemas import (
    CandidateOut,
    CitationOut,
    ContextRequest,
    ContextResponse,
    DroppedOut,
    HitOut,
    ItemOut,
    PartOut,
    PolicyOut,
    SectionOut,
    StageOut,
    StepOut,
    TraceOut,
)
from service.audit import AuditRecord
from service.auth import ApiKey
from service.runtime import Runtime
from service.traces import TraceRecord
from service.wiring import retrieval_params

RETRIEVAL_STAGES = (Stage.DENSE, Stage.BM25, Stage.HYBRID, Stage.RERANK)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked request: who asks, what for, under which policy, in which collection.

    ``query`` is the question (the request's, or the conversation's final user turn);
    ``retrieval_query`` what retrieval searches with: the request's ``query`` when it has one,
    else the conversation's user turns under the policy's ``conversation.retrieval`` rule.
    """

    query: str
    principal: Principal
    filters: SearchFilters
    policy: LoadedPolicy
    collection: str
    budget: int
    encoding: str
    top_k: int
    debug: bool
    messages: tuple[Message, ...] = ()
    items: tuple[CallerItem, ...] = ()
    format: PromptFormat = PromptFormat.OPENAI
    retrieval_query: str | ConversationQuery = ""

    @property
    def retrieval_text(self) -> str:
        """The text retrieval searched (the combined turns of a conversation query)."""
        searched = self.retrieval_query or self.query
        return searched.dense_text if isinstance(searched, ConversationQuery) else searched


@dataclass(frozen=True, slots=True)
class Answer:
    """What one run of the pipeline made: the answer and the stage outputs behind it."""

    response: ContextResponse
    retrieved: Retrieved
    pinned: tuple[Candidate, ...]
    pack: ContextPack


def prepare(body: ContextRequest, grant: ApiKey, runtime: Runtime) -> Prepared:
    """Check everything that needs no model or store; errors name the field.

    Raises:
        InvalidInputError: query too long, budget above the maximum, bad collection name.
        ForbiddenError: groups the key does not grant.
        UnknownPolicyError: no such policy.
    """
    settings = runtime.settings
    messages = tuple(m.message() for m in body.messages or ())
    conversation = split_conversation(messages, body.query)  # checks roles and tool links
    query = validate_query(conversation.question.content, max_chars=settings.max_query_chars)
    if body.query is not None:
        query = validate_query(body.query, max_chars=settings.max_query_chars)
    encoding: str = body.encoding
    if body.model is not None:
        encoding = encoding_for_model(body.model)
        if "encoding" in body.model_fields_set and body.encoding != encoding:
            raise InvalidInputError(
                f"model {body.model!r} reads {encoding}, but encoding is {body.encoding}; "
                "give one of the two",
                field="encoding",
                value=body.encoding,
            )
    policy = runtime.policies.get(body.policy or settings.default_policy)
    retrieval: str | ConversationQuery = query
    if body.query is None and conversation.turns:
        retrieval = conversation_query(
            conversation.user_texts,
            policy.policy.conversation.retrieval,
            max_chars=settings.max_query_chars,
        )
    if body.budget_tokens > settings.max_budget_tokens:
        raise InvalidInputError(
            f"budget_tokens is {body.budget_tokens}, above this server's maximum of "
            f"{settings.max_budget_tokens}; ask for fewer tokens",
            field="budget_tokens",
            value=body.budget_tokens,
        )
    return Prepared(
        query=query,
        principal=grant.principal().narrowed(body.groups),
        filters=body.filters.search_filters() if body.filters else SearchFilters(),
        policy=policy,
        collection=validate_collection_name(body.collection or settings.collection),
        budget=body.budget_tokens,
        encoding=encoding,
        top_k=body.top_k,
        debug=body.debug,
        messages=messages,
        items=tuple(i.item() for i in body.items or ()),
        format=PromptFormat(body.format),
        retrieval_query=retrieval,
    )


def run_pipeline(
    req: Prepared, runtime: Runtime, *, route: str = "cli:query", submitted: float | None = None
) -> Answer:
    """Retrieve, fetch pinned documents, assemble; runs in a worker thread.

    ``submitted`` is the ``time.perf_counter()`` at which the request was handed to the worker
    pool; the wait until a thread picked it up is reported as ``timings_ms["queue"]``. The
    answer is recorded in the trace store under ``route``.

    A request that fails here (an unknown collection, models still loading) is recorded too,
    with its error and no pack.

    Raises:
        UnknownCollectionError: the collection does not exist.
        NotReadyError: the models are not loaded yet.
    """
    try:
        answer = _answer(req, runtime, submitted)
    except RagctxError as err:
        if runtime.traces is not None:
            runtime.traces.submit(error_record(req, err, runtime, route=route))
        raise
    if runtime.traces is not None:
        runtime.traces.submit(
            trace_record(req, answer, route=route, provenance=provenance(req, runtime))
        )
    return answer


def _answer(req: Prepared, runtime: Runtime, submitted: float | None) -> Answer:
    queue_ms = None if submitted is None else (time.perf_counter() - submitted) * 1000
    telemetry = runtime.telemetry
    stage_seconds = telemetry.metrics.stage_seconds
    policy = req.policy.policy
    with_vectors = policy.dedupe.enabled and policy.dedupe.dense_threshold is not None
    retrieved, trace_id = retrieve(req, runtime, with_vectors=with_vectors)
    t = retrieved.timings_ms
    stage_seconds.labels(stage="dense").observe(t.get("dense_encode", 0.0) / 1000)
    stage_seconds.labels(stage="bm25").observe(t.get("bm25_encode", 0.0) / 1000)
    stage_seconds.labels(stage="hybrid").observe(t.get("store_query", 0.0) / 1000)
    if retrieved.stages[Stage.RERANK].active or "rerank" in t:
        stage_seconds.labels(stage="rerank").observe(t.get("rerank", 0.0) / 1000)

    pinned: list[Candidate] = []
    pinned_ms = 0.0
    if policy.priority.pinned_doc_ids:
        with telemetry.tracer.start_as_current_span("pinned") as span:
            t0 = time.perf_counter()
            fetched = fetch_documents(
                list(policy.priority.pinned_doc_ids),
                req.principal,
                req.filters,
                collection=req.collection,
                store=runtime.store,
                with_vectors=with_vectors,
            )
            have = {c.chunk_id for c in retrieved.candidates}
            pinned = [c for c in fetched if c.chunk_id not in have]
            pinned_ms = (time.perf_counter() - t0) * 1000
            span.set_attribute("ragctx.count", len(pinned))
        # The policy may pin other tenants' documents: the assembler (and its trace, which
        # names pins it did not get) sees only the pins this key may see.
        visible = {c.doc_id for c in fetched} | {c.doc_id for c in retrieved.candidates}
        own_pins = tuple(d for d in policy.priority.pinned_doc_ids if d in visible)
        policy = policy.model_copy(
            update={"priority": policy.priority.model_copy(update={"pinned_doc_ids": own_pins})}
        )

    with telemetry.tracer.start_as_current_span("context") as span:
        t0 = time.perf_counter()
        pack = assemble(
            retrieved.candidates,
            policy=policy,
            budget=req.budget,
            counter=runtime.counter(req.encoding),
            now=datetime.now(UTC),
            pinned=pinned,
            messages=req.messages,
            items=req.items,
            query=req.query,
            fmt=req.format,
        )
        context_ms = (time.perf_counter() - t0) * 1000
        span.set_attribute("ragctx.count", len(pack.items))
        span.set_attribute("ragctx.dropped", len(pack.dropped))
        span.set_attribute("ragctx.tokens", pack.tokens)
    stage_seconds.labels(stage="context").observe(context_ms / 1000)
    for reason, count in Counter(d.reason.value for d in pack.dropped).items():
        telemetry.metrics.dropped.labels(reason=reason).inc(count)

    timings = dict(t)
    timings["pinned"] = round(pinned_ms, 3)
    timings["context"] = round(context_ms, 3)
    if queue_ms is not None:  # served over HTTP: the wait for a worker thread
        timings["queue"] = round(queue_ms, 3)
    return Answer(
        response=to_response(
            req,
            retrieved,
            pinned,
            pack,
            trace_id=trace_id,
            context_ms=context_ms,
            timings_ms=timings,
        ),
        retrieved=retrieved,
        pinned=tuple(pinned),
        pack=pack,
    )


def retrieve(
    req: Prepared, runtime: Runtime, *, with_vectors: bool = False, span: str = "retrieval"
) -> tuple[Retrieved, str]:
    """Both legs, the fusion and the rerank for ``req``, in a span of their own that records
    each stage's count, time and whether it ran; the candidates and the trace id.

    Raises:
        UnknownCollectionError: the collection does not exist.
        NotReadyError: the models are not loaded yet.
    """
    models = runtime.require_models()
    params = retrieval_params(runtime.settings, top_k=req.top_k, with_vectors=with_vectors)
    with runtime.telemetry.tracer.start_as_current_span(span) as current:
        retrieved = search(
            req.retrieval_query or req.query,
            req.principal,
            req.filters,
            collection=req.collection,
            store=runtime.store,
            encoders=models.encoders,
            reranker=models.reranker,
            params=params,
        )
        for stage in RETRIEVAL_STAGES:
            info = retrieved.stages[stage]
            current.set_attribute(f"ragctx.{stage.value}.count", info.count)
            current.set_attribute(f"ragctx.{stage.value}.ms", info.ms)
            current.set_attribute(f"ragctx.{stage.value}.active", info.active)
        return retrieved, format(current.get_span_context().trace_id, "032x")


def to_response(
    req: Prepared,
    retrieved: Retrieved,
    pinned: list[Candidate],
    pack: ContextPack,
    *,
    trace_id: str,
    context_ms: float,
    timings_ms: dict[str, float],
) -> ContextResponse:
    """The answer to ``req``: the pack, its citations and drops, and every stage's trace.

    With ``req.debug`` each stage lists its ranked candidates and each item and drop its ranks
    and scores; without, those fields are left out of the answer.
    """
    debug = req.debug
    by_chunk = {c.chunk_id: c for c in (*retrieved.candidates, *pinned)} if debug else {}

    def hits(chunk_id: str) -> dict[str, HitOut] | None:
        found = by_chunk.get(chunk_id)
        return None if found is None else _hits(found.stages)

    stages: dict[str, StageOut] = {}
    for stage in RETRIEVAL_STAGES:
        info = retrieved.stages[stage]
        stages[stage.value] = StageOut(
            count=info.count,
            ms=round(info.ms, 3),
            active=info.active,
            note=info.note,
            candidates=_ranked(retrieved, stage) if debug else None,
        )
    stages[Stage.CONTEXT.value] = StageOut(
        count=len(pack.items),
        ms=round(context_ms, 3),
        note=f"{len(retrieved.candidates) + len(pinned)} in, {len(pack.dropped)} dropped",
        steps=[StepOut.model_validate(s, from_attributes=True) for s in pack.trace],
    )
    ident = pack.policy
    return ContextResponse(
        context=pack.context,
        tokens=pack.tokens,
        budget_tokens=pack.budget,
        encoding=pack.encoding or req.encoding,
        **_prompt_fields(pack),
        retrieval_query=req.retrieval_text,
        items=[
            ItemOut(
                citation=item.citation,
                doc_id=item.doc_id,
                chunk_id=item.chunk_id,
                chunk_ids=list(item.chunk_ids or (item.chunk_id,)),
                source=item.source,
                path=item.path,
                title=item.title,
                section=list(item.section),
                text=item.text,
                tokens=item.tokens,
                score=item.score,
                score_kind=item.score_kind,
                updated_at=item.updated_at,
                pinned=item.pinned,
                flags=list(item.flags),
                stages=hits(item.chunk_id),
            )
            for item in pack.items
        ],
        citations=[CitationOut.model_validate(c, from_attributes=True) for c in pack.citations],
        dropped=[
            DroppedOut(
                chunk_id=d.chunk_id,
                doc_id=d.doc_id,
                reason=d.reason.value,
                detail=d.detail,
                stages=hits(d.chunk_id),
            )
            for d in pack.dropped
        ],
        policy=PolicyOut(
            name=ident.name, version=ident.version, sha256=ident.sha256 or req.policy.sha256
        ),
        trace=TraceOut(trace_id=trace_id, stages=stages, timings_ms=timings_ms),
    )


def _prompt_fields(pack: ContextPack) -> dict[str, Any]:
    """The answer's whole-prompt fields: the prompt in its format, sections and parts."""
    prompt = pack.prompt
    if prompt is None:
        return {}
    fields: dict[str, Any] = {"format": prompt.format.value}
    if prompt.format is PromptFormat.OPENAI:
        fields["messages"] = render.to_openai(prompt.messages)
    elif prompt.format is PromptFormat.ANTHROPIC:
        fields["system"], fields["messages"] = render.to_anthropic(prompt.messages)
    else:
        fields["text"] = render.to_text(prompt.messages)
    return {
        **fields,
        "prompt_tokens": prompt.tokens,
        "budget_left": prompt.budget_left,
        "framing": prompt.framing,
        "sections": [SectionOut.model_validate(s, from_attributes=True) for s in prompt.sections],
        "parts": [
            PartOut(
                id=p.id,
                kind=p.kind,
                section=p.section.value,
                status=p.status.value,
                tokens=p.tokens,
                reason=None if p.reason is None else p.reason.value,
                detail=p.detail,
                role=None if p.role is None else p.role.value,
                flags=list(p.flags),
            )
            for p in prompt.parts
        ],
        "redactions": dict(prompt.redactions),
    }


def _in_order(retrieved: Retrieved, stage: Stage) -> list[tuple[int, Candidate]]:
    """The candidates ``stage`` ranked, with their rank there, in its order."""
    return sorted((c.stages[stage].rank, c) for c in retrieved.candidates if stage in c.stages)


def _ranked(retrieved: Retrieved, stage: Stage) -> list[CandidateOut]:
    return [
        CandidateOut(chunk_id=c.chunk_id, doc_id=c.doc_id, rank=r, score=c.stages[stage].score)
        for r, c in _in_order(retrieved, stage)
    ]


def _hits(stages: Mapping[Stage, StageHit]) -> dict[str, HitOut]:
    return {s.value: HitOut(rank=h.rank, score=h.score) for s, h in stages.items()}


def audit_request(record: AuditRecord, req: Prepared, *, include_text: bool) -> None:
    """The audit line's request fields (written even if the pipeline fails)."""
    record.collection = req.collection
    record.groups = list(req.principal.groups)
    record.budget_tokens = req.budget
    ident = req.policy.policy.identity
    record.policy = {
        "name": ident.name,
        "version": ident.version,
        "sha256": ident.sha256 or req.policy.sha256,
    }
    if include_text:
        record.query = req.query


def audit_answer(record: AuditRecord, answer: Answer) -> None:
    """The audit line's answer fields, from the pack: which documents, how many tokens."""
    pack = answer.pack
    record.doc_ids = list(dict.fromkeys(item.doc_id for item in pack.items))
    record.tokens = pack.tokens
    record.counts = {
        "candidates": len(answer.retrieved.candidates),
        "pinned": len(answer.pinned),
        "items": len(pack.items),
        "dropped": len(pack.dropped),
        "dropped_by_reason": dict(Counter(d.reason.value for d in pack.dropped)),
    }


def trace_record(
    req: Prepared, answer: Answer, *, route: str, provenance: Mapping[str, Any] | None = None
) -> TraceRecord:
    """What the trace store keeps of one answer: the request and what produced the answer
    (:func:`provenance`), every stage's ranked candidates, what was packed and dropped (with
    reasons and flags), the policy and the timings."""
    retrieved, pack, response = answer.retrieved, answer.pack, answer.response
    stages: dict[str, Any] = {
        stage.value: {
            "active": retrieved.stages[stage].active,
            "note": retrieved.stages[stage].note,
            "candidates": [
                {
                    "chunk_id": c.chunk_id,
                    "doc_id": c.doc_id,
                    "rank": r,
                    "score": c.stages[stage].score,
                }
                for r, c in _in_order(retrieved, stage)
            ],
        }
        for stage in RETRIEVAL_STAGES
    }
    stages["pinned"] = [{"chunk_id": c.chunk_id, "doc_id": c.doc_id} for c in answer.pinned]
    policy = response.policy
    return TraceRecord(
        id=response.trace.trace_id,
        tenant=req.principal.tenant,
        route=route,
        collection=req.collection,
        query=req.query,
        request={**recorded_request(req), **(provenance or {})},
        stages=stages,
        pack={
            "items": [
                {
                    "chunk_id": i.chunk_id,
                    "doc_id": i.doc_id,
                    "tokens": i.tokens,
                    "flags": list(i.flags),
                    "pinned": i.pinned,
                }
                for i in pack.items
            ],
            "dropped": [
                {
                    "chunk_id": d.chunk_id,
                    "doc_id": d.doc_id,
                    "reason": d.reason.value,
                    "detail": d.detail,
                }
                for d in pack.dropped
            ],
            "tokens": pack.tokens,
            "budget_tokens": pack.budget,
            "context": pack.context,
            "prompt": _recorded_prompt(response),
            "steps": [
                {
                    "step": s.step,
                    "count_in": s.count_in,
                    "count_out": s.count_out,
                    "ms": s.ms,
                    "notes": list(s.notes),
                }
                for s in pack.trace
            ],
        },
        timings_ms=response.trace.timings_ms,
        policy_version=f"{policy.name}@{policy.version}",
    )


def _recorded_prompt(response: ContextResponse) -> dict[str, Any]:
    """The whole prompt as the model received it, with every part's fate."""
    return response.model_dump(
        mode="json",
        include={
            "format",
            "messages",
            "system",
            "text",
            "prompt_tokens",
            "budget_left",
            "framing",
            "retrieval_query",
            "sections",
            "parts",
            "redactions",
        },
    )


def recorded_request(req: Prepared) -> dict[str, Any]:
    """The request as a trace keeps it (what ``ragctx eval replay`` runs again)."""
    return {
        "messages": render.to_openai(req.messages),
        "items": [pydantic_core.to_jsonable_python(item) for item in req.items],
        "format": req.format.value,
        "query": req.query,
        # a conversation's retrieval query is rebuilt from its messages on replay
        "query_source": (
            "conversation" if isinstance(req.retrieval_query, ConversationQuery) else "request"
        ),
        "collection": req.collection,
        "budget_tokens": req.budget,
        "encoding": req.encoding,
        "top_k": req.top_k,
        "groups": list(req.principal.groups),
        "filters": pydantic_core.to_jsonable_python(req.filters),
        "policy": req.policy.policy.identity.name,
    }


def provenance(req: Prepared, runtime: Runtime) -> dict[str, Any]:
    """What produced an answer, for its trace: the key, the policy's identity, the models, the
    retrieval parameters and the code version."""
    ident = req.policy.policy.identity
    models = runtime.models
    reranker = models.reranker if models is not None else None
    params = retrieval_params(runtime.settings, top_k=req.top_k)
    return {
        "key_id": req.principal.name,
        "policy_version": ident.version,
        "policy_sha256": ident.sha256 or req.policy.sha256,
        "models": {
            "dense": models.encoders.dense.name if models is not None else None,
            "reranker": reranker.name if reranker is not None else None,
        },
        "retrieval": pydantic_core.to_jsonable_python(params),
        "ragctx_version": _version(),
    }


def error_record(req: Prepared, err: RagctxError, runtime: Runtime, *, route: str) -> TraceRecord:
    """The trace of a request that failed in the pipeline: its request, provenance and error."""
    span = trace.get_current_span().get_span_context()
    ident = req.policy.policy.identity
    return TraceRecord(
        id=format(span.trace_id, "032x") if span.is_valid else uuid.uuid4().hex,
        tenant=req.principal.tenant,
        route=route,
        collection=req.collection,
        query=req.query,
        request={**recorded_request(req), **provenance(req, runtime)},
        stages={},
        pack={"error": {"code": err.error_code, "message": err.public_message()}},
        timings_ms={},
        policy_version=f"{ident.name}@{ident.version}",
    )


@functools.cache
def _version() -> str:
    """The installed ragctx distribution's version ("unknown" when run from a bare checkout)."""
    try:
        return importlib.metadata.version("ragctx")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"

"""Run an evaluation: ingest a BEIR dataset incrementally, query it, score every stage.

Stages come from one hybrid query per test query, exactly as the service runs it: ``bm25`` and
``dense`` are the two legs, ``hybrid`` the RRF fusion, ``rerank`` the cross-encoder's order
when a trained reranker is configured (otherwise the stage is reported inactive, never
measured). Chunks become documents by max-passage (eval.rankings).
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

# Straight from the module that defines them.
from core.types import Candidate, Principal, Stage
from eval.attribution import Attribution, attribute
from eval.datasets import EvalDataset
from eval.environment import describe_environment
from eval.judge import JudgeParams, LLMMetrics, judge_metrics
from eval.metrics import IR_METRICS, ir_metrics, mean, ragas_id_metrics
from eval.rankings import DocScore, doc_ranking
from eval.report import (
    BM25Record,
    ChunkingRecord,
    EvalReport,
    IngestSummary,
    ModelsInfo,
    RetrievalRecord,
    RunParams,
    StageReport,
    Timings,
    WithheldRecord,
)
from index import Encoders, Store
from index.schema import SCHEMA_VERSION
from ingest import Chunker, SourceSpec, SyncOptions, sync
from ingest.sync import SyncReport
from ingest.types import canonical_sha256
from retrieval.hybrid import search
from retrieval.rerank import Reranker
from retrieval.types import RetrievalParams, Retrieved

__all__ = ["ContextScorer", "EvalParams", "EvalProgress", "collection_name", "run"]

log = logging.getLogger(__name__)

RANKED_STAGES = (Stage.BM25, Stage.DENSE, Stage.HYBRID, Stage.RERANK)


class ContextScorer(Protocol):
    """The hook for the ``context`` stage: scores what the assembler would hand on.

    Called once per query with the query, the ranked candidates (final order) and the judged
    relevant document ids; returns per-query numbers such as ``{"recall@budget=1500": 0.5}``.
    The means and per-query values become the ``context`` stage of the report.
    """

    def __call__(
        self, query: str, candidates: Sequence[Candidate], relevant: Collection[str]
    ) -> Mapping[str, float]:
        """Per-query scores of the context stage."""
        ...


class EvalProgress(Protocol):
    """Progress hooks; the CLI draws them."""

    def phase(self, name: str, total: int | None) -> None:
        """A phase starts (``ingest``, ``queries``)."""

    def advance(self, n: int) -> None:
        """``n`` more items done in the current phase."""


@dataclass(frozen=True, slots=True)
class EvalParams:
    """How to evaluate.

    ``retrieval`` is what the service uses (leg limits, RRF k, rerank); ``run`` widens its
    ``top_k`` to the whole fused list (``dense_limit + bm25_limit`` chunks), which does not
    change the fused order, only how much of it is scored. ``k`` is the hand-on cutoff for the
    ragas metrics and the recall attribution. ``doc_score`` applies to the fused stages
    (hybrid, rerank), whose chunk scores the candidates carry; the legs always use max-passage.
    """

    retrieval: RetrievalParams = field(default_factory=RetrievalParams)
    k: int = 10
    doc_score: DocScore = DocScore.MAX
    collection: str | None = None
    tenant: str = "eval"
    sync: SyncOptions = field(default_factory=SyncOptions)
    judge: JudgeParams | None = None
    rerank_note: str = ""  # why no reranker was passed, for the report
    settings: Mapping[str, JsonValue] = field(default_factory=dict)  # recorded as given


def collection_name(dataset: EvalDataset, *, encoders: Encoders, chunker: Chunker) -> str:
    """``eval-<dataset>-<hash>``: the hash covers chunking, BM25 and model, so runs with the
    same parameters share (and incrementally update) a collection and others never collide."""
    fingerprint = canonical_sha256(
        {
            "chunking": asdict(chunker.params),
            "max_model_tokens": encoders.dense.max_tokens,
            "encoders": encoders.collection_meta(),
            "schema": SCHEMA_VERSION,
        }
    )[:10]
    safe = "".join(c if c.isalnum() or c in "_-." else "-" for c in dataset.name)[:40]
    return f"eval-{safe or 'dataset'}-{fingerprint}"


def searcher(
    store: Store,
    collection: str,
    encoders: Encoders,
    reranker: Reranker | None,
    params: RetrievalParams,
    *,
    tenant: str,
) -> Callable[[str], Retrieved]:
    """One hybrid search per question, as ``tenant`` with no groups beyond public (what an
    evaluation asks: its documents are ingested public)."""
    principal = Principal(tenant=tenant, groups=(), name="eval")

    def ask(text: str) -> Retrieved:
        return search(
            text,
            principal,
            collection=collection,
            store=store,
            encoders=encoders,
            reranker=reranker,
            params=params,
        )

    return ask


def run(
    dataset: EvalDataset,
    *,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    reranker: Reranker | None,
    params: EvalParams = EvalParams(),
    context_scorer: ContextScorer | None = None,
    progress: EvalProgress | None = None,
) -> EvalReport:
    """Evaluate retrieval on ``dataset``, stage by stage.

    Example::

        data = load_dataset(Path("../shared/benchdata/scifact"))
        report = run(data, store=store, encoders=encoders, chunker=chunker, reranker=None)
        print(report.metric("hybrid", "ndcg@10"))

    Args:
        dataset: the BEIR dataset (its corpus is ingested from ``dataset.path``).
        store: the open store; the eval collection lives in it.
        encoders: dense and BM25 encoders.
        chunker: splits documents into chunks.
        reranker: the cross-encoder, or None (the rerank stage is then inactive).
        params: depth, cutoff, collection, tenant.
        context_scorer: optional hook scoring the assembled context per query.
        progress: optional progress hooks.

    Returns:
        The report: metrics per stage, per-query scores, attribution, timings, environment.

    Raises:
        InvalidInputError: bad dataset or parameters.
        StoreUnavailableError: the store cannot be written.
    """
    started = time.perf_counter()
    collection = params.collection or collection_name(dataset, encoders=encoders, chunker=chunker)
    retrieval = replace(
        params.retrieval, top_k=params.retrieval.dense_limit + params.retrieval.bm25_limit
    )
    ingested = _ingest(
        dataset,
        collection,
        store=store,
        encoders=encoders,
        chunker=chunker,
        params=params,
        progress=progress,
    )
    ask = searcher(store, collection, encoders, reranker, retrieval, tenant=params.tenant)
    queried = _query(
        dataset,
        ask,
        ingested.chunk_doc,
        params=params,
        context_scorer=context_scorer,
        progress=progress,
    )
    no_reranker = (params.rerank_note or "no reranker configured") if reranker is None else None
    scored = _score(dataset, queried, retrieval=retrieval, params=params, no_reranker=no_reranker)
    return _report(
        dataset,
        collection,
        ingested,
        queried,
        scored,
        params=params,
        retrieval=retrieval,
        encoders=encoders,
        chunker=chunker,
        reranker=reranker,
        points=store.count(collection),
        started=started,
    )


@dataclass(frozen=True, slots=True)
class _Ingested:
    """The ingest step's result: what the sync did, and each chunk's document."""

    synced: SyncReport
    chunk_doc: dict[str, str]  # chunk id -> document id
    seconds: float


@dataclass(slots=True)
class _Queried:
    """The query step's result, per query id: each stage's document ranking, the chunk texts
    handed on (for the judge), the context hook's scores; and latencies per stage name
    (``_<component>`` for the retrieval's own timings)."""

    rankings: dict[str, dict[Stage, list[str]]] = field(default_factory=dict)
    handed_on: dict[str, list[str]] = field(default_factory=dict)
    context_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    rerank_active: bool = True  # the reranker acted on every query
    rerank_note: str = ""  # why it did not, from the first query it did not act on
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Scored:
    """The score step's result: the report's stages, attribution and LLM metrics."""

    stages: dict[str, StageReport]
    attribution: Attribution
    llm: LLMMetrics


def _ingest(
    dataset: EvalDataset,
    collection: str,
    *,
    store: Store,
    encoders: Encoders,
    chunker: Chunker,
    params: EvalParams,
    progress: EvalProgress | None,
) -> _Ingested:
    """Sync the dataset's corpus into ``collection`` (incrementally) and map chunks to
    documents."""
    started = time.perf_counter()
    if progress is not None:
        progress.phase("ingest", dataset.documents)
    spec = SourceSpec(
        path=dataset.path,
        name=f"beir/{dataset.name}",
        kind="beir",
        tenant=params.tenant,
        groups=("public",),
    )
    synced = sync(
        [spec],
        collection=collection,
        store=store,
        encoders=encoders,
        chunker=chunker,
        options=params.sync,
        progress=_SyncBars(progress),
    )
    if synced.failed:
        log.warning(
            "%d documents of %s failed to ingest; see the report", synced.failed, dataset.name
        )
    seconds = time.perf_counter() - started
    chunk_doc = {
        p.id: str(p.payload["doc_id"]) for p in store.scroll(collection, fields=["doc_id"])
    }
    return _Ingested(synced=synced, chunk_doc=chunk_doc, seconds=seconds)


def _query(
    dataset: EvalDataset,
    ask: Callable[[str], Retrieved],
    chunk_doc: Mapping[str, str],
    *,
    params: EvalParams,
    context_scorer: ContextScorer | None,
    progress: EvalProgress | None,
) -> _Queried:
    """Run every test query once (after one untimed warm-up) and keep what scoring needs."""
    if progress is not None:
        progress.phase("queries", len(dataset.queries))
    ask(next(iter(dataset.queries.values())))  # warm-up, untimed
    out = _Queried()
    started = time.perf_counter()
    for qid, text in dataset.queries.items():
        got = ask(text)
        trace = got.stages[Stage.RERANK]
        out.rerank_active = out.rerank_active and trace.active
        out.rerank_note = out.rerank_note or ("" if trace.active else trace.note)
        out.rankings[qid] = _stage_docs(got, chunk_doc, params.doc_score)
        if params.judge is not None:
            out.handed_on[qid] = [c.text for c in _final_order(got)[: params.k]]
        for name, ms in _stage_latency(got).items():
            out.latencies.setdefault(name, []).append(ms)
        if context_scorer is not None:
            scores = context_scorer(text, got.candidates, set(dataset.qrels[qid]))
            out.context_scores[qid] = dict(scores)
        if progress is not None:
            progress.advance(1)
    out.seconds = time.perf_counter() - started
    if not out.rerank_active:
        for stages in out.rankings.values():
            stages.pop(Stage.RERANK, None)
    return out


def _score(
    dataset: EvalDataset,
    queried: _Queried,
    *,
    retrieval: RetrievalParams,
    params: EvalParams,
    no_reranker: str | None,
) -> _Scored:
    """Metrics per stage (means and per query), recall attribution, and the LLM judge's
    metrics. ``no_reranker`` says why there is no reranker; None when there is one."""
    rerank_active = no_reranker is None and queried.rerank_active
    stages: dict[str, StageReport] = {}
    for stage in RANKED_STAGES:
        if stage is Stage.RERANK and not rerank_active:
            note = no_reranker or queried.rerank_note or "reranker marked untrained"
            stages[stage.value] = StageReport(active=False, note=note)
            continue
        per_stage = {q: ranked[stage] for q, ranked in queried.rankings.items()}
        per_query = ir_metrics(dataset.qrels, per_stage, IR_METRICS)
        per_query.update(ragas_id_metrics(dataset.qrels, per_stage, k=params.k))
        stages[stage.value] = StageReport(
            active=True,
            metrics={m: mean(v) for m, v in per_query.items()},
            per_query=per_query,
            latency_ms=_summary(queried.latencies.get(stage.value, [])),
            note=_stage_note(stage, retrieval),
        )
    if queried.context_scores:
        names = sorted({m for s in queried.context_scores.values() for m in s})
        per_query_ctx = {
            m: {q: s.get(m, float("nan")) for q, s in queried.context_scores.items()} for m in names
        }
        stages[Stage.CONTEXT.value] = StageReport(
            active=True,
            metrics={m: mean(v) for m, v in per_query_ctx.items()},
            per_query=per_query_ctx,
        )
    final = Stage.RERANK if rerank_active else Stage.HYBRID
    return _Scored(
        stages=stages,
        attribution=attribute(dataset.qrels, queried.rankings, k=params.k),
        llm=judge_metrics(params.judge, dataset.queries, queried.handed_on, stage=final.value),
    )


def _report(
    dataset: EvalDataset,
    collection: str,
    ingested: _Ingested,
    queried: _Queried,
    scored: _Scored,
    *,
    params: EvalParams,
    retrieval: RetrievalParams,
    encoders: Encoders,
    chunker: Chunker,
    reranker: Reranker | None,
    points: int,
    started: float,
) -> EvalReport:
    """The report: the steps' results, every parameter, the models and the environment;
    ``started`` is when the run began (``time.perf_counter``)."""
    return EvalReport(
        run_id=uuid.uuid4().hex[:12],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=dataset.info(),
        collection=collection,
        params=RunParams(
            retrieval=RetrievalRecord.model_validate(_retrieval_dict(retrieval)),
            k=params.k,
            doc_score=params.doc_score,
            chunking=ChunkingRecord.model_validate(asdict(chunker.params)),
            max_model_tokens=encoders.dense.max_tokens,
            bm25=BM25Record.model_validate(asdict(encoders.sparse.params)),
            tenant=params.tenant,
            settings=dict(params.settings),
        ),
        models=ModelsInfo(
            dense=encoders.dense.name,
            dense_dim=encoders.dense.dim,
            rerank=None if reranker is None else reranker.name,
            rerank_trained=None if reranker is None else reranker.trained,
        ),
        environment=describe_environment(),
        stages=scored.stages,
        attribution=scored.attribution,
        llm_metrics=scored.llm,
        ingest=_ingest_summary(ingested.synced, points=points),
        timings=Timings(
            ingest_s=ingested.seconds,
            queries_s=queried.seconds,
            total_s=time.perf_counter() - started,
            **{
                f"{name[1:]}_median_ms": statistics.median(values)
                for name, values in queried.latencies.items()
                if name.startswith("_")
            },
        ),
    )


def _ingest_summary(synced: SyncReport, *, points: int) -> IngestSummary:
    return IngestSummary(
        collection=synced.collection,
        sources=list(synced.sources),
        added=synced.added,
        updated=synced.updated,
        unchanged=synced.unchanged,
        deleted=synced.deleted,
        failed=synced.failed,
        chunks_written=synced.chunks_written,
        chunks_deleted=synced.chunks_deleted,
        seconds=round(synced.seconds, 3),
        dry_run=synced.dry_run,
        optimized=synced.optimized,
        notes=list(synced.notes),
        withheld=[WithheldRecord.model_validate(w, from_attributes=True) for w in synced.withheld],
        problems=len(synced.problems),
        points=points,
    )


def _stage_docs(
    got: Retrieved, chunk_doc: Mapping[str, str], mode: DocScore
) -> dict[Stage, list[str]]:
    """Document rankings of each stage of one query (full depth)."""
    by_hybrid = sorted(got.candidates, key=lambda c: c.stages[Stage.HYBRID].rank)
    out = {
        Stage.DENSE: doc_ranking([chunk_doc[c] for c in got.dense_ranked if c in chunk_doc]),
        Stage.BM25: doc_ranking([chunk_doc[c] for c in got.bm25_ranked if c in chunk_doc]),
        Stage.HYBRID: doc_ranking(
            [c.doc_id for c in by_hybrid],
            [c.stages[Stage.HYBRID].score for c in by_hybrid],
            mode=mode,
        ),
    }
    if got.stages[Stage.RERANK].active:
        out[Stage.RERANK] = doc_ranking(
            [c.doc_id for c in got.candidates], [c.score for c in got.candidates], mode=mode
        )
    return out


def _final_order(got: Retrieved) -> list[Candidate]:
    if got.stages[Stage.RERANK].active:
        return list(got.candidates)
    return sorted(got.candidates, key=lambda c: c.stages[Stage.HYBRID].rank)


def _stage_latency(got: Retrieved) -> dict[str, float]:
    """Milliseconds until each stage's ranking exists, plus the raw components (``_`` names).

    Both legs and the fusion are one batched store call, so each leg's time is its query
    encoding plus that call; hybrid adds both encodings; rerank adds the cross-encoder.
    """
    t = got.timings_ms
    store_ms = t.get("store_query", 0.0)
    hybrid = t.get("total", 0.0) - t.get("rerank", 0.0)
    out = {
        Stage.BM25.value: t.get("bm25_encode", 0.0) + store_ms,
        Stage.DENSE.value: t.get("dense_encode", 0.0) + store_ms,
        Stage.HYBRID.value: hybrid,
        **{f"_{name}": ms for name, ms in t.items()},
    }
    if got.stages[Stage.RERANK].active:
        out[Stage.RERANK.value] = t.get("total", 0.0)
    return out


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    # the 19th of 20-quantiles, interpolated between the measured values
    p95 = (
        statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    )
    return {"median": statistics.median(values), "p95": p95, "mean": statistics.fmean(values)}


def _stage_note(stage: Stage, params: RetrievalParams) -> str:
    if stage is Stage.DENSE:
        return f"dense leg, {params.dense_limit} chunks"
    if stage is Stage.BM25:
        return f"BM25 leg, {params.bm25_limit} chunks"
    if stage is Stage.HYBRID:
        return f"RRF k={params.rrf_k} over both legs"
    return f"top {params.rerank.top_n}, mode={params.rerank.mode.value}"


def _retrieval_dict(params: RetrievalParams) -> dict[str, Any]:
    raw = asdict(params)
    raw["rerank"]["mode"] = params.rerank.mode.value
    return raw


class _SyncBars:
    """Forwards the sync's document count to the eval progress."""

    def __init__(self, progress: EvalProgress | None) -> None:
        self._progress = progress

    def documents(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(n)

    def chunks(self, n: int) -> None:
        """Chunks are not shown."""

    def embedded(self, n: int) -> None:
        """Embedding is not shown."""

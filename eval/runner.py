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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

from eval.attribution import attribute
from eval.datasets import EvalDataset
from eval.environment import describe_environment
from eval.judge import JudgeParams, judge_metrics
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

# Straight from the module that defines them.
from retrieval.filters import Principal
from retrieval.hybrid import RetrievalParams, Retrieved, search
from retrieval.rerank import Reranker
from retrieval.types import Candidate, Stage

__all__ = ["ContextScorer", "EvalParams", "EvalProgress", "collection_name", "run"]

log = logging.getLogger(__name__)

LEG_STAGES = (Stage.BM25, Stage.DENSE)
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
    ingest_s = time.perf_counter() - started
    chunk_doc = {
        p.id: str(p.payload["doc_id"]) for p in store.scroll(collection, fields=["doc_id"])
    }

    if progress is not None:
        progress.phase("queries", len(dataset.queries))
    principal = Principal(tenant=params.tenant, groups=(), name="eval")
    rankings: dict[str, dict[Stage, list[str]]] = {}
    latencies: dict[str, list[float]] = {}
    context_scores: dict[str, dict[str, float]] = {}
    handed_on: dict[str, list[str]] = {}
    rerank_note = (params.rerank_note or "no reranker configured") if reranker is None else ""
    rerank_active = reranker is not None
    first_query = next(iter(dataset.queries.values()))
    search(
        first_query,
        principal,
        collection=collection,
        store=store,
        encoders=encoders,
        reranker=reranker,
        params=retrieval,
    )  # warm-up, untimed
    queries_started = time.perf_counter()
    for qid, text in dataset.queries.items():
        got = search(
            text,
            principal,
            collection=collection,
            store=store,
            encoders=encoders,
            reranker=reranker,
            params=retrieval,
        )
        trace = got.stages[Stage.RERANK]
        rerank_active = rerank_active and trace.active
        rerank_note = rerank_note or ("" if trace.active else trace.note)
        rankings[qid] = _stage_docs(got, chunk_doc, params.doc_score)
        if params.judge is not None:
            handed_on[qid] = [c.text for c in _final_order(got)[: params.k]]
        for name, ms in _stage_latency(got).items():
            latencies.setdefault(name, []).append(ms)
        if context_scorer is not None:
            context_scores[qid] = dict(
                context_scorer(text, got.candidates, set(dataset.qrels[qid]))
            )
        if progress is not None:
            progress.advance(1)
    queries_s = time.perf_counter() - queries_started
    if not rerank_active:
        for stages in rankings.values():
            stages.pop(Stage.RERANK, None)

    scored_stages = [s for s in RANKED_STAGES if s is not Stage.RERANK or rerank_active]
    stage_reports: dict[str, StageReport] = {}
    for stage in scored_stages:
        per_stage = {q: rankings[q][stage] for q in rankings}
        per_query = ir_metrics(dataset.qrels, per_stage, IR_METRICS)
        per_query.update(ragas_id_metrics(dataset.qrels, per_stage, k=params.k))
        stage_reports[stage.value] = StageReport(
            active=True,
            metrics={m: mean(v) for m, v in per_query.items()},
            per_query=per_query,
            latency_ms=_summary(latencies.get(stage.value, [])),
            note=_stage_note(stage, retrieval),
        )
    if not rerank_active:
        stage_reports[Stage.RERANK.value] = StageReport(
            active=False, note=rerank_note or "reranker marked untrained"
        )
    if context_scorer is not None:
        names = sorted({m for s in context_scores.values() for m in s})
        per_query_ctx = {
            m: {q: s.get(m, float("nan")) for q, s in context_scores.items()} for m in names
        }
        stage_reports[Stage.CONTEXT.value] = StageReport(
            active=True,
            metrics={m: mean(v) for m, v in per_query_ctx.items()},
            per_query=per_query_ctx,
        )

    final = Stage.RERANK if rerank_active else Stage.HYBRID
    llm = judge_metrics(params.judge, dataset.queries, handed_on, stage=final.value)
    attribution = attribute(dataset.qrels, rankings, k=params.k)
    components = {name: _summary(v) for name, v in latencies.items() if name.startswith("_")}
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
        stages=stage_reports,
        attribution=attribution,
        llm_metrics=llm,
        ingest=_ingest_summary(synced, points=store.count(collection)),
        timings=Timings(
            ingest_s=ingest_s,
            queries_s=queries_s,
            total_s=time.perf_counter() - started,
            **{f"{name[1:]}_median_ms": s["median"] for name, s in components.items()},
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
        withheld=[
            WithheldRecord(
                source=w.source,
                tenant=w.tenant,
                would_delete=w.would_delete,
                held=w.held,
                doc_ids=list(w.doc_ids),
                message=w.message,
            )
            for w in synced.withheld
        ],
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
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median": statistics.median(ordered), "p95": p95, "mean": statistics.fmean(ordered)}


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

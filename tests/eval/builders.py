"""Synthetic reports for gate and report tests: only the fields those read are meaningful."""

from __future__ import annotations

from collections.abc import Mapping

from eval.attribution import Attribution
from eval.environment import Environment, GitState, Threads
from eval.judge import LLMMetrics
from eval.rankings import DocScore
from eval.report import (
    BM25Record,
    ChunkingRecord,
    DatasetInfo,
    EvalReport,
    IngestSummary,
    ModelsInfo,
    RerankRecord,
    RetrievalRecord,
    RunParams,
    StageReport,
    Timings,
)


def make_report(
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    sha256: str = "abc123",
    name: str = "toy",
    created_at: str = "2026-01-01T00:00:00+00:00",
    inactive: Mapping[str, str] | None = None,
) -> EvalReport:
    """A report whose stages hold ``scores`` (stage -> metric -> query -> score)."""
    stages: dict[str, StageReport] = {
        stage: StageReport(
            active=True,
            metrics={m: sum(q.values()) / len(q) for m, q in per.items()},
            per_query={m: dict(q) for m, q in per.items()},
            latency_ms={"median": 1.0, "p95": 2.0},
        )
        for stage, per in scores.items()
    }
    for stage, note in (inactive or {}).items():
        stages[stage] = StageReport(active=False, note=note)
    return EvalReport(
        run_id="r" + created_at[-14:-6].replace(":", ""),
        created_at=created_at,
        dataset=DatasetInfo(
            name=name,
            path="/data/toy",
            split="test",
            sha256=sha256,
            files={"corpus.jsonl": "c0ffee"},
            documents=10,
            queries=3,
            judgments=4,
        ),
        collection="eval-toy",
        params=RunParams(
            retrieval=RetrievalRecord(
                dense_limit=20,
                bm25_limit=20,
                rrf_k=60,
                top_k=40,
                rerank=RerankRecord(top_n=10, mode="fuse", weight=1.0, k=60),
                max_query_chars=2000,
                with_vectors=False,
            ),
            k=10,
            doc_score=DocScore.MAX,
            chunking=ChunkingRecord(chunk_tokens=64, overlap_tokens=8, encoding="cl100k_base"),
            max_model_tokens=256,
            bm25=BM25Record(k=1.2, b=0.75, avg_len=72.0, language="english"),
            tenant="eval",
        ),
        models=ModelsInfo(dense="m", dense_dim=4),
        environment=Environment(
            python="3.11",
            platform="test",
            machine="x86_64",
            cpu_count=1,
            libraries={},
            threads=Threads(),
            git=GitState(commit="deadbeef", dirty=False),
        ),
        stages=stages,
        attribution=Attribution(k=10, totals={"found": 1}),
        llm_metrics=LLMMetrics(status="not_run", reason="no judge"),
        ingest=IngestSummary(
            collection="eval-toy",
            sources=["beir/toy"],
            added=10,
            updated=0,
            unchanged=0,
            deleted=0,
            failed=0,
            chunks_written=20,
            chunks_deleted=0,
            seconds=1.0,
            problems=0,
            points=20,
        ),
        timings=Timings(ingest_s=1.0, queries_s=0.5, total_s=1.5),
    )

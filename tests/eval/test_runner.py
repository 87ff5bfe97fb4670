"""``eval.run`` on a tiny BEIR corpus: real store, real models, every stage, incremental."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.types import Candidate
from eval import EvalDataset, EvalParams, EvalReport, collection_name, load_dataset, run
from index.edge import EdgeStore
from ingest import Chunker, ChunkingParams
from retrieval.rerank import CrossEncoderReranker
from retrieval.types import RetrievalParams
from tests.reranker_model import build_test_cross_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOCS = {
    "d1": ("Aspirin", "Aspirin lowers the risk of heart attacks in adults over fifty."),
    "d2": ("Statins", "Statins reduce cholesterol and cardiovascular mortality."),
    "d3": ("Vitamin D", "Vitamin D deficiency is common in northern countries in winter."),
    "d4": ("Sleep", "Short sleep is associated with obesity and insulin resistance."),
    "d5": ("Coffee", "Coffee drinking is linked to a lower risk of type 2 diabetes."),
    "d6": ("Exercise", "Regular exercise improves mood and reduces depressive symptoms."),
}
QUERIES = {"1": "does aspirin prevent heart attacks", "2": "coffee and diabetes risk"}
QRELS = [("1", "d1"), ("2", "d5"), ("2", "d6")]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in QUERIES.items())
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS)
    )
    return root


def _chunker(encoders: Any) -> Chunker:
    return Chunker(
        ChunkingParams(chunk_tokens=64, overlap_tokens=8),
        max_model_tokens=encoders.dense.max_tokens,
        model_token_count=encoders.dense.count_tokens,
    )


def _run(
    data: EvalDataset, store: EdgeStore, encoders: Any, reranker: Any, **kwargs: Any
) -> EvalReport:
    return run(
        data,
        store=store,
        encoders=encoders,
        chunker=_chunker(encoders),
        reranker=reranker,
        **kwargs,
    )


class _RecallAtOne:
    """A context hook: is the first candidate's document relevant?"""

    def __call__(
        self, query: str, candidates: Sequence[Candidate], relevant: Collection[str]
    ) -> Mapping[str, float]:
        return {"recall@1": float(bool(candidates) and candidates[0].doc_id in relevant)}


def test_every_stage_is_scored_and_reruns_are_incremental(
    toy: Path, tmp_path: Path, encoders: Any
) -> None:
    data = load_dataset(toy)
    store = EdgeStore(tmp_path / "store")
    params = EvalParams(retrieval=RetrievalParams(dense_limit=20, bm25_limit=20, rrf_k=60))
    try:
        first = _run(data, store, encoders, None, params=params, context_scorer=_RecallAtOne())
        again = _run(data, store, encoders, None, params=params)
    finally:
        store.close()
    assert first.collection == collection_name(data, encoders=encoders, chunker=_chunker(encoders))
    assert first.ingest.added == len(DOCS)
    assert again.ingest.added == 0
    assert again.ingest.unchanged == len(DOCS)
    for stage in ("bm25", "dense", "hybrid"):
        sr = first.stages[stage]
        assert sr.active
        assert set(sr.per_query["ndcg@10"]) == set(QUERIES)
        assert sr.latency_ms["median"] > 0
    # six documents: the dense leg returns them all; BM25 only those sharing a term
    assert first.metric("dense", "recall@100") == 1.0
    assert first.metric("bm25", "recall@100") == 0.75  # d6 (exercise) shares no query term
    assert first.metric("hybrid", "recall@100") == 1.0
    assert first.metric("hybrid", "mrr@10") == 1.0  # both queries: a relevant document first
    assert not first.stages["rerank"].active
    assert first.stages["rerank"].note == "no reranker configured"
    assert first.stages["context"].metrics["recall@1"] == 1.0
    assert sum(first.attribution.totals[o] for o in ("found", "ranked_below_k")) == 3
    assert first.llm_metrics.status == "not_run"
    assert first.params.retrieval.top_k == 40  # the whole fused list is scored
    assert first.environment.threads.torch_intra_op == 1


def test_an_untrained_reranker_is_reported_inactive_and_a_trained_one_is_scored(
    toy: Path, tmp_path: Path, encoders: Any
) -> None:
    folder = build_test_cross_encoder(tmp_path / "ce", seed=0)
    data = load_dataset(toy)
    store = EdgeStore(tmp_path / "store")
    try:
        untrained = _run(
            data, store, encoders, CrossEncoderReranker.load(str(folder), trained=False)
        )
        acting = _run(data, store, encoders, CrossEncoderReranker.load(str(folder), trained=True))
    finally:
        store.close()
    assert not untrained.stages["rerank"].active
    assert "untrained" in untrained.stages["rerank"].note
    assert untrained.stages["rerank"].metrics == {}
    # marked trained (only to test the code path: its scores mean nothing), it is measured
    assert acting.stages["rerank"].active
    assert set(acting.stages["rerank"].per_query["ndcg@10"]) == set(QUERIES)
    assert acting.models.rerank_trained is True

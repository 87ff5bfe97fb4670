"""Does the cross-encoder's runtime change its ranking? nDCG@10 per rerank backend, one run.

Ingests a BEIR dataset into an embedded store (``--store`` keeps it for the next run), retrieves
the hybrid top ``--depth`` once per query, then scores exactly those candidates with the
reranker ``--model`` on each backend (torch, onnx, onnx-int8). Reports nDCG@10 / MRR@10 of the
hybrid order, of the reranker alone (``replace``) and fused with hybrid (``fuse``), per backend,
with the rerank time per query, all at ``--threads``. Documents rank by their best chunk.

Only a trained reranker means anything here (``ragctx reranker adapt`` writes one); the
test-built model of ``tests/reranker_model.py`` scores noise.

Usage: python bench/rerank_backends.py --model DIR [--dataset scifact] [--quick 100]
       [--depth 50] [--threads 1] [--store DIR] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

BACKENDS = ("torch", "onnx", "onnx-int8")
METRICS = ("ndcg@10", "mrr@10")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a cross-encoder folder")
    parser.add_argument("--dataset", type=Path, default=Path("scifact"))
    parser.add_argument("--quick", type=int, default=0, help="only the first N judged queries")
    parser.add_argument("--depth", type=int, default=50, help="candidates reranked per query")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--store", type=Path, default=None, help="keep the store here")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there; give a cross-encoder folder")
    if args.quick < 0 or args.depth < 1 or args.threads < 1:
        parser.error("--quick must be >= 0, --depth and --threads >= 1")
    from compare import benchdata

    if not args.dataset.exists() and len(args.dataset.parts) == 1:
        args.dataset = benchdata(os.environ, REPO) / args.dataset
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    if args.store is not None:
        return _run(args, args.store)
    with tempfile.TemporaryDirectory() as tmp:
        return _run(args, Path(tmp) / "store")


def _run(args: Any, store_dir: Path) -> dict[str, Any]:
    from eval.datasets import load_dataset
    from eval.metrics import ir_metrics, mean
    from eval.runner import collection_name, searcher
    from index.edge import EdgeStore
    from index.encoders import Encoders
    from ingest import Chunker, SourceSpec, SyncOptions, sync
    from retrieval.hybrid import _rerank_text
    from retrieval.rerank import CrossEncoderReranker, RerankMode, combine
    from service.wiring import chunking_params, encoder_params, load_settings, retrieval_params

    data = load_dataset(args.dataset).first_queries(args.quick)
    settings = load_settings(torch_threads=args.threads, query_cache_size=0)
    encoders = Encoders.load(encoder_params(settings))
    chunker = Chunker.for_encoder(chunking_params(settings), encoders.dense)
    collection = collection_name(data, encoders=encoders, chunker=chunker)
    store = EdgeStore(store_dir)
    try:
        t0 = time.perf_counter()
        spec = SourceSpec(args.dataset, name=data.name, kind="beir", tenant="eval")
        sync(
            [spec],
            collection=collection,
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=SyncOptions(optimize_threshold=settings.optimize_threshold),
        )
        ingest_s = time.perf_counter() - t0
        params = retrieval_params(settings, top_k=args.depth)
        ask = searcher(store, collection, encoders, None, params, tenant="eval")
        heads = {qid: ask(text).candidates[: args.depth] for qid, text in data.queries.items()}
    finally:
        store.close()

    def docs(order: Sequence[int], cands: Sequence[Any]) -> list[str]:
        return list(dict.fromkeys(cands[i].doc_id for i in order))

    def quality(rankings: dict[str, list[str]]) -> dict[str, float]:
        per_query = ir_metrics(data.qrels, rankings, METRICS)
        return {m: round(mean(v) or 0.0, 4) for m, v in per_query.items()}

    hybrid = {q: docs(range(len(c)), c) for q, c in heads.items()}
    result: dict[str, Any] = {
        "dataset": data.describe(),
        "queries": len(data.queries),
        "depth": args.depth,
        "threads": args.threads,
        "model": str(args.model),
        "ingest_s": round(ingest_s, 1),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "hybrid": quality(hybrid),
        "backends": {},
    }
    for backend in BACKENDS:
        reranker = CrossEncoderReranker.load(
            str(args.model),
            backend=backend,
            onnx_cache_dir=Path(settings.onnx_cache_dir),
            max_length=settings.rerank_max_length,
            batch_size=settings.rerank_batch_size,
            threads=args.threads,
        )
        alone: dict[str, list[str]] = {}
        fused: dict[str, list[str]] = {}
        ms: list[float] = []
        for qid, cands in heads.items():
            t0 = time.perf_counter()
            logits = reranker.score(data.queries[qid], [_rerank_text(c) for c in cands])
            ms.append((time.perf_counter() - t0) * 1000)
            alone[qid] = docs(sorted(range(len(cands)), key=lambda i: -logits[i]), cands)
            hybrid_ranks = list(range(1, len(cands) + 1))  # the candidates are in hybrid order
            order, _ = combine(hybrid_ranks, logits, replace(params.rerank, mode=RerankMode.FUSE))
            fused[qid] = docs(order, cands)
        result["backends"][backend] = {
            "loaded": reranker.backend,
            "alone": quality(alone),
            "fused": quality(fused),
            "rerank_ms_median": round(statistics.median(ms), 1),
        }
    torch_alone = result["backends"]["torch"]["alone"]["ndcg@10"]
    for backend in BACKENDS[1:]:
        row = result["backends"][backend]
        row["alone_ndcg10_minus_torch"] = round(row["alone"]["ndcg@10"] - torch_alone, 4)
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return result


if __name__ == "__main__":
    main()

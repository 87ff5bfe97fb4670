"""Ingest benchmark: SciFact into a fresh embedded store, against the bare model encode.

Measures, in one process: docs/s and chunks/s of ``ingest.sync`` over the whole corpus, peak
RSS, the time to re-sync the unchanged corpus (target < 3 s), and the ratio of ingest time to a
bare encode of the same chunk texts by the model ragctx embeds with (target <= 1.15): the ONNX
Runtime session with an ONNX dense backend (the default), else ``SentenceTransformer.encode``.

The ratio is paired: on a 2-vCPU VM the machine's speed drifts by 20% over minutes (a full
ingest followed by a full bare encode once measured 0.81), so the ratio comes from rounds over
the first ``--paired-docs`` documents, each round timing a fresh ingest and the bare encode
back to back, in alternating order; the median of the rounds is reported.

Usage: python bench/bench_ingest.py [--dataset ../shared/benchdata/scifact] [--json-out F]
       [--paired-docs 1000] [--rounds 3] [--no-full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/benchdata/scifact")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-chunks", type=int, default=512)
    parser.add_argument("--paired-docs", type=int, default=1000, help="documents per ratio round")
    parser.add_argument("--rounds", type=int, default=3, help="paired ratio rounds")
    parser.add_argument(
        "--no-full", dest="full", action="store_false", help="skip the whole-corpus ingest"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:  # offline: llama-index ships the BPE files
        import llama_index.core

        cache = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)

    import torch

    torch.set_num_threads(args.threads)
    from rich.console import Console
    from rich.table import Table

    from index.encoders import EncoderParams, Encoders
    from ingest import Chunker, SourceSpec, SyncOptions
    from service.wiring import chunking_params, encoder_params, load_settings

    settings = load_settings()
    params: EncoderParams = encoder_params(settings)
    encoders = Encoders.load(params)
    chunker = Chunker.for_encoder(chunking_params(settings), encoders.dense)
    options = SyncOptions(batch_chunks=args.batch_chunks)
    encoders.dense.encode(["warm up the model"] * 8)

    result: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(),
        "git_commit": _git_commit(),
        "dataset": str(args.dataset),
    }
    if args.full:
        spec = SourceSpec(args.dataset, name=args.dataset.name, kind="beir", tenant="bench")
        result.update(_full_run(spec, encoders, chunker, options))
    with tempfile.TemporaryDirectory() as tmp:
        subset = _head_corpus(args.dataset, Path(tmp) / "subset", args.paired_docs)
        spec = SourceSpec(subset, name="subset", kind="beir", tenant="bench")
        rounds = [
            _paired_round(spec, encoders, chunker, options, Path(tmp) / f"store-{n}", n % 2 == 1)
            for n in range(args.rounds)
        ]
    ratios = [r["ingest_seconds"] / r["bare_encode_seconds"] for r in rounds]
    result.update(
        {
            "paired_docs": args.paired_docs,
            "paired_rounds": rounds,
            "ingest_over_encode": round(statistics.median(ratios), 3),
            "ingest_over_encode_each": [round(ratio, 3) for ratio in ratios],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "torch_threads": torch.get_num_threads(),
            "dense_backend": encoders.dense.backend,
            "onnx_threads": settings.torch_threads or "onnxruntime default (one per core)",
            "batch_chunks": args.batch_chunks,
            "encode_batch_size": params.batch_size,
            "chunk_tokens": settings.chunk_tokens,
            "dense_model": settings.dense_model,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    )
    table = Table(title=f"ingest benchmark: {args.dataset.name}")
    for key in (
        "documents",
        "chunks",
        "ingest_seconds",
        "docs_per_s",
        "chunks_per_s",
        "resync_seconds",
        "ingest_over_encode",
        "ingest_over_encode_each",
        "peak_rss_mb",
        "torch_threads",
        "dense_backend",
        "onnx_threads",
    ):
        if key in result:
            table.add_row(key, str(result[key]))
    Console().print(table)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")


def _full_run(spec: Any, encoders: Any, chunker: Any, options: Any) -> dict[str, object]:
    """The whole corpus into a fresh store, then a re-sync of the unchanged corpus."""
    from index.edge import EdgeStore
    from ingest import sync

    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "store")
        kwargs = {"store": store, "encoders": encoders, "chunker": chunker, "options": options}
        t0 = time.perf_counter()
        report = sync([spec], collection="bench", **kwargs)
        ingest_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = sync([spec], collection="bench", **kwargs)
        resync_s = time.perf_counter() - t1
        store.close()
    return {
        "documents": report.added,
        "chunks": report.chunks_written,
        "failed": report.failed,
        "ingest_seconds": round(ingest_s, 2),
        "docs_per_s": round(report.added / ingest_s, 1),
        "chunks_per_s": round(report.chunks_written / ingest_s, 1),
        "resync_seconds": round(resync_s, 2),
        "resync_unchanged": again.unchanged,
    }


def _head_corpus(dataset: Path, target: Path, docs: int) -> Path:
    """A BEIR folder holding the first ``docs`` records of ``dataset``'s corpus."""
    target.mkdir(parents=True)
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as source:
        head = [line for _, line in zip(range(docs), source, strict=False)]
    (target / "corpus.jsonl").write_text("".join(head), "utf-8")
    return target


def _paired_round(
    spec: Any, encoders: Any, chunker: Any, options: Any, folder: Path, bare_first: bool
) -> dict[str, float]:
    """One fresh ingest of ``spec`` and one bare encode of exactly the chunk texts it embeds."""
    from index.edge import EdgeStore
    from ingest import read_source, sync
    from ingest.types import Document

    texts = [
        chunk.embed_text or chunk.text
        for item in read_source(spec)
        if isinstance(item, Document)
        for chunk in chunker.chunk(item)
    ]

    dense = encoders.dense

    def bare() -> float:
        """The model ragctx embeds with, called directly: the ONNX Runtime session when the
        dense backend is an ONNX one, else ``SentenceTransformer.encode``."""
        from index import onnx_backend

        t0 = time.perf_counter()
        if dense._session is not None:  # noqa: SLF001 (the bare reference, on purpose)
            onnx_backend.encode_dense(
                dense._session,  # noqa: SLF001
                dense._model.tokenizer,  # noqa: SLF001
                texts,
                dense.max_tokens,
                dense.batch_size,
            )
        else:
            dense._model.encode(  # noqa: SLF001
                texts,
                batch_size=dense.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return time.perf_counter() - t0

    def ingest() -> float:
        store = EdgeStore(folder)
        t0 = time.perf_counter()
        sync(
            [spec],
            collection="bench",
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=options,
        )
        elapsed = time.perf_counter() - t0
        store.close()
        return elapsed

    if bare_first:
        encode_s = bare()
        ingest_s = ingest()
    else:
        ingest_s = ingest()
        encode_s = bare()
    return {
        "chunks": len(texts),
        "ingest_seconds": round(ingest_s, 2),
        "bare_encode_seconds": round(encode_s, 2),
        "order": "bare, ingest" if bare_first else "ingest, bare",
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


if __name__ == "__main__":
    main()

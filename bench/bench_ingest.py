"""Ingest benchmark: SciFact into a fresh embedded store, against the bare model encode.

Measures, in one run and one process: docs/s and chunks/s of ``ingest.sync``, peak RSS, the
ratio of the total ingest time to a bare ``SentenceTransformer.encode`` of the same chunk texts
(target <= 1.15), and the time to re-sync the unchanged corpus (target < 3 s).

Usage: python bench/bench_ingest.py [--dataset ../shared/benchdata/scifact] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/benchdata/scifact")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-chunks", type=int, default=512)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rich.console import Console
    from rich.table import Table

    from index.edge import EdgeStore
    from index.encoders import EncoderParams, Encoders
    from ingest import SourceSpec, SyncOptions, read_source, sync
    from ingest.types import Document
    from service.cli import encoder_params, load_settings, make_chunker

    settings = load_settings()
    params: EncoderParams = encoder_params(settings)
    encoders = Encoders.load(params)
    chunker = make_chunker(settings, encoders)
    spec = SourceSpec(args.dataset, name=args.dataset.name, kind="beir", tenant="bench")
    encoders.dense.encode(["warm up the model"] * 8)

    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "store")
        options = SyncOptions(batch_chunks=args.batch_chunks)
        t0 = time.perf_counter()
        report = sync(
            [spec],
            collection="bench",
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=options,
        )
        ingest_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = sync(
            [spec],
            collection="bench",
            store=store,
            encoders=encoders,
            chunker=chunker,
            options=options,
        )
        resync_s = time.perf_counter() - t1
        store.close()

    # The reference: the bare model on exactly the chunk texts the pipeline embedded.
    texts: list[str] = []
    for item in read_source(spec):
        if isinstance(item, Document):
            texts.extend(c.embed_text or c.text for c in chunker.chunk(item))
    t2 = time.perf_counter()
    encoders.dense._model.encode(  # noqa: SLF001 (the bare reference, on purpose)
        texts, batch_size=params.batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    encode_s = time.perf_counter() - t2
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    result = {
        "date": datetime.now(UTC).isoformat(),
        "git_commit": _git_commit(),
        "dataset": str(args.dataset),
        "documents": report.added,
        "chunks": report.chunks_written,
        "failed": report.failed,
        "ingest_seconds": round(ingest_s, 2),
        "docs_per_s": round(report.added / ingest_s, 1),
        "chunks_per_s": round(report.chunks_written / ingest_s, 1),
        "bare_encode_seconds": round(encode_s, 2),
        "ingest_over_encode": round(ingest_s / encode_s, 3),
        "resync_seconds": round(resync_s, 2),
        "resync_unchanged": again.unchanged,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "torch_threads": torch.get_num_threads(),
        "batch_chunks": args.batch_chunks,
        "encode_batch_size": params.batch_size,
        "chunk_tokens": settings.chunk_tokens,
        "dense_model": settings.dense_model,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    table = Table(title=f"ingest benchmark: {args.dataset.name}")
    for key in (
        "documents",
        "chunks",
        "ingest_seconds",
        "docs_per_s",
        "chunks_per_s",
        "bare_encode_seconds",
        "ingest_over_encode",
        "resync_seconds",
        "peak_rss_mb",
        "torch_threads",
    ):
        table.add_row(key, str(result[key]))
    Console().print(table)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")


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

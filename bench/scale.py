"""How the hybrid query's cost grows with the collection: synthetic points in the embedded store.

For each size: random normalised 384-d vectors and Zipf-distributed sparse terms over a
30,000-term vocabulary (generated, not embedded), spread over 8 tenants x 4 groups; upsert
throughput, then the hybrid query's median latency with the full access filter and the
per-caller IDF (and the second lock's check, as ``retrieval.search`` runs it), before and after
``optimize()``; each leg alone and the fused points' payload read after it; optimize time,
disk size and peak RSS.
Writes scale.json, scale.md and scale.png under ``--out-dir``.

Usage: python bench/scale.py [--sizes 10000,100000,1000000] [--queries 50] [--out-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DIM = 384
VOCAB = 30_000
TENANTS = 8
GROUPS = 4
TERMS_PER_POINT = 40
BATCH = 2_000


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated points")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench/results")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: give whole numbers separated by commas")
    if not sizes or min(sizes) < 100 or args.queries < 1:
        parser.error("--sizes needs at least one size >= 100 and --queries >= 1")
    result: dict[str, Any] = {"sizes": [], "cpus": os.cpu_count()}
    for n in sizes:  # written after each size: a long run that stops keeps what it measured
        result["sizes"].append(_one_size(n, args.queries))
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        _write(result, args.out_dir)
    return result


def _point_batches(n: int, rng: Any) -> Any:
    from index.schema import PointRecord, SparseVec

    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        dense = rng.standard_normal((count, DIM)).astype("float32")
        dense /= (dense**2).sum(axis=1, keepdims=True) ** 0.5
        terms = rng.zipf(1.3, (count, TERMS_PER_POINT)) % VOCAB
        batch = []
        for i in range(count):
            ids, tf = _unique(terms[i])
            pid = start + i
            batch.append(
                PointRecord(
                    id=f"00000000-0000-0000-0000-{pid:012d}",
                    dense=dense[i].tolist(),
                    sparse=SparseVec(indices=ids, values=tf),
                    payload={
                        "tenant": f"t{pid % TENANTS}",
                        "groups": [f"g{pid % GROUPS}"],
                        "doc_id": f"d{pid // 4}",
                    },
                )
            )
        yield batch


def _unique(terms: Any) -> tuple[list[int], list[float]]:
    import numpy as np

    ids, counts = np.unique(terms, return_counts=True)
    return [int(i) for i in ids], [float(c) for c in counts]


def _one_size(n: int, queries: int) -> dict[str, Any]:
    import numpy as np

    from core.types import Principal
    from index.edge import EdgeStore
    from index.schema import HybridQuery, SparseVec
    from retrieval.filters import access_filter, second_lock

    rng = np.random.default_rng(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        store = EdgeStore(folder)
        store.create_collection("scale", dense_dim=DIM, meta={"dense_dim": DIM, "synthetic": True})
        t0 = time.perf_counter()
        for batch in _point_batches(n, rng):
            store.upsert("scale", batch)
        upsert_s = time.perf_counter() - t0
        principal = Principal(tenant="t1", groups=("g1",))
        flt, idf = access_filter(principal), second_lock(principal)
        probes = []
        for _ in range(queries):
            dense = rng.standard_normal(DIM)
            dense /= np.linalg.norm(dense)
            ids, tf = _unique(rng.zipf(1.3, 6) % VOCAB)
            probes.append(
                HybridQuery(
                    dense=dense.tolist(),
                    sparse=SparseVec(indices=ids, values=[1.0] * len(tf)),
                    filter=flt,
                    dense_limit=200,
                    sparse_limit=200,
                    rrf_k=60,
                    limit=50,
                    idf_filter=idf,
                )
            )
        before = _latency(store, probes)
        t1 = time.perf_counter()
        store.optimize("scale")
        optimize_s = time.perf_counter() - t1
        after = _latency(store, probes)
        legs = _leg_latency(store, probes)
        store.close()
        disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {
        "points": n,
        "upsert_points_per_s": round(n / upsert_s, 1),
        "optimize_s": round(optimize_s, 2),
        "query_ms_before_optimize": before,
        "query_ms_after_optimize": after,
        "leg_ms_after_optimize": legs,
        "disk_mb": round(disk / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _store_query(store: Any, probe: Any) -> None:
    """What ``retrieval.search`` asks of the store: the hybrid query, then the second lock's
    check of the legs' points that came back without a payload."""
    result = store.hybrid("scale", probe)
    fused = {p.id for p in result.fused}
    rest = list(dict.fromkeys(p.id for p in (*result.dense, *result.sparse) if p.id not in fused))
    store.outside("scale", rest, probe.idf_filter)


def _latency(store: Any, probes: Sequence[Any]) -> dict[str, float]:
    _store_query(store, probes[0])  # warm-up
    ms = []
    for probe in probes:
        t0 = time.perf_counter()
        _store_query(store, probe)
        ms.append((time.perf_counter() - t0) * 1000)
    return _summary(ms)


def _leg_latency(store: Any, probes: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Where the hybrid query's time goes: each leg alone in the engine, and the payload read
    of the fused points, requests built before the clock starts."""
    import qdrant_edge as qe

    from index.edge import _filter
    from index.schema import BM25, DENSE

    shard = store._shard("scale")  # noqa: SLF001 (the bare engine, on purpose)
    requests: dict[str, list[Any]] = {"dense_leg": [], "bm25_leg": [], "payload_by_id": []}
    for probe in probes:
        flt = _filter(probe.filter)
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=_filter(probe.idf_filter)))
        sparse = qe.SparseVector(indices=probe.sparse.indices, values=probe.sparse.values)
        requests["dense_leg"].append(
            qe.QueryRequest(
                query=qe.Query.Nearest(probe.dense, using=DENSE),
                filter=flt,
                limit=probe.dense_limit,
                with_payload=False,
            )
        )
        requests["bm25_leg"].append(
            qe.QueryRequest(
                query=qe.Query.Nearest(sparse, using=BM25),
                filter=flt,
                limit=probe.sparse_limit,
                params=idf,
                with_payload=False,
            )
        )
        requests["payload_by_id"].append([p.id for p in store.hybrid("scale", probe).fused])
    calls = {
        "dense_leg": shard.query,
        "bm25_leg": shard.query,
        "payload_by_id": lambda ids: shard.retrieve(ids, True, False),
    }
    out = {}
    for name, inputs in requests.items():
        call = calls[name]
        call(inputs[0])  # warm-up
        ms = []
        for item in inputs:
            t0 = time.perf_counter()
            call(item)
            ms.append((time.perf_counter() - t0) * 1000)
        out[name] = _summary(ms)
    return out


def _summary(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def _write(result: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    title = f"# Hybrid query, full access filter, vs points (shared machine, {result['cpus']} CPUs)"
    columns = [
        "points",
        "upsert pts/s",
        "median ms before",
        "median ms after optimize",
        "p95 ms after",
        "dense leg ms",
        "BM25 leg ms",
        "payload by id ms",
        "optimize s",
        "disk MB",
        "peak RSS MB",
    ]
    header = "| " + " | ".join(columns) + " |"
    lines = [title, "", header, "|" + "---|" * len(columns)]
    for r in result["sizes"]:
        legs = r["leg_ms_after_optimize"]
        lines.append(
            f"| {r['points']} | {r['upsert_points_per_s']} | "
            f"{r['query_ms_before_optimize']['median']} | {r['query_ms_after_optimize']['median']} "
            f"| {r['query_ms_after_optimize']['p95']} | {legs['dense_leg']['median']} "
            f"| {legs['bm25_leg']['median']} | {legs['payload_by_id']['median']} "
            f"| {r['optimize_s']} | {r['disk_mb']} | {r['peak_rss_mb']} |"
        )
    lines += [
        "",
        (
            "Medians over the probes, one query at a time; the legs and the payload read are "
            "the bare engine calls (after optimize), requests built before the clock starts."
        ),
    ]
    (out_dir / "scale.md").write_text("\n".join(lines) + "\n", "utf-8")
    points = [r["points"] for r in result["sizes"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(points, [r["query_ms_before_optimize"]["median"] for r in result["sizes"]], "o-")
    ax.plot(points, [r["query_ms_after_optimize"]["median"] for r in result["sizes"]], "s-")
    ax.legend(["before optimize()", "after optimize()"])
    ax.set_xscale("log")
    ax.set_xlabel("points")
    ax.set_ylabel("hybrid query median ms (shared machine)")
    fig.tight_layout()
    fig.savefig(out_dir / "scale.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()

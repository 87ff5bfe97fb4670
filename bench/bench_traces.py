"""What recording traces costs: the service with the trace store on and off, and the writer alone.

1. Service: ``bench_service``'s server on SciFact (its cached store, copied), driven at 1 and 4
   clients with ``RAGCTX_TRACE_STORE`` off and on, rounds alternating so both see the same
   machine: p50, p95, throughput, and the on/off ratios (target: p50 within 5 % at 1 client).
2. Writer: the ``TraceWriter`` thread alone, fed records of an answer's real size (4 ranked
   stages of 50 candidates, 8 packed items, 40 drops) as fast as it takes them, into SQLite
   (WAL, the default) and into a throwaway PostgreSQL cluster when the Debian binaries are
   installed (``initdb``/``pg_ctl`` run as the ``postgres`` user when this runs as root):
   sustained traces per second.

Run: ``.venv/bin/python bench/bench_traces.py --json-out bench/results/traces.json``
(``--quick`` for a smoke run; ``--no-service`` for the writer only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_service as svc  # noqa: E402  (the service harness, a sibling script)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STAGES = ("dense", "bm25", "hybrid", "rerank")


def _record(i: int) -> Any:
    from service.traces import TraceRecord

    def ranked(n: int) -> list[dict[str, Any]]:
        return [
            {"chunk_id": str(uuid.uuid4()), "doc_id": f"d{r}", "rank": r, "score": 1.0 / r}
            for r in range(1, n + 1)
        ]

    stages = {s: {"active": True, "note": "", "candidates": ranked(50)} for s in STAGES}
    items = [
        {
            "chunk_id": str(uuid.uuid4()),
            "doc_id": f"d{r}",
            "tokens": 180,
            "flags": [],
            "pinned": False,
        }
        for r in range(8)
    ]
    dropped = [
        {"chunk_id": str(uuid.uuid4()), "doc_id": f"d{r}", "reason": "over_budget", "detail": "x"}
        for r in range(40)
    ]
    return TraceRecord(
        id=uuid.uuid4().hex,
        tenant="bench",
        route="/v1/context",
        collection="scifact",
        query=f"does aspirin prevent heart attacks {i}",
        request={"budget_tokens": 1500, "top_k": 50},
        stages=stages,
        pack={"items": items, "dropped": dropped, "tokens": 1480, "budget_tokens": 1500},
        timings_ms={"total": 25.0},
        policy_version="default@1",
    )


def writer_rate(url: str, n: int) -> dict[str, Any]:
    """Traces per second the writer thread sustains into ``url`` (queue filled, then drained)."""
    from service.traces import TraceStore, TraceWriter

    store = TraceStore(url)
    store.upgrade()
    records = [_record(i) for i in range(n)]
    writer = TraceWriter(store, maxsize=n + 1)
    started = time.perf_counter()
    for record in records:
        writer.submit(record)
    done = writer.flush(timeout=600)
    took = time.perf_counter() - started
    writer.close()
    store.close()
    return {"traces": n, "seconds": round(took, 3), "traces_per_s": round(n / took), "ok": done}


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def postgres_rate(n: int) -> dict[str, Any]:
    """The writer's rate into a throwaway PostgreSQL 15 cluster on a free port."""
    if not (PG_BIN / "initdb").exists():
        return {"skipped": f"no PostgreSQL binaries at {PG_BIN}"}
    folder = Path(tempfile.mkdtemp(prefix="ragctx-bench-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(
        _as_postgres(*initdb, "-E", "UTF8", "--no-locale"), check=True, capture_output=True
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = [
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(folder / "log"),
        "-w",
        "-o",
        options,
    ]
    subprocess.run(_as_postgres(*start, "start"), check=True, capture_output=True)
    try:
        return writer_rate(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", n)
    finally:
        stop = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_postgres(*stop), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def service_rounds(args: argparse.Namespace, levels: list[int]) -> dict[str, Any]:
    """p50/p95/throughput per level with traces off and on, rounds alternating."""
    svc.ensure_store(args.store, args.corpus)
    queries = svc.load_queries(args.corpus, 300)
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="ragctx-bench-traces-") as tmp:
        work = Path(tmp)
        svc.write_keys(work / "keys.toml")
        store = work / "qdrant"
        shutil.copytree(
            args.store, store, ignore=shutil.ignore_patterns(".ragctx.lock", "server.json")
        )
        for round_no in range(args.rounds):
            for mode in ("off", "on") if round_no % 2 == 0 else ("on", "off"):
                os.environ["RAGCTX_TRACE_STORE"] = "true" if mode == "on" else "false"
                os.environ["RAGCTX_TRACE_DB"] = f"sqlite:///{work / 'traces.sqlite3'}"
                print(f"round {round_no + 1}, traces {mode}", file=sys.stderr)
                server = svc.start_server(
                    work, store, port=svc.free_port(), rerank_model=None, max_concurrency=16
                )
                try:
                    runs[mode].append(
                        svc.run_levels(
                            server, queries, levels, requests=args.requests, seconds=args.seconds
                        )
                    )
                finally:
                    server.stop()
    out: dict[str, Any] = {"rounds": args.rounds, "levels": {}}
    for level in map(str, levels):
        row: dict[str, Any] = {}
        for metric in ("p50_ms", "p95_ms", "throughput_rps"):
            off = statistics.median(r[level][metric] for r in runs["off"])
            on = statistics.median(r[level][metric] for r in runs["on"])
            row[metric] = {"off": off, "on": on, "on_over_off": round(on / off, 3)}
        out["levels"][level] = row
    out["runs"] = runs
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=svc.SCIFACT)
    parser.add_argument("--store", type=Path, default=svc.ROOT / ".ragctx/bench/scifact-store")
    parser.add_argument("--levels", default="1,4")
    parser.add_argument("--rounds", type=int, default=4, help="off/on pairs, alternating order")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writer-traces", type=int, default=5000)
    parser.add_argument("--no-service", action="store_true", help="the writer figures only")
    parser.add_argument("--quick", action="store_true", help="smoke run: few requests")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests, args.seconds, args.writer_traces = 2, 20, 5.0, 300
    svc._offline_env()
    results: dict[str, Any] = {"benchmark": "traces", "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        results["writer_sqlite"] = writer_rate(
            f"sqlite:///{Path(tmp) / 'traces.sqlite3'}", args.writer_traces
        )
    results["writer_postgresql"] = postgres_rate(args.writer_traces)
    print(f"writer: {results['writer_sqlite']} / {results['writer_postgresql']}", file=sys.stderr)
    if not args.no_service:
        levels = [int(x) for x in args.levels.split(",")]
        results["service"] = service_rounds(args, levels)
        for level, row in results["service"]["levels"].items():
            print(f"{level} client(s): " + json.dumps(row), file=sys.stderr)
    text = json.dumps(results, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

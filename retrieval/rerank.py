"""The cross-encoder stage and how its ranks combine with the first stage's.

A cross-encoder trained on MS MARCO can rank a domain worse than the fusion it reranks, so the
default does not replace the hybrid order with the reranker's: it fuses the two rank lists
(RRF over the reranker's rank and the hybrid rank, ``weight`` on the reranker). ``replace``
mode is there for a reranker measured to be better on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from core import defaults
from core.errors import InvalidInputError, ModelNotFoundError

log = logging.getLogger(__name__)

#: Cross-encoder runtimes: ``onnx`` is the fp32 export (same rankings), ``onnx-int8`` opt-in.
RERANK_BACKENDS = ("torch", "onnx", "onnx-int8")


class Reranker(Protocol):
    """Scores (query, text) pairs; higher is more relevant; scores come back in input order."""

    trained: bool
    name: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in input order."""
        ...


class RerankMode(StrEnum):
    """How the reranker's order becomes the final order."""

    FUSE = "fuse"
    REPLACE = "replace"

    @classmethod
    def parse(cls, value: str) -> RerankMode:
        """Parse, listing the valid modes on error."""
        try:
            return cls(value)
        except ValueError as err:
            raise InvalidInputError(
                f"unknown rerank mode {value!r}; valid: {[m.value for m in cls]}",
                field="rerank_mode",
                value=value,
            ) from err


@dataclass(frozen=True, slots=True)
class RerankParams:
    """How many fused candidates to rerank, and how to combine the orders.

    Candidates are reranked in hybrid order, ``batch_size`` at a time, until ``top_n`` are
    done or ``budget_ms`` (0: none) has elapsed after a batch: so the stage takes at most the
    budget plus one batch. The candidates not reached keep their hybrid order below.
    """

    top_n: int = defaults.RERANK_TOP_N
    mode: RerankMode = RerankMode.FUSE
    weight: float = 1.0
    k: int = defaults.RRF_K
    batch_size: int = defaults.RERANK_BATCH_SIZE
    budget_ms: float = defaults.RERANK_BUDGET_MS


class CrossEncoderReranker:
    """sentence-transformers ``CrossEncoder`` with a one-logit head, on torch or ONNX Runtime.

    ``max_length`` caps the word-pieces of each (query, text) pair in both runtimes (longest
    first truncation, as the ``CrossEncoder`` does).
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str,
        batch_size: int,
        trained: bool,
        session: Any = None,
        backend: str = "torch",
    ) -> None:
        self._model = model
        self._session = session
        self.name = name
        self.batch_size = batch_size
        self.trained = trained
        self.backend = backend
        self.max_length = int(model.max_seq_length)

    @classmethod
    def load(
        cls,
        model: str,
        *,
        max_length: int = defaults.RERANK_MAX_LENGTH,
        batch_size: int = defaults.RERANK_BATCH_SIZE,
        device: str = "cpu",
        trained: bool = True,
        backend: str = defaults.RERANK_BACKEND,
        onnx_cache_dir: Path = Path(".ragctx/onnx"),
        threads: int | None = None,
    ) -> CrossEncoderReranker:
        """Load a hub id or a local folder; an ONNX backend that cannot load falls back to torch.

        Raises:
            InvalidInputError: an unknown backend.
            ModelNotFoundError: no such model.
        """
        from sentence_transformers import CrossEncoder

        if backend not in RERANK_BACKENDS:
            raise InvalidInputError(
                f"unknown rerank backend {backend!r}; set RAGCTX_RERANK_BACKEND to one of "
                f"{list(RERANK_BACKENDS)}",
                field="rerank_backend",
                value=backend,
            )

        try:
            ce = CrossEncoder(model, max_length=max_length, device=device, num_labels=1)
        except (OSError, ValueError) as err:
            raise ModelNotFoundError(
                f"cannot load the reranker {model!r} ({err}); set RAGCTX_RERANK_MODEL to a "
                "cross-encoder hub id or folder, or to an empty value to turn reranking off"
            ) from err
        if backend == "torch":
            return cls(ce, name=model, batch_size=batch_size, trained=trained)
        from index import onnx_backend

        try:
            session = onnx_backend.rerank_session(
                ce, model, backend=backend, cache_dir=onnx_cache_dir, device=device, threads=threads
            )
        except Exception as err:  # noqa: BLE001 -- any export/runtime failure falls back to torch
            log.warning(
                "rerank backend %r unavailable for %r (%s); using torch", backend, model, err
            )
            return cls(ce, name=model, batch_size=batch_size, trained=trained)
        return cls(
            ce, name=model, batch_size=batch_size, trained=trained, session=session, backend=backend
        )

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Logits for (query, text) pairs, in input order."""
        if not texts:
            return []
        if self._session is not None:
            from index import onnx_backend

            logits = onnx_backend.score_pairs(
                self._session,
                self._model.tokenizer,
                query,
                list(texts),
                self.max_length,
                self.batch_size,
            )
            return [float(s) for s in logits]
        import torch

        # activation_fn=None would mean "the model's default", which is a sigmoid for a
        # one-label model saved without one: ask for the raw logits explicitly.
        scores = self._model.predict(
            [(query, t) for t in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            activation_fn=torch.nn.Identity(),
        )
        return [float(s) for s in scores]


def combine(
    hybrid_ranks: Sequence[int], logits: Sequence[float], params: RerankParams
) -> tuple[list[int], list[float]]:
    """The final order of reranked items: positions into the input, and their final scores.

    ``hybrid_ranks`` are 1-based first-stage ranks; ties in the final score keep the hybrid
    order, so the result is deterministic.
    """
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], hybrid_ranks[i]))
    rerank_rank = {i: r + 1 for r, i in enumerate(order)}
    if params.mode is RerankMode.REPLACE:
        return order, [logits[i] for i in order]
    fused = [
        params.weight / (params.k + rerank_rank[i]) + 1.0 / (params.k + hybrid_ranks[i])
        for i in range(len(logits))
    ]
    final = sorted(range(len(logits)), key=lambda i: (-fused[i], hybrid_ranks[i]))
    return final, [fused[i] for i in final]

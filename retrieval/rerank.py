"""The cross-encoder stage and how its ranks combine with the first stage's.

A cross-encoder trained on MS MARCO can rank a domain worse than the fusion it reranks, so the
default does not replace the hybrid order with the reranker's: it fuses the two rank lists
(RRF over the reranker's rank and the hybrid rank, ``weight`` on the reranker). ``replace``
mode is there for a reranker measured to be better on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from index.errors import InvalidInputError, ModelNotFoundError


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
    """How many fused candidates to rerank, and how to combine the orders."""

    top_n: int = 50
    mode: RerankMode = RerankMode.FUSE
    weight: float = 1.0
    k: int = 60


class CrossEncoderReranker:
    """sentence-transformers ``CrossEncoder`` with a one-logit head."""

    def __init__(self, model: Any, *, name: str, batch_size: int, trained: bool) -> None:
        self._model = model
        self.name = name
        self.batch_size = batch_size
        self.trained = trained

    @classmethod
    def load(
        cls,
        model: str,
        *,
        max_length: int = 512,
        batch_size: int = 32,
        device: str = "cpu",
        trained: bool = True,
    ) -> CrossEncoderReranker:
        """Load a hub id or a local folder."""
        from sentence_transformers import CrossEncoder

        try:
            ce = CrossEncoder(model, max_length=max_length, device=device, num_labels=1)
        except (OSError, ValueError) as err:
            raise ModelNotFoundError(
                f"cannot load the reranker {model!r} ({err}); set RAGCTX_RERANK_MODEL to a "
                "cross-encoder hub id or folder, or to an empty value to turn reranking off"
            ) from err
        return cls(ce, name=model, batch_size=batch_size, trained=trained)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Logits for (query, text) pairs, in input order."""
        if not texts:
            return []
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

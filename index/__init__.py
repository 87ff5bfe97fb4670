"""The index layer: the one package that knows Qdrant and the encoders.

Open a store with :func:`open_store`; load encoders with :meth:`Encoders.load`. The Edge and
server backends are imported by :func:`open_store` when a store of that kind is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from index.encoders import Bm25Params, DenseEncoder, EncoderParams, Encoders, SparseEncoder
from index.schema import DateRange, Filter, MatchAny, MatchValue
from index.store import Store

__all__ = [
    "Bm25Params",
    "DateRange",
    "DenseEncoder",
    "EncoderParams",
    "Encoders",
    "Filter",
    "MatchAny",
    "MatchValue",
    "SparseEncoder",
    "Store",
    "StoreParams",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class StoreParams:
    """Where the store is: a Qdrant URL (server/cluster) or an embedded folder."""

    path: Path
    url: str | None = None
    api_key: str | None = None


def open_store(params: StoreParams, *, owner: str = "ragctx") -> Store:
    """Open the store: Qdrant by URL when ``url`` is set, else the embedded Edge folder.

    The embedded folder is locked for this process until ``close()``; ``owner`` is written into
    the lock so a second process can say who holds it.
    """
    if params.url:
        from index.client import ClientStore

        return ClientStore.connect(params.url, api_key=params.api_key)
    from index.edge import EdgeStore

    return EdgeStore(params.path, owner=owner)

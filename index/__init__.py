"""The index layer: the one package that knows Qdrant and the encoders.

Open a store with :func:`open_store`; load encoders with :meth:`Encoders.load`.

Names are loaded lazily (PEP 562): importing ``core.errors`` or ``index.schema`` must not pull
in qdrant or numpy, because the assembler depends on the error types and must stay light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.errors import (
        InvalidInputError,
        ModelNotFoundError,
        RagctxError,
        StoreLockedError,
        StoreUnavailableError,
        UnknownCollectionError,
    )
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
    "InvalidInputError",
    "MatchAny",
    "MatchValue",
    "ModelNotFoundError",
    "RagctxError",
    "SparseEncoder",
    "Store",
    "StoreLockedError",
    "StoreParams",
    "StoreUnavailableError",
    "UnknownCollectionError",
    "open_store",
]

_LAZY = {
    "Bm25Params": "index.encoders",
    "DenseEncoder": "index.encoders",
    "EncoderParams": "index.encoders",
    "Encoders": "index.encoders",
    "SparseEncoder": "index.encoders",
    "InvalidInputError": "core.errors",
    "ModelNotFoundError": "core.errors",
    "RagctxError": "core.errors",
    "StoreLockedError": "core.errors",
    "StoreUnavailableError": "core.errors",
    "UnknownCollectionError": "core.errors",
    "DateRange": "index.schema",
    "Filter": "index.schema",
    "MatchAny": "index.schema",
    "MatchValue": "index.schema",
    "Store": "index.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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

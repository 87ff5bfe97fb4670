"""Retrieval fixtures: the test cross-encoder, and a store of each backend.

Backends: Qdrant Edge in a tmp folder, and qdrant-client's in-process local mode
(``QdrantClient(location=":memory:")``), the stand-in for a Qdrant server on machines where
none can run: the same client calls, functionally equal, far slower (keep its corpora small).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from index.client import ClientStore
from index.edge import EdgeStore
from retrieval.rerank import CrossEncoderReranker
from tests.reranker_model import build_test_cross_encoder

BACKENDS = ["edge", "client-local"]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """These tests encode one short query at a time: one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def open_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """A function that opens a fresh, empty store of the named backend; all closed at the end."""
    opened: list[Any] = []

    def open_(kind: str) -> Any:
        if kind == "edge":
            store: Any = EdgeStore(Path(tmp_path_factory.mktemp("edge-store")))
        elif kind == "client-local":
            store = ClientStore(QdrantClient(location=":memory:"))
        else:
            raise ValueError(f"unknown backend {kind!r}; use one of {BACKENDS}")
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def test_reranker_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded test cross-encoder (real MiniLM, untrained head), built once per session."""
    return build_test_cross_encoder(tmp_path_factory.mktemp("test-cross-encoder"), seed=0)


@pytest.fixture(scope="session")
def test_reranker(test_reranker_folder: Path) -> CrossEncoderReranker:
    """The test cross-encoder as deployed offline: marked untrained, so it never reorders."""
    return CrossEncoderReranker.load(str(test_reranker_folder), trained=False)


@pytest.fixture(scope="session")
def acting_test_reranker(test_reranker_folder: Path) -> CrossEncoderReranker:
    """The same untrained model marked ``trained=True``, so the stage reorders.

    Only for tests of *how* the reranker's scores become the final order; its scores are
    meaningless as relevance.
    """
    return CrossEncoderReranker.load(str(test_reranker_folder), trained=True)

"""Fixtures the ingest adversarial tests share: a fresh Edge store per test, small chunks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.edge import EdgeStore
from ingest import Chunker
from tests.adversarial.ingest_helpers import small_chunker


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture(scope="module")
def chunker(encoders: Any) -> Chunker:
    return small_chunker(encoders)

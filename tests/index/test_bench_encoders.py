"""The encoder benchmark's query sequences: the repeat rate it reports is the one it makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_encoders.py"
    spec = importlib.util.spec_from_file_location("bench_encoders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repeat_sequences(bench: ModuleType) -> None:
    queries = [f"q{i}" for i in range(1000)]
    none = bench._repeat_sequence(queries, 200, 0.0)
    assert none == queries[:200]
    some = bench._repeat_sequence(queries, 400, 0.3)
    assert len(some) == 400
    repeats = len(some) - len(set(some))
    assert 0.22 < repeats / 400 < 0.38
    # a repeat always follows the query's first use, and fresh queries come in order
    fresh = list(dict.fromkeys(some))
    assert fresh == queries[: len(fresh)]
    assert bench._repeat_sequence(queries, 400, 0.3) == some  # seeded

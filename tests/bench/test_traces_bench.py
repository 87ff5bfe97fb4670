"""bench/bench_traces.py's writer measurement writes what it says it wrote."""

from __future__ import annotations

from pathlib import Path

from service.traces import TraceStore
from tests.bench.loader import load_bench


def test_the_writer_figure_counts_traces_that_reached_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'traces.sqlite3'}"
    result = load_bench("bench_traces").writer_rate(url, 40)
    assert result["ok"] is True
    assert result["traces"] == 40 and result["traces_per_s"] > 0
    store = TraceStore(url)
    try:
        assert len(store.list("bench", limit=100)) == 40
    finally:
        store.close()

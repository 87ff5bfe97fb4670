"""Reports round-trip through JSON; runs accumulate with a Markdown summary and a history."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from eval.history import read_history, write_run
from eval.report import EvalReport, load_report
from tests.eval.builders import make_report


def _report(created_at: str = "2026-01-01T00:00:00+00:00") -> EvalReport:
    return make_report(
        {
            "bm25": {"ndcg@10": {"q1": 0.5, "q2": 0.25}},
            "hybrid": {
                "ndcg@10": {"q1": 0.75, "q2": 0.5},
                "id_context_precision@10": {"q1": math.nan, "q2": 0.1},
            },
        },
        inactive={"rerank": "no reranker configured (rerank_model is empty)"},
        created_at=created_at,
    )


def test_json_round_trip_keeps_per_query_scores_and_nulls_nan(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(_report().to_json())
    raw = json.loads(path.read_text())
    assert raw["stages"]["hybrid"]["per_query"]["id_context_precision@10"]["q1"] is None
    assert list(raw["stages"]) == ["bm25", "hybrid", "rerank"]
    back = load_report(path)
    assert back.stages["bm25"].per_query["ndcg@10"] == {"q1": 0.5, "q2": 0.25}
    assert back.metric("hybrid", "ndcg@10") == pytest.approx(0.625)
    assert back.metric("rerank", "ndcg@10") is None
    assert not back.stages["rerank"].active


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"kind": "something"}')
    with pytest.raises(InvalidInputError, match="not a ragctx eval report"):
        load_report(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_report(tmp_path / "missing.json")


def test_runs_accumulate_with_summary_and_history(tmp_path: Path) -> None:
    first = write_run(_report(), tmp_path)
    second = write_run(_report("2026-01-02T00:00:00+00:00"), tmp_path)
    assert first.json != second.json
    assert [r.created_at[:10] for r in read_history(tmp_path)] == ["2026-01-01", "2026-01-02"]
    summary = second.markdown.read_text()
    assert "| hybrid | 0.6250 |" in summary
    assert "| rerank | inactive: no reranker configured" in summary
    assert "Not run: no judge" in summary
    assert second.history_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert second.history_md.read_text().count("| toy |") == 2

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
    path.write_text(_report().model_dump_json())
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


def _broken_reports() -> dict[str, tuple[str, str]]:
    """name -> (file text, what the error must say)."""
    whole = _report().model_dump_json()
    raw = json.loads(whole)
    wrong_type = json.loads(whole)
    wrong_type["dataset"]["documents"] = "many"
    wrong_stage = json.loads(whole)
    wrong_stage["stages"]["bm25"]["per_query"]["ndcg@10"]["q1"] = [0.5]
    missing = {k: v for k, v in raw.items() if k != "timings"}
    newer = dict(raw, schema=2)
    return {
        "truncated": (whole[: len(whole) // 2], "is not valid JSON"),
        "garbled": ("\x00\xff{not json", "is not valid JSON"),
        "list": ("[1, 2]", "not a JSON object"),
        "wrong_type": (json.dumps(wrong_type), "dataset.documents"),
        "wrong_stage": (json.dumps(wrong_stage), "stages.bm25.per_query.ndcg@10.q1"),
        "missing": (json.dumps(missing), "timings: Field required"),
        "newer": (json.dumps(newer), "schema=2"),
    }


@pytest.mark.parametrize("case", sorted(_broken_reports()))
def test_a_broken_report_file_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, case: str
) -> None:
    text, expected = _broken_reports()[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text, "utf-8", errors="surrogateescape")
    with pytest.raises(InvalidInputError) as err:
        load_report(path)
    assert path.as_posix() in str(err.value)
    assert expected in str(err.value)


def test_the_gate_refuses_a_broken_baseline_naming_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli_eval import eval_app

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(_report().model_dump_json())
    bad.write_text(_report().model_dump_json()[:-40])
    result = CliRunner().invoke(eval_app, ["gate", "--baseline", str(bad), "--current", str(good)])
    assert isinstance(result.exception, InvalidInputError)
    assert f"report {bad.as_posix()} is not valid JSON" in str(result.exception)


def test_the_history_skips_a_broken_run_and_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_run(_report(), tmp_path)
    broken = tmp_path / "runs" / "20260103T000000Z-toy-broken.json"
    broken.write_text(
        _report("2026-01-03T00:00:00+00:00")
        .model_dump_json()
        .replace('"active":true', '"active":"maybe"')
    )
    with caplog.at_level("WARNING", logger="eval.history"):
        rows = read_history(tmp_path)
    assert [r.created_at[:10] for r in rows] == ["2026-01-01"]
    assert broken.as_posix() in caplog.text
    assert "stages.bm25.active" in caplog.text


@pytest.mark.parametrize("name", ["scifact.json", "scifact-ci.json"])
def test_committed_baselines_read_and_write_back_with_the_same_keys(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "eval" / "baselines" / name
    written = json.loads(load_report(path).model_dump_json())
    original = json.loads(path.read_text("utf-8"))
    assert written.pop("ingest").pop("withheld") == []  # a key newer than these files
    original.pop("ingest")
    assert written == original


def test_the_json_schema_names_the_format_and_its_version() -> None:
    schema = EvalReport.model_json_schema()
    assert schema["properties"]["kind"]["const"] == "ragctx-eval-report"
    assert schema["properties"]["schema"]["const"] == 1
    assert "stages" in schema["required"]


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


def test_the_ingest_part_records_the_sync_summary_with_problems_counted() -> None:
    from eval.runner import _ingest_summary
    from ingest.sync import InputProblem, PlannedAction, SyncReport, WithheldDeletion

    synced = SyncReport(
        collection="c", sources=("beir/toy",), added=2, updated=1, unchanged=3, deleted=0,
        failed=1, chunks_written=5, chunks_deleted=0, seconds=0.12345,
        problems=(InputProblem(path="corpus.jsonl", line=4, doc_id="d4", message="bad"),),
        plan=(PlannedAction(action="add", source="beir/toy", doc_id="d1"),),
        withheld=(WithheldDeletion("beir/toy", None, 9, 9, ("d7",), "held back"),),
    )  # fmt: skip
    written = _ingest_summary(synced, points=7).model_dump(mode="json")
    expected = synced.to_dict()
    del expected["plan"]  # the plan is not recorded; problems are counted (they are logged)
    assert written == expected | {"problems": 1, "points": 7}

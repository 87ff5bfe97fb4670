"""Failure counts over time (``ragctx eval failures``): a real SQLite trace store with feedback,
counted per day, tenant and policy version, plotted next to the quality history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eval.failures import count_failures
from service.traces import TraceRecord, TraceStore
from tests.cli import ragctx

DAY1 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _stage(*chunks: str) -> dict[str, Any]:
    return {
        "active": True,
        "candidates": [
            {"chunk_id": c, "doc_id": c.split("#")[0], "rank": r, "score": 1.0 / r}
            for r, c in enumerate(chunks, 1)
        ],
    }


def _rec(i: str, tenant: str, at: datetime, version: str, *, empty: bool = False) -> TraceRecord:
    return TraceRecord(
        id=i,
        tenant=tenant,
        route="/v1/context",
        collection="docs",
        query=f"q {i}",
        request={"query": f"q {i}", "budget_tokens": 100},
        stages={
            "dense": _stage("a#1", "big#1"),
            "bm25": _stage(),
            "hybrid": _stage("a#1", "big#1"),
            "rerank": {"active": False, "candidates": []},
        },
        pack={
            "items": [] if empty else [{"chunk_id": "a#1", "doc_id": "a", "flags": []}],
            "dropped": [{"chunk_id": "big#1", "doc_id": "big", "reason": "over_budget"}],
        },
        timings_ms={},
        policy_version=version,
        created_at=at,
    )


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'traces.sqlite3'}"
    monkeypatch.chdir(tmp_path)  # no ragctx.toml of the repository
    monkeypatch.setenv("RAGCTX_TRACE_DB", url)
    store = TraceStore(url)
    store.upgrade()
    store.write(
        [
            _rec("t1", "acme", DAY1, "default@1"),
            _rec("t2", "acme", DAY1, "default@1"),
            _rec("t3", "acme", DAY2, "default@2", empty=True),
            _rec("t4", "globex", DAY2, "default@1"),
            _rec("t5", "acme", DAY2, "default@2"),  # never judged: not counted
        ]
    )
    missing = [{"doc_id": "nowhere", "label": "missing"}]
    store.add_feedback(
        "acme", "t1", "rejected", [*missing, {"chunk_id": "big#1", "label": "missing"}]
    )
    store.add_feedback("acme", "t1", "edited", missing)  # judged twice: the item counts once
    store.add_feedback("acme", "t2", "accepted")
    store.add_feedback("acme", "t3", "rejected")
    store.add_feedback("globex", "t4", "rejected", [{"chunk_id": "big#1", "label": "relevant"}])
    store.close()
    return url


def _rows(url: str) -> list[dict[str, Any]]:
    store = TraceStore(url)
    try:
        return [r.to_dict() for r in count_failures(store.list(None, limit=100))]
    finally:
        store.close()


def test_counts_per_day_tenant_and_policy_version(db: str) -> None:
    rows = _rows(db)
    keyed = {(r["day"], r["tenant"], r["policy_version"]): r for r in rows}
    assert list(keyed) == [
        ("2026-11-30", "acme", "default@1"),
        ("2026-12-01", "acme", "default@2"),
        ("2026-12-01", "globex", "default@1"),
    ]
    day1 = keyed[("2026-11-30", "acme", "default@1")]
    assert day1["traces"] == 2
    assert day1["counts"]["not_retrieved"] == 1 and day1["counts"]["over_budget"] == 1
    assert sum(day1["counts"].values()) == 2
    assert keyed[("2026-12-01", "acme", "default@2")]["counts"]["empty_pack"] == 1
    assert keyed[("2026-12-01", "globex", "default@1")]["counts"]["over_budget"] == 1


def test_cli_writes_the_plot_and_table(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    code = ragctx(monkeypatch, "eval", "failures", "--tenant", "acme", "--reports", str(reports))
    assert code == 0
    assert "3 judged traces" in capsys.readouterr().err
    assert (reports / "failures.png").read_bytes()[:4] == b"\x89PNG"
    table = (reports / "failures.md").read_text("utf-8")
    assert "| 2026-11-30 | acme | default@1 | 2 | 1 | 0 | 0 | 0 | 0 | 1 | 0 | 0 |" in table
    assert "globex" not in table
    code = ragctx(monkeypatch, "eval", "failures", "--since", "2026-12-01", "--json", "--no-save")
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert code == 0 and {r["day"] for r in rows} == {"2026-12-01"} and len(rows) == 2


def test_cli_no_judged_traces_is_an_empty_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCTX_TRACE_DB", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    reports = tmp_path / "reports"
    assert ragctx(monkeypatch, "eval", "failures", "--reports", str(reports), "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"rows": []}
    assert "No judged traces yet" in (reports / "failures.md").read_text("utf-8")
    assert (reports / "failures.png").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--since", "yesterday"], "--since 'yesterday'"),
        (["--limit", "0"], "--limit 0"),
        (["--db", "mysql://nope"], "RAGCTX_TRACE_DB"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(
    db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    named: str,
) -> None:
    assert ragctx(monkeypatch, "eval", "failures", "--no-save", *args) == 2
    assert named in capsys.readouterr().err.replace("\n", " ")

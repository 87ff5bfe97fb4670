"""``ragctx traces list`` and ``ragctx traces purge`` through the real entry point (``main``),
in process, on a real SQLite trace store; bad input exits 2 with a message naming it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.traces import TraceRecord, TraceStore
from tests.cli import ragctx


def _rec(i: str, tenant: str, age_days: float) -> TraceRecord:
    return TraceRecord(
        id=i,
        tenant=tenant,
        route="/v1/context",
        collection="docs",
        query=f"q {i}",
        request={"query": f"q {i}", "budget_tokens": 100},
        stages={},
        pack={"items": []},
        timings_ms={},
        created_at=datetime.now(UTC) - timedelta(days=age_days),
    )


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TraceStore:
    url = f"sqlite:///{tmp_path / 'traces.sqlite3'}"
    monkeypatch.chdir(tmp_path)  # no ragctx.toml of the repository
    monkeypatch.setenv("RAGCTX_TRACE_DB", url)
    monkeypatch.setenv("RAGCTX_TRACE_RETENTION_DAYS", "30")
    store = TraceStore(url)
    store.upgrade()
    store.write([_rec("a-old", "acme", 40), _rec("a-new", "acme", 1), _rec("g-old", "globex", 41)])
    return store


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_list_filters_by_tenant_since_and_limit(
    db: TraceStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def ids(*args: str) -> list[str]:
        assert ragctx(monkeypatch, "traces", "list", "--json", *args) == 0
        traces = _json(capsys)["traces"]
        assert isinstance(traces, list)
        return [t["id"] for t in traces]

    assert ids() == ["a-new", "a-old", "g-old"]
    assert ids("--tenant", "acme") == ["a-new", "a-old"]
    since = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    assert ids("--since", since) == ["a-new"]
    assert ids("--limit", "1") == ["a-new"]
    assert ragctx(monkeypatch, "traces", "list") == 0
    assert "a-old" in capsys.readouterr().out  # the table


def test_purge_asks_then_deletes_by_age_and_tenant(
    db: TraceStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No terminal and no --yes: refused, nothing deleted.
    assert ragctx(monkeypatch, "traces", "purge", "--older-than", "30") == 2
    assert "--yes" in capsys.readouterr().err
    assert len(db.list(None)) == 3
    assert ragctx(monkeypatch, "traces", "purge", "--tenant", "acme", "--yes", "--json") == 0
    assert _json(capsys)["purged"] == 1  # 30 days from RAGCTX_TRACE_RETENTION_DAYS
    assert [t["id"] for t in db.list(None)] == ["a-new", "g-old"]
    assert ragctx(monkeypatch, "traces", "purge", "--older-than", "30", "--yes", "--json") == 0
    assert _json(capsys)["purged"] == 1
    assert [t["id"] for t in db.list(None)] == ["a-new"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["purge", "--older-than", "-1", "--yes"], "--older-than -1"),
        (["list", "--limit", "0"], "--limit 0"),
        (["list", "--since", "last week"], "--since 'last week'"),
        (["list", "--db", "mysql://h/db"], "only sqlite:/// and postgresql://"),
        (["purge", "--db", "redis://h", "--yes"], "only sqlite:/// and postgresql://"),
    ],
)
def test_bad_input_exits_2_naming_it(
    db: TraceStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert ragctx(monkeypatch, "traces", *args) == 2
    assert message in capsys.readouterr().err.replace("\n", "")
    assert len(db.list(None)) == 3  # nothing lost


def test_retention_0_purges_nothing_unless_asked(
    db: TraceStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGCTX_TRACE_RETENTION_DAYS", "0")
    assert ragctx(monkeypatch, "traces", "purge", "--yes") == 2
    assert "keep traces forever" in capsys.readouterr().err.replace("\n", "")
    assert len(db.list(None)) == 3


def test_an_unreachable_database_exits_1_without_the_password(
    db: TraceStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://u:s3cret@127.0.0.1:1/traces"  # nothing listens on port 1
    assert ragctx(monkeypatch, "traces", "list", "--db", url) == 1
    err = capsys.readouterr().err.replace("\n", "")
    assert "cannot be opened" in err and "s3cret" not in err

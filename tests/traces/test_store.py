"""The trace store on SQLite and a real PostgreSQL: migrations, tenancy, feedback, purge, writer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.traces import TraceRecord, TraceStore, TraceWriter, default_url, query_hash


def _rec(
    i: str, tenant: str = "acme", collection: str = "docs", age_days: float = 0
) -> TraceRecord:
    return TraceRecord(
        id=i,
        tenant=tenant,
        route="/v1/context",
        collection=collection,
        query=f"how do I rotate keys {i}",
        request={"query": f"how do I rotate keys {i}", "budget_tokens": 512},
        stages={"dense": [{"chunk_id": "c1", "rank": 1, "score": 0.9}]},
        pack={"kept": ["c1"], "dropped": [], "tokens": 120},
        timings_ms={"retrieval": 3.2},
        policy_version="p1",
        created_at=datetime.now(UTC) - timedelta(days=age_days),
    )


@pytest.fixture
def store(store_url: str) -> TraceStore:
    s = TraceStore(store_url)
    s.upgrade()
    s.upgrade()  # idempotent: a second start finds the schema at head
    return s


def test_round_trip_and_tenant_isolation(store: TraceStore) -> None:
    store.write([_rec("t1"), _rec("t2", tenant="globex")])
    got = store.get("acme", "t1")
    assert got is not None and got["query"] == "how do I rotate keys t1"
    assert got["stages"]["dense"][0]["chunk_id"] == "c1"
    assert got["policy_version"] == "p1"
    assert store.get("acme", "t2") is None  # another tenant's trace reads as absent
    assert store.get("globex", "t1") is None
    assert [t["id"] for t in store.list("acme")] == ["t1"]
    assert store.add_feedback("acme", "t2", "rejected") is None  # not acme's trace
    assert store.get("globex", "t2")["feedback"] == []  # type: ignore[index]


def test_a_retried_write_keeps_one_row_and_the_first_version(store: TraceStore) -> None:
    store.write([_rec("t1")])
    again = _rec("t1")
    store.write([again, _rec("t3")])  # a batch retried after a commit whose answer was lost
    assert [t["id"] for t in store.list("acme")] == ["t3", "t1"]
    store.write([])  # nothing to write is not an error
    assert len(store.list("acme")) == 2


def test_feedback_kept_and_filters(store: TraceStore) -> None:
    store.write([_rec("a", age_days=3), _rec("b", collection="other"), _rec("c")])
    store.add_feedback("acme", "a", "rejected", [{"chunk_id": "c1", "label": "not_relevant"}])
    store.add_feedback(
        "acme", "a", "edited", [{"doc_id": "d9", "label": "missing"}], note="n", who="ann"
    )
    fb = store.get("acme", "a")["feedback"]  # type: ignore[index]
    assert [f["verdict"] for f in fb] == ["rejected", "edited"]
    assert fb[1]["judgments"] == [{"doc_id": "d9", "label": "missing"}] and fb[1]["who"] == "ann"
    assert [t["id"] for t in store.list("acme", verdict="rejected")] == ["a"]
    assert {t["id"] for t in store.list("acme", collection="other")} == {"b"}
    recent = store.list("acme", since=datetime.now(UTC) - timedelta(days=1))
    assert {t["id"] for t in recent} == {"b", "c"}
    assert [t["id"] for t in store.list("acme", until=datetime.now(UTC) - timedelta(days=1))] == [
        "a"
    ]
    assert len(store.list("acme", limit=1)) == 1
    with pytest.raises(ValueError, match="verdict 'fine'"):
        store.add_feedback("acme", "a", "fine")


def test_purge_by_age_and_tenant(store: TraceStore) -> None:
    store.write([_rec("old", age_days=40), _rec("new"), _rec("gold", tenant="globex", age_days=40)])
    store.add_feedback("acme", "old", "accepted")
    cut = datetime.now(UTC) - timedelta(days=30)
    assert store.purge(older_than=cut, tenant="acme") == 1
    assert [t["id"] for t in store.list(None)] == ["new", "gold"]
    assert store.purge(older_than=cut) == 1
    assert [t["id"] for t in store.list(None)] == ["new"]


def test_text_off_keeps_only_the_hash(store_url: str) -> None:
    s = TraceStore(store_url, store_text=False)
    s.upgrade()
    s.write([_rec("h")])
    got = s.get("acme", "h")
    assert got is not None and got["query"] is None and "query" not in got["request"]
    assert got["query_hash"] == query_hash("how do I rotate keys h")


def test_writer_writes_batches(store: TraceStore) -> None:
    w = TraceWriter(store, maxsize=1000)
    for i in range(50):
        assert w.submit(_rec(f"w{i}"))
    assert w.flush(20)
    w.close()
    assert len(store.list("acme", limit=100)) == 50 and w.written == 50


def test_writer_never_blocks_when_db_is_down_and_resumes(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    store = TraceStore(url)
    store.upgrade()
    real_write = store.write
    down = True

    def flaky(records: list[TraceRecord]) -> None:
        # Stands in for an unreachable database: the one thing a test cannot make happen on cue.
        if down:
            raise OSError("connection refused")
        real_write(records)

    store.write = flaky  # type: ignore[method-assign]
    drops: list[str] = []
    w = TraceWriter(store, maxsize=5, batch=1, on_drop=drops.append, retry_s=0.02, max_retry_s=0.05)
    started = time.perf_counter()
    accepted = sum(w.submit(_rec(f"d{i}")) for i in range(20))
    assert time.perf_counter() - started < 0.5  # submit never waits on the database
    assert drops and set(drops) == {"queue_full"} and accepted + len(drops) == 20
    deadline = time.monotonic() + 5
    while w.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.failures >= 2  # the writer kept retrying while the database was down
    down = False
    assert w.flush(10)
    w.close()
    assert len(store.list("acme")) == accepted  # everything accepted got written once it was up


def test_bad_url_is_named() -> None:
    with pytest.raises(ValueError, match="RAGCTX_TRACE_DB='mysql://x'"):
        TraceStore("mysql://x")


def test_writer_purges_by_retention_at_start_and_periodically(store: TraceStore) -> None:
    store.write([_rec("old", age_days=40), _rec("young", age_days=5)])
    assert store.count_older(older_than=datetime.now(UTC) - timedelta(days=30)) == 1
    w = TraceWriter(store, retention_days=30, purge_every_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while store.get("acme", "old") is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.get("acme", "old") is None, "not purged at start"
        # Written after the start, already past retention: the next periodic turn takes it.
        store.write([_rec("late", age_days=31)])
        while store.get("acme", "late") is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.get("acme", "late") is None, "not purged periodically"
        assert w.submit(_rec("fresh")) and w.flush(10)
    finally:
        w.close()
    assert {t["id"] for t in store.list("acme")} == {"young", "fresh"} and w.purged == 2


def test_writer_keeps_everything_with_retention_0_and_refuses_negative(
    store: TraceStore,
) -> None:
    store.write([_rec("ancient", age_days=4000)])
    w = TraceWriter(store, retention_days=0, purge_every_s=0.01)
    time.sleep(0.1)
    w.close()
    assert store.get("acme", "ancient") is not None and w.purged == 0
    with pytest.raises(ValueError, match="retention_days=-1"):
        TraceWriter(store, retention_days=-1)

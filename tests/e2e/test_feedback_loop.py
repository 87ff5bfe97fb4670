"""The loop from served answers back to a release gate, end to end and over real parts: a real
uvicorn server on 127.0.0.1 over the ingested sample corpus answers requests and records them
in the default SQLite trace store; feedback is posted over HTTP; then, the server stopped,
``ragctx eval export --from-traces``, ``ragctx eval DIR`` and ``ragctx eval gate`` run through
the CLI's entry point on the same store and trace database.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.runtime import Models
from tests.cli import ragctx
from tests.service.conftest import (  # noqa: F401  (fixtures: models, sample_store_template)
    COLLECTION,
    auth,
    loader_of,
    make_settings,
    models,
    running_server,
    sample_store_template,
)

QUERIES = [
    ("acme-eng", "How do I rotate API keys?"),
    ("acme-eng", "What happened in the last outage?"),
    ("acme-support", "How do refunds work?"),
    ("globex-all", "How do I rotate API keys?"),
]


def _serve_and_judge(work: Path, loaded: Models) -> dict[str, Any]:
    """Serve the queries, judge every answer over HTTP; return the trace ids per tenant."""
    store = work / "qdrant"
    traces: dict[str, list[str]] = {"acme": [], "globex": []}
    with (
        running_server(
            lambda port: make_settings(store, work, port=port), loader_of(loaded)
        ) as run,
        run.client() as c,
    ):
        answers = []
        for key, query in QUERIES:
            r = c.post(
                "/v1/context", json={"query": query, "budget_tokens": 800}, headers=auth(key)
            )
            assert r.status_code == 200, r.text
            answers.append((key, r.json()))
        (_, first), (_, second), (_, third), (_, globex) = answers
        feedback = [
            ("acme-eng", first, "accepted", [
                {"doc_id": first["items"][0]["doc_id"], "label": "relevant"},
                # another tenant's document: not acme's, so reported, never exported
                {"doc_id": "globex-runbook-rotate-keys", "label": "missing"},
            ]),
            ("acme-eng", second, "accepted", []),  # the packed documents count as relevant
            ("acme-support", third, "edited", [
                {"chunk_id": third["items"][0]["chunk_id"], "label": "relevant"},
            ]),
            ("globex-all", globex, "accepted", []),
        ]  # fmt: skip
        for key, answer, verdict, judgments in feedback:
            body = {"trace_id": answer["trace"]["trace_id"], "verdict": verdict}
            r = c.post("/v1/feedback", json={**body, "judgments": judgments}, headers=auth(key))
            assert r.status_code == 201, r.text
            traces["globex" if key.startswith("globex") else "acme"].append(body["trace_id"])
        # A key never judges another tenant's answer.
        stolen = {"trace_id": first["trace"]["trace_id"], "verdict": "rejected"}
        assert c.post("/v1/feedback", json=stolen, headers=auth("globex-all")).status_code == 404
        assert run.runtime.traces is not None and run.runtime.traces.flush(10)
    return traces


def test_served_and_judged_requests_become_a_gated_eval_set(
    sample_store_template: Path,  # noqa: F811
    models: Models,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(sample_store_template, work / "qdrant")
    monkeypatch.delenv("RAGCTX_TRACE_DB", raising=False)  # the default: next to the store
    traces = _serve_and_judge(work, models)
    assert (work / "traces.sqlite3").is_file()

    settings = make_settings(work / "qdrant", work)
    monkeypatch.chdir(work)  # no ragctx.toml: the settings come from here
    for name, value in {
        "QDRANT_PATH": work / "qdrant",
        "POLICY_DIR": work / "policies",
        "COLLECTION": COLLECTION,
        "DENSE_MODEL": settings.dense_model,
        "RERANK_MODEL": "",
    }.items():
        monkeypatch.setenv(f"RAGCTX_{name}", str(value))
    dataset, reports = work / "from-traces", work / "reports"
    capsys.readouterr()
    assert ragctx(monkeypatch, "eval", "export", "--from-traces", "--tenant", "acme",
                  "--since", "1d", "--out", str(dataset), "--json") == 0  # fmt: skip
    exported = json.loads(capsys.readouterr().out)
    assert exported["queries"] == 3 and exported["tenant"] == "acme"
    assert [d["doc_id"] for d in exported["deleted"]] == ["globex-runbook-rotate-keys"]
    queries = (dataset / "queries.jsonl").read_text("utf-8")
    assert all(t in queries for t in traces["acme"]) and traces["globex"][0] not in queries
    assert '"globex-' not in (dataset / "corpus.jsonl").read_text("utf-8")

    run_json = work / "run.json"
    code = ragctx(monkeypatch, "eval", str(dataset), "--reports", str(reports),
                  "--json-out", str(run_json), "--no-progress", "--json")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads(run_json.read_text("utf-8"))
    assert report["dataset"]["queries"] == 3
    assert report["stages"]["hybrid"]["metrics"]["recall@100"] > 0  # the judged docs are found
    capsys.readouterr()
    assert ragctx(monkeypatch, "eval", "gate", "--baseline", str(run_json),
                  "--reports", str(reports)) == 0  # fmt: skip
    assert "gate passed" in capsys.readouterr().out

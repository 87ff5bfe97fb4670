"""Reading traces back and judging them over real HTTP: tenant isolation, kept judgments,
bad and oversized bodies, and a server with the trace store off."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.runtime import Models
from service.traces.diagnose import CATEGORIES
from tests.service.conftest import Running, auth, loader_of, make_settings, running_server

Q = {"query": "How do I rotate API keys?", "budget_tokens": 600}


@pytest.fixture(scope="module")
def acme_trace(server: Running) -> str:
    with server.client() as c:
        r = c.post("/v1/context", json=Q, headers=auth("acme-eng"))
    assert r.status_code == 200, r.text
    assert server.runtime.traces is not None and server.runtime.traces.flush(10)
    trace_id: str = r.json()["trace"]["trace_id"]
    return trace_id


def test_the_tenant_reads_its_trace_and_another_tenant_gets_404(
    server: Running, acme_trace: str
) -> None:
    with server.client() as c:
        own = c.get(f"/v1/traces/{acme_trace}", headers=auth("acme-support"))
        other = c.get(f"/v1/traces/{acme_trace}", headers=auth("globex-all"))
        unknown = c.get("/v1/traces/no-such-trace", headers=auth("globex-all"))
        listed = c.get("/v1/traces", headers=auth("globex-all"))
        nokey = c.get(f"/v1/traces/{acme_trace}")
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["id"] == acme_trace and body["query"] == Q["query"]
    assert body["stages"]["dense"]["candidates"] and body["pack"]["items"]
    assert "tenant" not in body
    # Another tenant's id answers exactly like an unknown one.
    assert other.status_code == 404 and unknown.status_code == 404
    assert other.json()["error"]["code"] == unknown.json()["error"]["code"] == "unknown_trace"
    assert acme_trace not in [t["id"] for t in listed.json()["traces"]]
    assert nokey.status_code == 401


def test_a_trace_names_what_made_the_answer_and_a_failed_request_is_traced(
    server: Running, acme_trace: str
) -> None:
    with server.client() as c:
        made = c.get(f"/v1/traces/{acme_trace}", headers=auth("acme-eng")).json()["request"]
        failed = c.post("/v1/context", json={**Q, "collection": "gone"}, headers=auth("acme-eng"))
        assert failed.status_code == 404
        assert server.runtime.traces is not None and server.runtime.traces.flush(10)
        error = c.get(f"/v1/traces/{failed.headers['x-trace-id']}", headers=auth("acme-eng"))
    assert made["key_id"] == "acme-eng"
    assert made["policy_sha256"] and made["policy_version"]
    assert made["models"]["dense"] == server.runtime.models.encoders.dense.name  # type: ignore[union-attr]
    assert made["retrieval"]["dense_limit"] == server.settings.dense_limit
    assert made["retrieval"]["top_k"] == 50 and made["ragctx_version"]
    assert error.status_code == 200, error.text
    record = error.json()
    assert record["collection"] == "gone" and record["stages"] == {}
    assert record["pack"]["error"]["code"] == "unknown_collection"
    assert "gone" in record["pack"]["error"]["message"]


def test_judgments_are_kept_and_only_by_the_own_tenant(server: Running, acme_trace: str) -> None:
    judged = {
        "trace_id": acme_trace,
        "verdict": "edited",
        "judgments": [
            {"chunk_id": "c1", "label": "relevant"},
            {"doc_id": "acme-faq", "label": "missing"},
        ],
        "note": "missed the FAQ",
        "by": "reviewer-1",
    }
    with server.client() as c:
        first = c.post("/v1/feedback", json=judged, headers=auth("acme-eng"))
        second = c.post(
            "/v1/feedback",
            json={"trace_id": acme_trace, "verdict": "rejected"},
            headers=auth("acme-support"),
        )
        stolen = c.post("/v1/feedback", json=judged, headers=auth("globex-all"))
        got = c.get(f"/v1/traces/{acme_trace}", headers=auth("acme-eng")).json()
        rejected = c.get("/v1/traces?verdict=rejected", headers=auth("acme-eng")).json()
        accepted = c.get("/v1/traces?verdict=accepted", headers=auth("acme-eng")).json()
        other_coll = c.get("/v1/traces?collection=nope", headers=auth("acme-eng")).json()
        future = c.get("/v1/traces?since=2999-01-01T00:00:00", headers=auth("acme-eng")).json()
    assert first.status_code == 201, first.text
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    assert stolen.status_code == 404  # globex cannot judge acme's trace
    fb = got["feedback"]
    assert [f["verdict"] for f in fb] == ["edited", "rejected"]  # both kept, in order
    assert fb[0]["by"] == "reviewer-1" and fb[0]["note"] == "missed the FAQ"
    assert fb[0]["judgments"][1] == {"doc_id": "acme-faq", "label": "missing"}
    assert any(f.get("doc_id") == "acme-faq" for f in got["failures"])  # judged missing
    assert {f["category"] for f in got["failures"]} <= set(CATEGORIES)
    assert acme_trace in [t["id"] for t in rejected["traces"]]
    assert acme_trace not in [t["id"] for t in accepted["traces"]]
    assert other_coll["traces"] == [] and future["traces"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"verdict": "accepted"}, "trace_id"),
        ({"trace_id": "t", "verdict": "meh"}, "verdict"),
        ({"trace_id": "t", "verdict": "accepted", "tenant": "acme"}, "tenant"),
        (
            {"trace_id": "t", "verdict": "accepted", "judgments": [{"label": "relevant"}]},
            "judgments[0]",
        ),
        (
            {
                "trace_id": "t",
                "verdict": "accepted",
                "judgments": [{"chunk_id": "c", "doc_id": "d", "label": "relevant"}],
            },
            "judgments[0]",
        ),
        (
            {"trace_id": "t", "verdict": "accepted", "judgments": [{"chunk_id": "c"}]},
            "judgments[0].label",
        ),
        (
            {
                "trace_id": "t",
                "verdict": "accepted",
                "judgments": [{"chunk_id": "c", "label": "relevant"}] * 201,
            },
            "judgments",
        ),
        ({"trace_id": "t" * 65, "verdict": "accepted"}, "trace_id"),
        ({"trace_id": "t", "verdict": "accepted", "note": "n" * 4001}, "note"),
    ],
)
def test_bad_feedback_bodies_answer_422_naming_the_field(
    server: Running, body: dict[str, object], field: str
) -> None:
    with server.client() as c:
        r = c.post("/v1/feedback", json=body, headers=auth("acme-eng"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_oversized_and_bad_queries_are_refused(server: Running) -> None:
    huge = {"trace_id": "t", "verdict": "accepted", "note": "x" * 100_000}
    with server.client() as c:
        big = c.post("/v1/feedback", json=huge, headers=auth("acme-eng"))
        limit = c.get("/v1/traces?limit=100000", headers=auth("acme-eng"))
        since = c.get("/v1/traces?since=yesterday", headers=auth("acme-eng"))
    assert big.status_code == 413
    assert limit.status_code == 422 and limit.json()["error"]["field"] == "limit"
    assert since.status_code == 422 and since.json()["error"]["field"] == "since"


def test_traces_off_answers_503_with_a_clear_message(
    fresh_store: Path, tmp_path: Path, models: Models
) -> None:
    with (
        running_server(
            lambda port: make_settings(fresh_store, tmp_path, port=port, trace_store=False),
            loader_of(models),
        ) as run,
        run.client() as c,
    ):
        r = c.get("/v1/traces/abc", headers=auth("acme-eng"))
        f = c.post(
            "/v1/feedback", json={"trace_id": "a", "verdict": "accepted"}, headers=auth("acme-eng")
        )
    assert r.status_code == 503 and f.status_code == 503
    assert "RAGCTX_TRACE_STORE" in r.json()["error"]["message"]

"""Every /v1/context answer is recorded in the trace store, under the caller's tenant only."""

from __future__ import annotations

from service.runtime import Runtime
from tests.service.conftest import Running, auth

Q = {"query": "How do I rotate API keys?", "budget_tokens": 600}


def test_an_answer_is_recorded_with_its_stages_pack_and_policy(server: Running) -> None:
    with server.client() as c:
        r = c.post("/v1/context", json=Q, headers=auth("acme-eng"))
    assert r.status_code == 200, r.text
    body = r.json()
    runtime: Runtime = server.app.state.runtime
    assert runtime.traces is not None and runtime.traces.flush(10)
    trace_id = body["trace"]["trace_id"]
    got = runtime.traces.store.get("acme", trace_id)
    assert got is not None, "the answer was not recorded"
    assert got["route"] == "/v1/context" and got["query"] == Q["query"]
    assert got["request"]["budget_tokens"] == 600 and got["request"]["groups"]
    assert got["policy_version"] == "default@1"
    dense = got["stages"]["dense"]["candidates"]
    assert dense and dense[0]["rank"] == 1
    assert [i["doc_id"] for i in got["pack"]["items"]] == [i["doc_id"] for i in body["items"]]
    assert got["pack"]["tokens"] == body["tokens"]
    assert runtime.traces.store.get("globex", trace_id) is None  # never another tenant's

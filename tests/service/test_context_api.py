"""POST /v1/context over real HTTP: the answer, its trace, auth, groups, bad requests, metrics."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.service.conftest import Running, auth

Q = {"query": "how do I rotate an API key and how long is the grace period?", "budget_tokens": 600}
STAGES = {"dense", "bm25", "hybrid", "rerank", "context"}
T = TypeVar("T")


def eventually(get: Callable[[], T], ok: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Poll ``get`` until ``ok`` holds (for what the server does after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def post(server: Running, body: Any, key: str | None = "acme-support", **kw: Any) -> Any:
    headers = auth(key) if key else {}
    with server.client() as c:
        return c.post("/v1/context", json=body, headers=headers, **kw)


def test_answer_carries_context_policy_and_a_trace_of_every_stage(server: Running) -> None:
    r = post(server, Q)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 < body["tokens"] <= body["budget_tokens"] == 600
    assert body["items"] and "[1]" in body["context"]
    assert {i["doc_id"] for i in body["items"]} >= {"acme-runbook-rotate-keys"}
    policy_file = server.settings.policy_dir / "default.yaml"
    assert body["policy"] == {
        "name": "default",
        "version": "1",
        "sha256": hashlib.sha256(policy_file.read_bytes()).hexdigest(),
    }
    trace = body["trace"]
    assert len(trace["trace_id"]) == 32 and trace["trace_id"] == r.headers["x-trace-id"]
    assert set(trace["stages"]) == STAGES
    for name, stage in trace["stages"].items():
        assert stage["count"] >= 0 and stage["ms"] >= 0, name
        assert "candidates" not in stage, "ranks per candidate only with debug"
    assert trace["stages"]["rerank"]["active"] is False  # no reranker configured
    assert trace["stages"]["context"]["count"] == len(body["items"])
    assert trace["stages"]["context"]["steps"]
    assert {"dense_encode", "bm25_encode", "store_query", "context", "queue"} <= set(
        trace["timings_ms"]
    )
    assert 0 <= trace["timings_ms"]["queue"] < trace["timings_ms"]["total"] + 1000
    assert all("stages" not in i for i in body["items"])
    assert all("stages" not in d for d in body["dropped"])


def test_debug_adds_ranks_and_scores_per_candidate_in_every_stage(server: Running) -> None:
    body = post(server, {**Q, "budget_tokens": 200, "debug": True}).json()
    stages = body["trace"]["stages"]
    for leg in ("dense", "bm25", "hybrid"):
        ranks = [c["rank"] for c in stages[leg]["candidates"]]
        assert ranks == sorted(ranks) and ranks[0] == 1, leg
    top = body["items"][0]
    assert set(top["stages"]) >= {"hybrid"} and top["stages"]["hybrid"]["rank"] >= 1
    assert body["dropped"], "a 200-token budget leaves candidates out"
    assert all(d["reason"] and d["stages"] for d in body["dropped"])


@pytest.mark.parametrize(
    "extra",
    [{}, {"debug": True, "budget_tokens": 300}, {"policy": "pinned", "debug": True}],
    ids=["plain", "debug", "pinned"],
)
def test_the_answer_is_exactly_the_json_of_its_response_model(
    server: Running, extra: dict[str, Any]
) -> None:
    # The route writes the answer from plain data, without building the models: parsed into
    # ContextResponse and written again, it must come out byte for byte the same.
    from service.api.schemas import ContextResponse

    r = post(server, {**Q, **extra})
    assert r.status_code == 200, r.text
    model = ContextResponse.model_validate_json(r.content)
    again = model.model_dump_json().encode()
    first_difference = next(
        (k for k, (x, y) in enumerate(zip(again, r.content, strict=False)) if x != y), -1
    )
    assert again == r.content, (first_difference, r.content[first_difference - 80 :][:160])
    assert any(item.updated_at is not None for item in model.items)  # datetimes are checked
    if extra.get("debug"):
        assert model.dropped and all(d.stages for d in model.dropped)
    if "policy" in extra:
        assert any(i.pinned for i in model.items)


def test_o200k_encoding_is_counted_with_its_own_tokenizer(server: Running) -> None:
    r = post(server, {**Q, "encoding": "o200k_base"})
    assert r.status_code == 200 and r.json()["encoding"] == "o200k_base"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer nope"}, "invalid"),
        ({"Authorization": "Basic dGVzdDp0ZXN0"}, "missing"),
    ],
)
def test_no_key_or_a_bad_key_is_401(server: Running, headers: dict[str, str], why: str) -> None:
    with server.client() as c:
        r = c.post("/v1/context", json=Q, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert why in r.json()["error"]["message"]


def test_a_request_may_narrow_its_groups(server: Running) -> None:
    q = {
        "query": "publish latency incident in eu-central-1 stale broker lease",
        "budget_tokens": 1500,
        "top_k": 100,
    }
    full = post(server, q, key="acme-eng").json()
    assert "acme-postmortem-inc-2026-0714" in {i["doc_id"] for i in full["items"]}
    narrowed = post(server, {**q, "groups": ["support"]}, key="acme-eng").json()
    docs = {i["doc_id"] for i in narrowed["items"]} | {d["doc_id"] for d in narrowed["dropped"]}
    assert "acme-postmortem-inc-2026-0714" not in docs
    public_only = post(server, {**q, "groups": []}, key="acme-eng").json()
    assert "acme-runbook-rotate-keys" not in {i["doc_id"] for i in public_only["items"]}


def test_a_request_may_never_widen_its_groups_or_name_a_tenant(server: Running) -> None:
    r = post(server, {**Q, "groups": ["support", "engineering"]}, key="acme-support")
    assert r.status_code == 403 and r.json()["error"]["field"] == "groups"
    assert "engineering" in r.json()["error"]["message"]
    r = post(server, {**Q, "tenant": "globex"}, key="acme-support")
    assert r.status_code == 422 and r.json()["error"]["field"] == "tenant"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"budget_tokens": 100}, 422, "query"),
        ({"query": "   ", "budget_tokens": 100}, 422, "query"),
        ({"query": "x" * 2001, "budget_tokens": 100}, 422, "query"),
        ({"query": "q"}, 422, "budget_tokens"),
        ({"query": "q", "budget_tokens": 0}, 422, "budget_tokens"),
        ({"query": "q", "budget_tokens": -5}, 422, "budget_tokens"),
        ({"query": "q", "budget_tokens": 32_001}, 422, "budget_tokens"),
        ({"query": "q", "budget_tokens": "many"}, 422, "budget_tokens"),
        ({"query": "q", "budget_tokens": 100, "encoding": "gpt2"}, 422, "encoding"),
        ({"query": "q", "budget_tokens": 100, "policy": "nope"}, 404, "policy"),
        ({"query": "q", "budget_tokens": 100, "collection": "nope"}, 404, "collection"),
        ({"query": "q", "budget_tokens": 100, "collection": "../etc"}, 422, "collection"),
        ({"query": "q", "budget_tokens": 100, "top_k": 0}, 422, "top_k"),
        (
            {"query": "q", "budget_tokens": 100, "filters": {"sources": "acme"}},
            422,
            "filters.sources",
        ),
        (
            {"query": "q", "budget_tokens": 100, "filters": {"updated_after": "last week"}},
            422,
            "filters.updated_after",
        ),
        (
            {"query": "q", "budget_tokens": 100, "filters": {"tenant": "globex"}},
            422,
            "filters.tenant",
        ),
        ({"query": "q", "budget_tokens": 100, "filters": []}, 422, "filters"),
        ([1, 2], 422, "body"),
    ],
)
def test_bad_requests_are_4xx_naming_the_field(
    server: Running, body: Any, status: int, field: str
) -> None:
    r = post(server, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field
    assert error["message"]


def test_a_body_that_is_not_json_is_400(server: Running) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/context",
            content=b"{not json",
            headers={**auth("acme-support"), "content-type": "application/json"},
        )
    assert r.status_code == 400 and r.json()["error"]["field"] == "body"


def test_an_oversized_body_is_413_declared_or_streamed(server: Running) -> None:
    big = {"query": "q" * 70_000, "budget_tokens": 100}
    r = post(server, big)
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts streamed bytes
        yield b'{"query": "'
        for _ in range(80):
            yield b"q" * 1000
        yield b'", "budget_tokens": 100}'

    with server.client() as c:
        r = c.post(
            "/v1/context",
            content=chunks(),
            headers={**auth("acme-support"), "content-type": "application/json"},
        )
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"


def test_health_ready_and_openapi(server: Running) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}
        ready = c.get("/readyz", headers=auth("admin"))
        assert ready.status_code == 200
        assert ready.json()["models"] == "loaded" and "docs" in ready.json()["collections"]
        spec = c.get("/openapi.json").json()
        assert "/v1/context" in spec["paths"] and c.get("/docs").status_code == 200


def test_metrics_has_stage_histograms_and_drop_counters(server: Running) -> None:
    post(server, {**Q, "budget_tokens": 150})
    with server.client() as c:
        text = c.get("/metrics").text
    for stage in ("dense", "bm25", "hybrid", "context"):
        assert f'ragctx_stage_seconds_bucket{{le="0.005",stage="{stage}"}}' in text
    assert 'ragctx_dropped_candidates_total{reason="over_budget"}' in text
    assert 'ragctx_requests_total{route="/v1/context",status="200"}' in text
    assert "ragctx_request_seconds_count" in text


def test_spans_form_one_tree_per_request(server: Running) -> None:
    exporter = server.app.state.telemetry.memory_exporter
    r = post(server, {**Q, "policy": "pinned"})
    trace_id = int(r.json()["trace"]["trace_id"], 16)

    def spans() -> dict[str, Any]:
        found = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        return {s.name: s for s in found}

    # the root span ends just after the answer has been sent
    by_name = eventually(spans, lambda names: "POST /v1/context" in names)
    assert set(by_name) == {"POST /v1/context", "retrieval", "pinned", "context"}
    root = by_name["POST /v1/context"]
    assert root.parent is None
    assert root.attributes["http.response.status_code"] == 200
    for child in ("retrieval", "pinned", "context"):
        assert by_name[child].parent.span_id == root.context.span_id, child
    retrieval = by_name["retrieval"].attributes
    stages = r.json()["trace"]["stages"]
    for stage in ("dense", "bm25", "hybrid", "rerank"):
        assert retrieval[f"ragctx.{stage}.count"] == stages[stage]["count"], stage
        assert retrieval[f"ragctx.{stage}.active"] is stages[stage]["active"], stage
    assert retrieval["ragctx.rerank.active"] is False
    assert by_name["context"].attributes["ragctx.count"] == len(r.json()["items"])


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def test_audit_line_names_who_what_and_how_long_but_never_text(server: Running) -> None:
    handler = _Lines()
    audit = logging.getLogger("ragctx.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    try:
        r = post(server, {**Q, "groups": ["support"]})
        body = r.json()
        post(server, {"query": "q", "budget_tokens": 0})
        server.settings.audit_include_text = True
        try:
            with_text = post(server, Q).json()
        finally:
            server.settings.audit_include_text = False
        # audit lines are written just after the answer has been sent
        eventually(lambda: handler.lines, lambda lines: len(lines) >= 3)
    finally:
        audit.removeHandler(handler)
    line = next(x for x in handler.lines if x["trace_id"] == body["trace"]["trace_id"])
    assert line["status"] == 200 and line["route"] == "/v1/context"
    assert line["principal"] == {
        "key_id": "acme-support",
        "tenant": "acme",
        "groups": ["support"],
        "admin": False,
    }
    assert line["policy"]["name"] == "default" and line["policy"]["version"] == "1"
    assert line["doc_ids"] == list(dict.fromkeys(i["doc_id"] for i in body["items"]))
    assert line["counts"]["items"] == len(body["items"])
    assert line["counts"]["dropped"] == len(body["dropped"])
    assert line["latency_ms"] > 0 and line["tokens"] == body["tokens"]
    dumped = json.dumps(line)
    assert Q["query"] not in dumped and "query" not in line
    assert all(i["text"][:40] not in dumped for i in body["items"])
    bad_line = next(x for x in handler.lines if x["status"] == 422)
    assert bad_line["error"] == "invalid_input" and bad_line["principal"]["key_id"]
    text_line = next(x for x in handler.lines if x["trace_id"] == with_text["trace"]["trace_id"])
    assert text_line["query"] == Q["query"]

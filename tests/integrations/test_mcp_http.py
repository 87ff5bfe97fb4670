"""The MCP endpoint of `ragctx serve` (/mcp), driven by the MCP SDK's own client over real HTTP.

The server is the service test server (uvicorn on 127.0.0.1, the sample corpus in a real Edge
store, real dense model): the same keys as /v1/context decide the tenant and groups.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from tests.service.conftest import Running, auth, key_of

TOOLS = {"get_context", "search", "list_collections", "describe_policy"}
QUESTION = "rotate API key grace period"


@asynccontextmanager
async def connect(server: Running, key: str | None) -> AsyncIterator[Client]:
    headers = {} if key is None else {"Authorization": f"Bearer {key_of(key)}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0))
    async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as c:
        yield c


def call(server: Running, key: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async def go() -> CallToolResult:
        async with connect(server, key) as c:
            return await c.call_tool(tool, arguments)

    return anyio.run(go)


def test_lists_the_four_tools_with_the_http_request_schema(server: Running) -> None:
    from service.api.schemas import ContextRequest

    async def go() -> Any:
        async with connect(server, "acme-support") as c:
            return await c.list_tools()

    tools = {t.name: t for t in anyio.run(go).tools}
    assert set(tools) == TOOLS
    # the tool's input schema IS the HTTP request model's: a field added there shows up here
    assert tools["get_context"].input_schema == ContextRequest.model_json_schema()
    assert tools["get_context"].input_schema["additionalProperties"] is False
    assert "tenant" not in tools["search"].input_schema["properties"]
    assert tools["get_context"].output_schema is not None


def test_get_context_matches_the_http_answer_for_the_same_key(server: Running) -> None:
    body = {"query": QUESTION, "budget_tokens": 800}
    result = call(server, "acme-all", "get_context", body)
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer is not None
    with server.client() as c:
        http = c.post("/v1/context", json=body, headers=auth("acme-all")).json()
    assert answer["context"] == http["context"]
    assert [i["chunk_id"] for i in answer["items"]] == [i["chunk_id"] for i in http["items"]]
    assert answer["tokens"] <= 800 and answer["citations"]
    assert len(answer["trace"]["trace_id"]) == 32
    assert answer["trace"]["trace_id"] != http["trace"]["trace_id"]
    assert "[1]" in answer["context"] and "24-hour grace period" in answer["context"]


def test_each_key_sees_only_its_own_tenant(server: Running) -> None:
    acme = call(server, "acme-all", "get_context", {"query": QUESTION, "budget_tokens": 1500})
    globex = call(server, "globex-all", "get_context", {"query": QUESTION, "budget_tokens": 1500})
    assert acme.structured_content and globex.structured_content
    acme_docs = {i["doc_id"] for i in acme.structured_content["items"]}
    globex_docs = {i["doc_id"] for i in globex.structured_content["items"]}
    assert "acme-runbook-rotate-keys" in acme_docs and "globex-runbook-rotate-keys" in globex_docs
    assert not any(d.startswith("globex") for d in acme_docs)
    assert "72-hour" not in acme.structured_content["context"]
    hits = call(server, "globex-all", "search", {"query": QUESTION, "top_k": 50})
    assert hits.structured_content is not None
    # the sample corpus's sources are named after their tenants
    assert {h["source"] for h in hits.structured_content["candidates"]} == {"globex"}


def test_search_ranks_candidates_with_every_stage(server: Running) -> None:
    result = call(server, "acme-all", "search", {"query": QUESTION, "top_k": 5})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out is not None and out["collection"] == "docs" and len(out["trace_id"]) == 32
    hits = out["candidates"]
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1)) and 0 < len(hits) <= 5
    assert hits[0]["doc_id"] == "acme-runbook-rotate-keys"
    assert {"dense", "bm25", "hybrid"} <= set(hits[0]["stages"])
    assert hits[0]["stages"]["hybrid"]["rank"] == 1


def test_list_collections_and_describe_policy_show_only_the_callers_view(server: Running) -> None:
    cols = call(server, "acme-support", "list_collections", {})
    assert cols.structured_content is not None
    (docs,) = cols.structured_content["collections"]
    assert docs["name"] == "docs" and docs["default"] is True
    # a key of more groups sees more chunks of the same collection
    wider = call(server, "acme-all", "list_collections", {})
    assert wider.structured_content is not None
    assert 0 < docs["chunks"] < wider.structured_content["collections"][0]["chunks"]
    acme = call(server, "acme-all", "describe_policy", {"name": "pinned"})
    globex = call(server, "globex-all", "describe_policy", {"name": "pinned"})
    public = call(server, "acme-all", "describe_policy", {})
    assert acme.structured_content and globex.structured_content and public.structured_content
    assert acme.structured_content["version"] == "2"
    assert acme.structured_content["rules"]["priority"]["pinned_doc_ids"] == [
        "acme-runbook-rotate-keys"
    ]
    assert globex.structured_content["rules"]["priority"]["pinned_doc_ids"] == [
        "globex-runbook-rotate-keys"
    ]
    assert public.structured_content["name"] == "default" and public.structured_content["default"]


def test_policy_resources_are_readable_and_narrowed(server: Running) -> None:
    async def go() -> tuple[Any, Any, Any]:
        async with connect(server, "acme-all") as c:
            templates = await c.list_resource_templates()
            index = await c.read_resource("ragctx://policies")
            pinned = await c.read_resource("ragctx://policies/pinned")
            return templates, index, pinned

    templates, index, pinned = anyio.run(go)
    assert [t.uri_template for t in templates.resource_templates] == ["ragctx://policies/{name}"]
    assert json.loads(index.contents[0].text)["policies"] == ["default", "pinned"]
    assert json.loads(pinned.contents[0].text)["rules"]["priority"]["pinned_doc_ids"] == [
        "acme-runbook-rotate-keys"
    ]


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        (
            {"query": "x", "budget_tokens": 100, "tenant": "globex"},
            "tenant",
            "the API key decides the tenant",
        ),
        ({"budget_tokens": 100}, "query", "there is no question"),
        ({"query": "x", "budget_tokens": -5}, "budget_tokens", "greater than 0"),
        ({"query": "x", "budget_tokens": 100, "policy": "nope"}, "policy", "unknown policy 'nope'"),
        ({"query": "x", "budget_tokens": 100, "collection": "nope"}, "collection", "nope"),
        ({"query": "x", "budget_tokens": 100, "groups": ["legal"]}, "groups", "not granted"),
        ({"query": "x" * 20_000, "budget_tokens": 100}, "query", "20000"),
        ({"query": "x", "budget_tokens": 10**9}, "budget_tokens", "maximum"),
        ({"query": "x", "budget_tokens": 100, "filters": "sources=*"}, "filters", "filters"),
        ({"query": ["x"], "budget_tokens": 100}, "query", "valid string"),
        ({"query": "x", "budget_tokens": 100, "top_k": 10**6}, "top_k", "1000"),
    ],
)
def test_bad_arguments_are_tool_errors_with_the_http_message(
    server: Running, arguments: dict[str, Any], field: str | None, message: str | None
) -> None:
    result = call(server, "acme-support", "get_context", arguments)
    with server.client() as c:
        http = c.post("/v1/context", json=arguments, headers=auth("acme-support"))
    assert result.is_error
    assert http.status_code >= 400
    expected = http.json()["error"]
    assert result.structured_content is not None
    assert result.structured_content["error"]["message"] == expected["message"]
    assert result.structured_content["error"]["code"] == expected["code"]
    assert result.content[0].text == expected["message"]
    if field is not None:
        assert expected["field"] == field
        assert message is not None and message in expected["message"]


def test_tool_errors_for_the_other_tools(server: Running) -> None:
    bad_policy = call(server, "acme-all", "describe_policy", {"name": "nope"})
    assert bad_policy.is_error and "unknown policy 'nope'" in bad_policy.content[0].text
    extra = call(server, "acme-all", "list_collections", {"tenant": "globex"})
    assert extra.is_error and "the API key decides the tenant" in extra.content[0].text
    wider = call(server, "acme-support", "search", {"query": QUESTION, "groups": ["legal"]})
    assert wider.is_error and "not granted" in wider.content[0].text
    unknown = call(server, "acme-all", "search", {"query": QUESTION, "collection": "nope"})
    assert unknown.is_error and unknown.structured_content
    assert unknown.structured_content["error"]["code"] == "unknown_collection"
    # the server's names are not the caller's to know: neither listed in the error
    assert "docs" not in unknown.structured_content["error"]["message"].replace("'nope'", "")
    assert "pinned" not in bad_policy.content[0].text


@pytest.mark.parametrize("key", [None, "not-a-key"])
def test_no_mcp_session_without_a_valid_key(server: Running, key: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    r = httpx.post(f"{server.url}/mcp", json=init, headers=headers, timeout=30)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"
    assert "ragctx keys add" in r.json()["error"]["message"]


def test_the_sdk_client_without_a_key_fails_to_connect(server: Running) -> None:
    async def go() -> None:
        async with connect(server, None) as c:
            await c.list_tools()

    with pytest.raises(Exception) as info:  # noqa: PT011 - the SDK's transport error type
        anyio.run(go)
    assert "401" in repr(info.value) or "Unauthorized" in repr(info.value) or info.value


def test_other_paths_keep_the_api_404(server: Running) -> None:
    r = httpx.get(f"{server.url}/mcp/extra", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


class _AuditLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def test_every_tool_call_writes_an_audit_line_without_text(server: Running) -> None:
    handler = _AuditLines()
    audit = logging.getLogger("ragctx.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    try:
        ok = call(server, "acme-eng", "get_context", {"query": QUESTION, "budget_tokens": 500})
        call(server, "acme-eng", "get_context", {"query": "x", "budget_tokens": 5, "policy": "no"})
    finally:
        audit.removeHandler(handler)
    answer = ok.structured_content
    assert answer is not None
    line = next(x for x in handler.lines if x["trace_id"] == answer["trace"]["trace_id"])
    assert line["route"] == "mcp:get_context" and line["status"] == 200
    assert line["principal"]["key_id"] == "acme-eng" and line["principal"]["tenant"] == "acme"
    assert line["doc_ids"] == list(dict.fromkeys(i["doc_id"] for i in answer["items"]))
    assert QUESTION not in json.dumps(line)
    failed = next(x for x in handler.lines if x.get("error") == "unknown_policy")
    assert failed["status"] == 404 and failed["route"] == "mcp:get_context"


def test_an_oversized_mcp_body_is_refused_like_an_api_body(server: Running) -> None:
    headers = {**auth("acme-all"), "Accept": "application/json, text/event-stream"}
    call_body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_context", "arguments": {"query": "x" * 100_000}},
    }
    r = httpx.post(f"{server.url}/mcp", json=call_body, headers=headers, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

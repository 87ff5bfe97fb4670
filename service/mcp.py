"""The MCP server: the context pipeline as Model Context Protocol tools and resources.

One server definition, two transports (official SDK, ``mcp`` v2):

- stdio, ``ragctx mcp``: the process opens the store and loads the models itself and acts as
  the one key named by ``RAGCTX_API_KEY`` (checked against the keys file at start);
- streamable HTTP at ``/mcp`` inside ``ragctx serve`` (:func:`mount_http`): every request
  carries ``Authorization: Bearer <key>``, checked like on ``/v1/context``.

The tenant and groups always come from the key, never from tool arguments. ``get_context``
takes exactly the body of ``POST /v1/context``: its input schema is
``ContextRequest.model_json_schema()`` and its arguments are validated by that model, so the
tool and the HTTP API cannot drift, and a rejected argument reads as the HTTP API's message.
Every failure comes back as an MCP tool error (``isError``) whose text is the HTTP API's
message and whose structured content is the HTTP API's error body.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import RagctxError
from retrieval.filters import access_filter
from retrieval.hybrid import fetch_documents
from service import audit
from service.api.errors import error_response, validation_problems
from service.api.schemas import ContextRequest, ContextResponse, HitOut
from service.audit import AuditRecord
from service.auth import ApiKey
from service.context import (
    Prepared,
    audit_answer,
    audit_request,
    prepare,
    retrieve,
    run_pipeline,
)
from service.runtime import Runtime

log = logging.getLogger(__name__)

SERVER_NAME = "ragctx"
MCP_PATH = "/mcp"
POLICY_URI = "ragctx://policies/{name}"
INSTRUCTIONS = (
    "ragctx decides what an LLM sees. Call get_context with the user's question and a token "
    "budget: it answers with packed context to put in the prompt, [n] citation markers, the "
    "citation list and a trace id. Quote the citations when you use the context. search ranks "
    "candidates without packing; list_collections and describe_policy say what you may use."
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
RuntimeOf = Callable[[], Runtime]
GrantOf = Callable[[Context], Awaitable[ApiKey]]

# search takes the retrieval part of the context request, defined once there.
SEARCH_FIELDS = ("query", "collection", "filters", "groups", "top_k")
_SEARCH_FIELD_DEFINITIONS: dict[str, Any] = {
    name: (field.annotation, field)
    for name, field in ContextRequest.model_fields.items()
    if name in SEARCH_FIELDS
}
# A search needs its question (get_context may take it from the conversation instead).
_SEARCH_FIELD_DEFINITIONS["query"] = (
    str,
    Field(min_length=1, description="The question to rank candidates for."),
)
SearchRequest: type[BaseModel] = create_model(
    "SearchRequest",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Rank candidates for a question: retrieval only, no packing.",
    **_SEARCH_FIELD_DEFINITIONS,
)


class ToolFailure(RagctxError):
    """A tool call that failed: carries the HTTP API's error body for the MCP tool error."""

    def __init__(self, body: dict[str, Any], *, status: int) -> None:
        super().__init__(body["error"]["message"])
        self.body = body
        self.status = status  # the HTTP API's status for the same error (audit lines)


class SearchHit(BaseModel):
    """One retrieved candidate and its rank and score in every stage that saw it."""

    rank: int
    chunk_id: str
    doc_id: str
    source: str
    path: str
    title: str
    section: list[str]
    text: str
    tokens: int
    score: float
    score_kind: str
    updated_at: datetime | None
    stages: dict[str, HitOut] = Field(description="dense, bm25, hybrid, rerank")


class SearchResponse(BaseModel):
    """Ranked candidates (no packing) and the trace id of the search."""

    collection: str
    candidates: list[SearchHit]
    trace_id: str


class CollectionOut(BaseModel):
    """A collection holding chunks the caller may see."""

    name: str
    chunks: int = Field(description="Chunks of the collection visible to the key.")
    default: bool


class CollectionsResponse(BaseModel):
    """The collections the caller may search."""

    collections: list[CollectionOut]


class PolicyDescription(BaseModel):
    """A policy as the caller may see it: document ids narrowed to the caller's documents."""

    name: str
    version: str
    sha256: str
    default: bool
    rules: dict[str, Any]


class _RawArguments(ArgModelBase):
    """Hands a tool its arguments untouched.

    The tool validates them with the HTTP API's own request model, so that a rejected
    argument reads exactly as the HTTP API's message (the SDK would word it otherwise).
    """

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        """The arguments as sent, under one keyword."""
        return {"arguments": dict(self.model_extra or {})}


def _validated(model: type[M], arguments: Mapping[str, Any]) -> M:
    try:
        # validated as FastAPI validates a decoded body: the same coercions and messages
        return model.model_validate(dict(arguments), from_attributes=True)
    except ValidationError as err:
        # located as FastAPI locates a body's errors, so fields read as in the HTTP API
        problems = validation_problems([{**e, "loc": ("body", *e["loc"])} for e in err.errors()])
        first = problems[0]
        raise ToolFailure(
            {"error": {**first, "code": "invalid_input"}, "errors": problems}, status=422
        ) from err


def _failure(err: RagctxError) -> ToolFailure:
    return ToolFailure(
        {"error": {"code": err.error_code, "message": err.public_message(), "field": err.field}},
        status=err.http_status,
    )


def _result(value: BaseModel | bytes) -> CallToolResult:
    raw = value if isinstance(value, bytes) else value.model_dump_json().encode()
    return CallToolResult(
        content=[TextContent(type="text", text=raw.decode())], structured_content=json.loads(raw)
    )


def _trace_id_of(structured: dict[str, Any] | None) -> str:
    # get_context answers carry it in "trace", search answers at the top
    if not structured:
        return ""
    trace = structured.get("trace")
    found = trace.get("trace_id") if isinstance(trace, dict) else structured.get("trace_id")
    return found if isinstance(found, str) else ""


def _error_result(failure: ToolFailure) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=str(failure))],
        structured_content=failure.body,
        is_error=True,
    )


def _tool(
    fn: Callable[[Context, dict[str, Any], AuditRecord], Awaitable[BaseModel | bytes]],
    *,
    name: str,
    description: str,
    arguments: type[BaseModel],
    output: type[BaseModel],
) -> Tool:
    """A tool whose input schema is ``arguments``' JSON schema and whose errors are tool errors.

    Every call writes an audit line, as every ``/v1/`` request does (route ``mcp:<tool>``).
    """

    async def run(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        record = AuditRecord(route=f"mcp:{name}", method="MCP")
        started = time.perf_counter()
        status, trace_id = 200, ""
        try:
            result = _result(await fn(ctx, arguments, record))
            trace_id = _trace_id_of(result.structured_content)
            return result
        except RagctxError as err:
            failure = err if isinstance(err, ToolFailure) else _failure(err)
            status, record.error = failure.status, failure.body["error"]["code"]
            return _error_result(failure)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            audit.write(record.line(status=status, latency_ms=elapsed_ms, trace_id=trace_id))

    return Tool(
        fn=run,
        name=name,
        title=None,
        description=description,
        parameters=arguments.model_json_schema(),
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_model=output),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )


def build_server(runtime_of: RuntimeOf, grant_of: GrantOf) -> MCPServer:
    """The MCP server over the runtime ``runtime_of`` returns, acting as ``grant_of``'s key.

    ``runtime_of`` is called per request (over HTTP the runtime is built in the app's lifespan,
    after the server). ``grant_of`` raises ``AuthError`` for a missing or unknown key.
    """

    async def caller(ctx: Context, record: AuditRecord) -> ApiKey:
        grant = await grant_of(ctx)
        record.key_id, record.tenant = grant.id, grant.tenant
        record.groups, record.admin = list(grant.groups), grant.admin
        return grant

    async def get_context(ctx: Context, arguments: dict[str, Any], record: AuditRecord) -> bytes:
        runtime, grant = runtime_of(), await caller(ctx, record)
        body = _validated(ContextRequest, arguments)
        prepared = prepare(body, grant, runtime)
        audit_request(record, prepared, include_text=runtime.settings.audit_include_text)
        runtime.require_models()
        answer = await _in_worker(runtime, partial(run_pipeline, prepared, runtime, route="mcp"))
        audit_answer(record, answer)
        return answer.response.model_dump_json().encode()

    async def search_tool(
        ctx: Context, arguments: dict[str, Any], record: AuditRecord
    ) -> SearchResponse:
        runtime, grant = runtime_of(), await caller(ctx, record)
        args = _validated(SearchRequest, arguments).model_dump(exclude_unset=True)
        # prepare() checks the query, groups, filters and collection as /v1/context does; the
        # budget is not used by a search (nothing is packed).
        body = ContextRequest.model_validate({**args, "budget_tokens": 1})
        prepared = prepare(body, grant, runtime)
        runtime.require_models()
        record.collection = prepared.collection
        return await _in_worker(runtime, partial(_search, prepared, runtime))

    async def list_collections(
        ctx: Context, arguments: dict[str, Any], record: AuditRecord
    ) -> CollectionsResponse:
        runtime, grant = runtime_of(), await caller(ctx, record)
        _validated(_NoArguments, arguments)
        return await to_thread.run_sync(partial(_collections, runtime, grant))

    async def describe_policy(
        ctx: Context, arguments: dict[str, Any], record: AuditRecord
    ) -> PolicyDescription:
        runtime, grant = runtime_of(), await caller(ctx, record)
        args = _validated(DescribePolicyRequest, arguments)
        return await to_thread.run_sync(partial(_describe, runtime, grant, args))

    tools = [
        _tool(
            get_context,
            name="get_context",
            description=(
                "Context for a question, packed into a token budget under a policy: the text to "
                "put in the prompt with [n] citation markers, the citation list, every dropped "
                "candidate and why, and the trace id. The body of POST /v1/context."
            ),
            arguments=ContextRequest,
            output=ContextResponse,
        ),
        _tool(
            search_tool,
            name="search",
            description=(
                "Ranked candidates for a question with their rank and score in every stage "
                "(dense, bm25, hybrid, rerank); nothing is packed or dropped."
            ),
            arguments=SearchRequest,
            output=SearchResponse,
        ),
        _tool(
            list_collections,
            name="list_collections",
            description="Collections holding documents this key may see, with chunk counts.",
            arguments=_NoArguments,
            output=CollectionsResponse,
        ),
        _tool(
            describe_policy,
            name="describe_policy",
            description=(
                "A context policy's name, version, sha256 and rules; document ids in it are "
                "narrowed to documents this key may see."
            ),
            arguments=DescribePolicyRequest,
            output=PolicyDescription,
        ),
    ]
    server: MCPServer = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=_version(), tools=tools
    )

    @server.resource(
        POLICY_URI,
        name="policy",
        description="A context policy as describe_policy shows it (read-only).",
        mime_type="application/json",
    )
    async def policy_resource(name: str, ctx: Context) -> str:
        runtime, grant = runtime_of(), await grant_of(ctx)
        args = DescribePolicyRequest(name=name)
        described = await to_thread.run_sync(partial(_describe, runtime, grant, args))
        return described.model_dump_json()

    @server.resource(
        "ragctx://policies",
        name="policies",
        description="Names of the server's context policies and the default one.",
        mime_type="application/json",
    )
    def policy_index() -> str:
        runtime = runtime_of()
        names = runtime.policies.names()
        uris = [POLICY_URI.format(name=n) for n in names]
        return json.dumps(
            {"policies": names, "default": runtime.settings.default_policy, "uris": uris}
        )

    return server


class _NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DescribePolicyRequest(BaseModel):
    """Which policy to describe, and the collection its document ids are checked in."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Policy; the default if omitted."
    )
    collection: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Collection whose documents the policy's ids are checked against.",
    )


async def _in_worker(runtime: Runtime, work: Callable[[], T]) -> T:
    """Run CPU-bound work under the server's request gate, as ``/v1/context`` does."""
    with runtime.gate.slot():
        runtime.telemetry.metrics.in_flight.inc()
        try:
            return await to_thread.run_sync(work, limiter=runtime.gate.limiter)
        finally:
            runtime.telemetry.metrics.in_flight.dec()


def _search(req: Prepared, runtime: Runtime) -> SearchResponse:
    retrieved, trace_id = retrieve(req, runtime, span="mcp.search")
    hits = [
        SearchHit(
            rank=rank,
            chunk_id=c.chunk_id,
            doc_id=c.doc_id,
            source=c.source,
            path=c.path,
            title=c.title,
            section=list(c.section),
            text=c.text,
            tokens=c.tokens,
            score=c.score,
            score_kind=c.score_kind.value,
            updated_at=c.updated_at,
            stages={s.value: HitOut(rank=h.rank, score=h.score) for s, h in c.stages.items()},
        )
        for rank, c in enumerate(retrieved.candidates, start=1)
    ]
    return SearchResponse(collection=req.collection, candidates=hits, trace_id=trace_id)


def _collections(runtime: Runtime, grant: ApiKey) -> CollectionsResponse:
    visible = access_filter(grant.principal())
    out = []
    for name in runtime.store.collections():
        chunks = runtime.store.count(name, visible)
        if chunks:
            out.append(
                CollectionOut(name=name, chunks=chunks, default=name == runtime.settings.collection)
            )
    return CollectionsResponse(collections=out)


def _describe(runtime: Runtime, grant: ApiKey, args: DescribePolicyRequest) -> PolicyDescription:
    from index.schema import validate_collection_name

    settings = runtime.settings
    loaded = runtime.policies.get(args.name or settings.default_policy)
    collection = validate_collection_name(args.collection or settings.collection)
    policy = loaded.policy
    rules = policy.model_dump(mode="json", exclude={"name", "version"})
    # A policy may name other tenants' documents (pins, exclusions): show only the caller's.
    named = [*policy.priority.pinned_doc_ids, *policy.exclude.doc_ids]
    fetched = fetch_documents(named, grant.principal(), collection=collection, store=runtime.store)
    mine = {c.doc_id for c in fetched}
    rules["priority"]["pinned_doc_ids"] = [d for d in policy.priority.pinned_doc_ids if d in mine]
    rules["exclude"]["doc_ids"] = [d for d in policy.exclude.doc_ids if d in mine]
    ident = policy.identity
    return PolicyDescription(
        name=ident.name,
        version=ident.version,
        sha256=ident.sha256 or loaded.sha256,
        default=ident.name == settings.default_policy,
        rules=rules,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragctx")
    except PackageNotFoundError:
        return "0"


# -------------------------------------------------------------------------------------------
# stdio and HTTP


def fixed_grant(grant: ApiKey) -> GrantOf:
    """The grant of a stdio server: the key it was started with, for every call."""

    async def grant_of(_ctx: Context) -> ApiKey:
        return grant

    return grant_of


async def _header_grant(ctx: Context) -> ApiKey:
    """The grant of an HTTP call: its bearer key, checked as ``/v1/context`` checks it."""
    from service.api.deps import get_key

    request = ctx.request_context.request
    if not isinstance(request, Request):
        from service.errors import AuthError

        raise AuthError("this MCP call came without an HTTP request; send it to /mcp over HTTP")
    return await get_key(request)


class _KeyRequired:
    """ASGI guard in front of the MCP endpoint: no valid bearer key, no MCP session.

    Answers 401 with the HTTP API's error body, so listing tools needs a key too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from service.api.deps import get_key

        if scope["type"] == "http":
            try:
                await get_key(Request(scope))
            except RagctxError as err:
                response = error_response(
                    err.http_status,
                    err.error_code,
                    err.public_message(),
                    field=err.field,
                    headers=dict(err.http_headers),
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class McpHttp:
    """The streamable HTTP endpoint of one app: its ASGI handler and session manager."""

    def __init__(self, runtime_of: RuntimeOf) -> None:
        self.server = build_server(runtime_of, _header_grant)
        starlette_app = self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            # Stateless JSON: no session lives in one process, so any replica behind a load
            # balancer answers any call, and each call is one POST with one JSON answer.
            stateless_http=True,
            json_response=True,
            # DNS-rebinding protection guards servers that trust whoever reaches them; every
            # call here needs a bearer key, which a rebinding page does not have.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        # The SDK's app is one Route to its transport; the transport is taken out of it and
        # added as a route of the API app, so that every other path keeps the API's 404.
        (route,) = (r for r in starlette_app.routes if isinstance(r, Route) and r.path == MCP_PATH)
        self.handler: ASGIApp = _KeyRequired(route.endpoint)

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group; entered once, in the app's lifespan."""
        return self.server.session_manager.run()


def mount_http(app: Any) -> McpHttp:
    """Serve MCP at ``/mcp`` on the FastAPI ``app``; enter ``.running()`` in its lifespan."""
    endpoint = McpHttp(lambda: app.state.runtime)
    app.add_route(MCP_PATH, endpoint.handler, methods=["GET", "POST", "DELETE"])
    return endpoint


def serve_stdio(runtime: Runtime, grant: ApiKey) -> None:
    """Run the MCP server on stdin/stdout until the client closes it."""
    server = build_server(lambda: runtime, fixed_grant(grant))
    log.info("MCP server on stdio as key %r", grant.id)
    server.run("stdio")

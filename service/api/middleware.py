"""Pure ASGI middleware: a body size limit, and per-request observation of the API routes.

``ObserveMiddleware`` opens the request's root span (its trace id is the answer's
``trace_id`` and the ``X-Trace-Id`` header), times the request for Prometheus, and writes the
audit line when the answer has gone out, whatever the status.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import audit
from service.audit import SCOPE_KEY, AuditRecord
from service.telemetry import Telemetry

SPAN_KEY = "ragctx.span"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Refuse bodies above ``max_bytes`` with 413, before reading them where possible."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length``, then count streamed bytes."""
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        message = (
            f"the request body is larger than {self.max_bytes} bytes; send a smaller body "
            "(the limit is RAGCTX_MAX_BODY_BYTES)"
        )
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _send_json(
                        send,
                        413,
                        {"error": {"code": "body_too_large", "message": message, "field": "body"}},
                    )
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, limited, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class ObserveMiddleware:
    """Root span, request metrics and the audit line for ``/v1/`` routes."""

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Observe one request."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        record = AuditRecord(route=scope["path"], method=method)
        scope[SCOPE_KEY] = record
        status = 500
        tracer = self.telemetry.tracer
        with tracer.start_as_current_span(
            f"{method} {scope['path']}",
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            scope[SPAN_KEY] = span

            async def observed_send(msg: Message) -> None:
                nonlocal status
                if msg["type"] == "http.response.start":
                    status = int(msg["status"])
                    msg["headers"] = [*msg.get("headers", []), (b"x-trace-id", trace_id.encode())]
                await send(msg)

            try:
                await self.app(scope, receive, observed_send)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                record.route = template
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                elapsed = time.perf_counter() - started
                m = self.telemetry.metrics
                m.request_seconds.labels(route=template).observe(elapsed)
                m.requests.labels(route=template, status=str(status)).inc()
                audit.write(
                    record.line(status=status, latency_ms=elapsed * 1000, trace_id=trace_id)
                )

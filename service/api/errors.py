"""One place that turns exceptions into HTTP answers: domain errors to 4xx/503, never 500.

Every error body is ``{"error": {"code", "message", "field"}}``; validation errors also list
every problem in ``errors``. 503s carry ``Retry-After``; 401s carry ``WWW-Authenticate``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import RagctxError, field_path
from service.api.deps import audit_record

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The uniform error body."""
    body: dict[str, Any] = {"error": {"code": code, "message": message, "field": field}}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _headers(err: RagctxError) -> dict[str, str]:
    headers = dict(err.http_headers)
    if err.http_status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return headers


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return field_path(parts) or "body"


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's validation errors as the API's ``{code, message, field}`` problems."""
    problems = []
    for e in errors:
        field = _field_of(tuple(e.get("loc", ())))
        kind = str(e.get("type", ""))
        if kind == "json_invalid":
            field = "body"  # the loc holds a character position, not a field
            reason = (e.get("ctx") or {}).get("error", "parse error")
            message = f"the body is not valid JSON ({reason}); send a JSON object"
        elif kind == "missing":
            message = f"{field} is required"
        elif kind == "extra_forbidden":
            hint = " (the API key decides the tenant)" if field == "tenant" else ""
            message = f"{field} is not a known field; remove it{hint}"
        else:
            message = f"{field}: {e.get('msg', 'invalid')}"
        problems.append({"code": kind or "invalid", "message": message, "field": field})
    return problems


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RagctxError)
    async def _domain(request: Request, err: RagctxError) -> JSONResponse:
        status = err.http_status
        if status >= 500 and status != 503:
            log.error("unexpected %s on %s: %s", type(err).__name__, request.url.path, err)
        _note(request, err.error_code)
        return error_response(
            status, err.error_code, err.public_message(), field=err.field, headers=_headers(err)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = validation_problems(err.errors())
        first = problems[0] if problems else {"message": "invalid request", "field": None}
        status = 400 if any(p["code"] == "json_invalid" for p in problems) else 422
        _note(request, "invalid_input")
        return error_response(
            status, "invalid_input", str(first["message"]), field=first["field"], errors=problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            err.status_code, "http_error"
        )
        field = "body" if err.status_code == 413 else None
        _note(request, code)
        return error_response(
            err.status_code, code, str(err.detail), field=field, headers=err.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        _note(request, "internal")
        return error_response(
            500, "internal", f"internal error ({type(err).__name__}); see the server log"
        )


def _note(request: Request, code: str) -> None:
    record = audit_record(request)
    if record is not None:
        record.error = code

"""``POST /v1/context``: the context for a question, within a token budget, under a policy."""

from __future__ import annotations

import time
from functools import partial

from anyio import to_thread
from fastapi import APIRouter, Request, Response

from service.api.deps import BEARER, KeyDep, audit_record
from service.api.schemas import ContextRequest, ContextResponse, ErrorOut
from service.context import Answer, Prepared, audit_answer, audit_request, prepare, run_pipeline
from service.errors import OverloadedError
from service.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["context"])
ROUTE = "/v1/context"

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The body is not JSON."},
    401: {"model": ErrorOut, "description": "No key, or an unknown key."},
    403: {"model": ErrorOut, "description": "Groups the key does not grant."},
    404: {"model": ErrorOut, "description": "Unknown policy or collection."},
    413: {"model": ErrorOut, "description": "Body too large."},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `field` names it."},
    503: {"model": ErrorOut, "description": "Overloaded or not ready; see Retry-After."},
}


def _answer(prepared: Prepared, runtime: Runtime, submitted: float) -> tuple[Answer, bytes]:
    """The pipeline and the answer's JSON, both in the worker thread (FastAPI would serialize a
    returned model on the event loop); ``response_model`` still documents it."""
    answer = run_pipeline(prepared, runtime, route=ROUTE, submitted=submitted)
    return answer, answer.response.model_dump_json().encode()


@router.post(
    "/context",
    response_model=ContextResponse,
    responses=_ERRORS,
    openapi_extra=BEARER,
)
async def context(body: ContextRequest, grant: KeyDep, request: Request) -> Response:
    """Retrieve what the key may see, pack it into the budget under the policy, cite it.

    The tenant and access groups come from the API key; ``groups`` may only narrow them.
    """
    runtime: Runtime = request.app.state.runtime
    record = audit_record(request)
    prepared = prepare(body, grant, runtime)
    if record is not None:
        audit_request(record, prepared, include_text=runtime.settings.audit_include_text)
    runtime.require_models()
    metrics = runtime.telemetry.metrics
    try:
        with runtime.gate.slot():
            metrics.in_flight.inc()
            try:
                answer, body_json = await to_thread.run_sync(
                    partial(_answer, prepared, runtime, time.perf_counter()),
                    limiter=runtime.gate.limiter,
                )
            finally:
                metrics.in_flight.dec()
    except OverloadedError:
        metrics.rejected.labels(reason="overload").inc()
        raise
    if record is not None:
        audit_answer(record, answer)
    return Response(body_json, media_type="application/json")

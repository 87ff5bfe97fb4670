"""``POST /v1/context``: the context for a question, within a token budget, under a policy."""

from __future__ import annotations

import time
from functools import partial

from anyio import to_thread
from fastapi import APIRouter, Request, Response

from service.api.deps import BEARER, KeyDep, audit_record
from service.api.schemas import ContextRequest, ContextResponse, ErrorOut
from service.audit import AuditRecord
from service.context import Prepared, answer_json, prepare
from service.errors import OverloadedError
from service.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["context"])

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The body is not JSON."},
    401: {"model": ErrorOut, "description": "No key, or an unknown key."},
    403: {"model": ErrorOut, "description": "Groups the key does not grant."},
    404: {"model": ErrorOut, "description": "Unknown policy or collection."},
    413: {"model": ErrorOut, "description": "Body too large."},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `field` names it."},
    503: {"model": ErrorOut, "description": "Overloaded or not ready; see Retry-After."},
}


def _answer(
    prepared: Prepared, runtime: Runtime, record: AuditRecord | None, submitted: float
) -> Response:
    """The pipeline and the answer's JSON, both in the worker thread.

    FastAPI would validate the returned model against ``response_model`` and serialize it
    on the event loop. ``answer_json`` writes the same JSON from plain data, off the loop;
    ``response_model`` still documents it.
    """
    body = answer_json(prepared, runtime, record, submitted=submitted)
    return Response(body, media_type="application/json")


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
    runtime.require_models()
    metrics = runtime.telemetry.metrics
    try:
        with runtime.gate.slot():
            metrics.in_flight.inc()
            try:
                return await to_thread.run_sync(
                    partial(_answer, prepared, runtime, record, time.perf_counter()),
                    limiter=runtime.gate.limiter,
                )
            finally:
                metrics.in_flight.dec()
    except OverloadedError:
        metrics.rejected.labels(reason="overload").inc()
        raise

"""Reading traces back and judging them: ``GET /v1/traces[/{id}]``, ``POST /v1/feedback``.

Every read and every judgment is scoped to the caller key's tenant: another tenant's trace
answers 404, exactly like an id that was never recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from sqlalchemy.exc import SQLAlchemyError

from service.api.deps import BEARER, RuntimeDep, TraceKeyDep
from service.api.schemas import (
    MAX_TRACES_LISTED,
    ErrorOut,
    FeedbackAccepted,
    FeedbackRequest,
    TraceListOut,
    TraceRecordOut,
)
from service.errors import TracesUnavailableError, UnknownTraceError
from service.runtime import Runtime
from service.traces import TraceStore
from service.traces.diagnose import failure_categories

router = APIRouter(prefix="/v1", tags=["traces"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No key, or an unknown key."},
    404: {"model": ErrorOut, "description": "No such trace for the key's tenant."},
    413: {"model": ErrorOut, "description": "Body too large."},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `field` names it."},
    503: {"model": ErrorOut, "description": "The trace store is off or cannot be reached."},
}

T = TypeVar("T")


def _with_store(runtime: Runtime, work: Callable[[TraceStore], T]) -> T:
    writer = runtime.traces
    if writer is None:
        raise TracesUnavailableError(
            "the trace store is off on this server (RAGCTX_TRACE_STORE=false); "
            "start it with traces on to read or judge answers"
        )
    try:
        return work(writer.store)
    except SQLAlchemyError as exc:
        raise TracesUnavailableError(
            f"the trace store cannot be reached ({type(exc).__name__}); retry later, "
            "or check RAGCTX_TRACE_DB"
        ) from exc


def _out(trace: dict[str, Any]) -> TraceRecordOut:
    feedback = [{**f, "by": f.get("who")} for f in trace["feedback"]]
    return TraceRecordOut.model_validate({**trace, "feedback": feedback})


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _unknown(trace_id: str) -> UnknownTraceError:
    return UnknownTraceError(
        f"no trace {trace_id!r} for this key's tenant; list yours with GET /v1/traces "
        "(traces older than RAGCTX_TRACE_RETENTION_DAYS are purged)"
    )


@router.get("/traces", response_model=TraceListOut, responses=_ERRORS, openapi_extra=BEARER)
def list_traces(
    grant: TraceKeyDep,
    runtime: RuntimeDep,
    since: Annotated[datetime | None, Query(description="ISO 8601; naive means UTC.")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive.")] = None,
    collection: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    verdict: Annotated[
        Literal["accepted", "edited", "rejected"] | None,
        Query(description="Only traces with at least one judgment of this verdict."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TRACES_LISTED)] = 50,
) -> TraceListOut:
    """The key tenant's recorded answers, newest first, with their feedback."""
    traces = _with_store(
        runtime,
        lambda store: store.list(
            grant.tenant,
            since=_utc(since),
            until=_utc(until),
            collection=collection,
            verdict=verdict,
            limit=limit,
        ),
    )
    return TraceListOut(traces=[_out(t) for t in traces])


@router.get(
    "/traces/{trace_id}", response_model=TraceRecordOut, responses=_ERRORS, openapi_extra=BEARER
)
def get_trace(trace_id: str, grant: TraceKeyDep, runtime: RuntimeDep) -> TraceRecordOut:
    """One recorded answer: request, candidates per stage, pack, timings, feedback, failures."""
    trace = _with_store(runtime, lambda store: store.get(grant.tenant, trace_id))
    if trace is None:
        raise _unknown(trace_id)
    out = _out(trace)
    out.failures = failure_categories(trace)
    return out


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackAccepted,
    responses=_ERRORS,
    openapi_extra=BEARER,
)
def feedback(body: FeedbackRequest, grant: TraceKeyDep, runtime: RuntimeDep) -> FeedbackAccepted:
    """Judge one of the tenant's answers; every judgment is kept, none replaces another."""
    judgments = [j.model_dump(exclude_none=True) for j in body.judgments]
    fid = _with_store(
        runtime,
        lambda store: store.add_feedback(
            grant.tenant, body.trace_id, body.verdict, judgments, note=body.note, who=body.by
        ),
    )
    if fid is None:
        raise _unknown(body.trace_id)
    return FeedbackAccepted(id=fid, trace_id=body.trace_id)

"""The review console's pages under ``/review``: log in with a reviewer key, the queue, one trace.

Server-rendered (Jinja2, autoescape on: every trace field is untrusted text, document text above
all). The forms work without script; ``/review/static/review.js`` only adds keyboard shortcuts.
Every page carries a strict Content-Security-Policy (no inline script or style, nothing from
another origin).

The key is kept in a cookie (``HttpOnly`` so script cannot read it, ``SameSite=Strict`` so no
other site's page can send it, ``Secure`` when the page came over https). A POST whose ``Origin``
is another site is refused as well. Only reviewer keys (``review = true``) log in; they see their
own tenant's traces only, as the trace routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from anyio import to_thread
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from core.errors import RagctxError
from index.payload import DOC_ID, TENANT, ChunkPayload
from index.schema import Filter, MatchValue
from service.api.schemas import MAX_TRACES_LISTED, FeedbackRequest
from service.auth import ApiKey
from service.errors import OverloadedError, UnknownPolicyError
from service.review import quality
from service.review.diff import MAX_DIFF_TRACES, TraceChange, diff_summary, trace_change
from service.review.queue import (
    CLOSE_MARGIN,
    NEARLY_EMPTY_ITEMS,
    REASONS,
    SAMPLE_EVERY,
    TOP_RANKS,
    QueueEntry,
    build_queue,
    candidate_rows,
)
from service.runtime import Runtime
from service.traces import TraceStore
from service.traces.diagnose import CATEGORIES, failure_categories
from service.traces.replay import replay
from service.traces.store import VERDICTS

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
COOKIE = "ragctx_review"
STAGES = ("dense", "bm25", "hybrid", "rerank")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it Chromium sends `Origin: null` on the page's own POSTs
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
DOC_IDS_LISTED = 5000  # the tenant's doc ids offered to "missing documents" (a datalist)
MISSING_FIELDS = 3
QUEUE_SCAN = MAX_TRACES_LISTED  # the newest traces the queue looks at per page load

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(prefix="/review", include_in_schema=False)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered template with the security headers."""
    html = _env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error(status: int, message: str, reviewer: ApiKey | None = None) -> HTMLResponse:
    return page("error.html", status, message=message, reviewer=reviewer)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _grant_of(request: Request, key: str | None) -> ApiKey | None:
    runtime = _runtime(request)
    if not key or runtime.keys is None:
        return None
    grant = runtime.keys.verify(key)
    if grant is None or grant.expired():
        return None
    return grant


def _reviewer(request: Request) -> ApiKey | None:
    grant = _grant_of(request, request.cookies.get(COOKIE))
    return grant if grant is not None and grant.review else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/review/login", status_code=303, headers=SECURITY_HEADERS)


def _cross_site(request: Request) -> bool:
    """Whether a POST names another origin than this server's (SameSite=Strict already keeps
    the cookie off other sites' requests; this refuses them outright)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _store(runtime: Runtime) -> TraceStore | None:
    return None if runtime.traces is None else runtime.traces.store


# login --------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if _reviewer(request) is None:
        return _to_login()
    return RedirectResponse("/review/queue", status_code=303, headers=SECURITY_HEADERS)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return page("login.html", message=None, reviewer=_reviewer(request))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, key: Annotated[str, Form(max_length=512)] = "") -> Response:
    if _cross_site(request):
        return _error(403, "this form was sent from another site; open /review/login here")
    grant = _grant_of(request, key.strip())
    if grant is None:
        return page(
            "login.html",
            401,
            message="unknown or expired key; paste a reviewer key (`ragctx keys add --review`)",
            reviewer=None,
        )
    if not grant.review:
        return page(
            "login.html",
            403,
            message=f"key {grant.id!r} is not a reviewer key; the console takes keys made with "
            "`ragctx keys add --tenant T --review`",
            reviewer=None,
        )
    response = RedirectResponse("/review/queue", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        key.strip(),
        max_age=8 * 3600,
        path="/review",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request) -> Response:
    if _cross_site(request):
        return _error(403, "this form was sent from another site")
    response = _to_login()
    response.delete_cookie(COOKIE, path="/review", httponly=True, samesite="strict")
    return response


# the queue ----------------------------------------------------------------------------------


def _day(text: str, field: str) -> datetime | None:
    """A ``YYYY-MM-DD`` filter as the start of that day, UTC; blank means none."""
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a date; use YYYY-MM-DD") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class QueueFilter:
    """The queue's filters, as the form sent them, checked."""

    values: dict[str, str]
    problems: list[str]
    start: datetime | None = None
    end: datetime | None = None


def _queue_filter(
    policy: str, collection: str, since: str, until: str, verdict: str, failure: str, show: str
) -> QueueFilter:
    values = {
        "policy": policy.strip(),
        "collection": collection.strip(),
        "since": since.strip(),
        "until": until.strip(),
        "verdict": verdict,
        "failure": failure,
        "show": show,
    }
    problems: list[str] = []
    if verdict not in ("", "unjudged", *VERDICTS):
        problems.append(f"verdict {verdict!r}: use unjudged, {', '.join(VERDICTS)} or nothing")
    if failure not in ("", *CATEGORIES):
        problems.append(f"failure {failure!r}: use one of {', '.join(CATEGORIES)} or nothing")
    if show not in ("queue", "all"):
        problems.append(f"show {show!r}: use queue or all")
    for name, value in (("policy", policy), ("collection", collection)):
        if len(value) > 200:
            problems.append(f"{name} is longer than 200 characters")
    try:
        start = _day(since, "since")
        end = _day(until, "until")
    except ValueError as err:
        problems.append(str(err))
        start = end = None
    return QueueFilter(values=values, problems=problems, start=start, end=end)


def _queue_entries(store: TraceStore, tenant: str, f: QueueFilter) -> tuple[int, list[QueueEntry]]:
    """How many traces the queue looked at, and its entries (raises SQLAlchemyError)."""
    verdict = f.values["verdict"]
    traces = store.list(
        tenant,
        since=f.start,
        until=None if f.end is None else f.end + timedelta(days=1),
        collection=f.values["collection"] or None,
        verdict=verdict if verdict in VERDICTS else None,
        limit=QUEUE_SCAN,
    )
    entries = build_queue(
        traces,
        policy=f.values["policy"] or None,
        failure=f.values["failure"] or None,
        unjudged=verdict == "unjudged",
        everything=f.values["show"] == "all",
    )
    return len(traces), entries


@router.get("/queue", response_class=HTMLResponse)
def queue(
    request: Request,
    policy: str = "",
    collection: str = "",
    since: str = "",
    until: str = "",
    verdict: str = "",
    failure: str = "",
    show: str = "queue",
) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return _to_login()
    f = _queue_filter(policy, collection, since, until, verdict, failure, show)
    runtime = _runtime(request)
    context: dict[str, Any] = {
        "reviewer": reviewer,
        "filters": f.values,
        "verdicts": VERDICTS,
        "categories": CATEGORIES,
        "reasons": REASONS,
        "measures": {
            "nearly_empty": NEARLY_EMPTY_ITEMS,
            "top_ranks": TOP_RANKS,
            "close_margin": CLOSE_MARGIN,
            "sample_every": SAMPLE_EVERY,
        },
        "entries": [],
        "scanned": 0,
        "problems": f.problems,
        "policies": runtime.policies.names(),
        "max_diff": MAX_DIFF_TRACES,
    }
    if f.problems:
        return page("queue.html", 422, **context)
    store = _store(runtime)
    if store is None:
        return _error(503, "the trace store is off on this server (RAGCTX_TRACE_STORE=false)")
    try:
        context["scanned"], context["entries"] = _queue_entries(store, reviewer.tenant, f)
    except SQLAlchemyError as exc:
        return _error(503, f"the trace store cannot be reached ({type(exc).__name__})", reviewer)
    return page("queue.html", **context)


# the policy diff ----------------------------------------------------------------------------


@router.get("/diff", response_class=HTMLResponse)
async def policy_diff(
    request: Request,
    candidate: str = "",
    trace: Annotated[list[str] | None, Query()] = None,
    policy: str = "",
    collection: str = "",
    since: str = "",
    until: str = "",
    verdict: str = "",
    failure: str = "",
    show: str = "queue",
) -> Response:
    """Replay the checked traces (or the queue's, under its filters: the first
    :data:`MAX_DIFF_TRACES`) under the ``candidate`` policy and show what changes."""
    reviewer = _reviewer(request)
    if reviewer is None:
        return _to_login()
    runtime = _runtime(request)
    f = _queue_filter(policy, collection, since, until, verdict, failure, show)
    chosen = [t.strip() for t in trace or [] if t.strip()]
    names = runtime.policies.names()
    context: dict[str, Any] = {
        "reviewer": reviewer,
        "filters": f.values,
        "candidate": candidate.strip(),
        "policies": names,
        "chosen": chosen,
        "max_diff": MAX_DIFF_TRACES,
        "problems": list(f.problems),
        "changes": [],
        "summary": None,
        "matched": 0,
        "texts": {},
    }
    problems: list[str] = context["problems"]
    if len(chosen) > MAX_DIFF_TRACES:
        problems.append(
            f"trace: {len(chosen)} traces checked; a diff replays at most {MAX_DIFF_TRACES}, "
            "uncheck some"
        )
    if any(len(t) > 200 for t in chosen):
        problems.append("trace: a trace id is longer than 200 characters")
    if len(candidate) > 200:
        problems.append("candidate: the policy name is longer than 200 characters")
    elif candidate.strip():
        try:
            runtime.policies.get(candidate.strip())
        except UnknownPolicyError:
            problems.append(
                f"candidate: no policy {candidate.strip()!r} is loaded on this server; "
                "pick one from the list"
            )
    if problems:
        return page("diff.html", 422, **context)
    if not candidate.strip():  # the form only: pick a policy
        return page("diff.html", **context)
    store = _store(runtime)
    if store is None:
        return _error(503, "the trace store is off on this server (RAGCTX_TRACE_STORE=false)")
    try:
        if chosen:
            traces = []
            for trace_id in dict.fromkeys(chosen):
                found = store.get(reviewer.tenant, trace_id)
                if found is None:
                    return _error(
                        404, f"no trace {trace_id!r} for tenant {reviewer.tenant}", reviewer
                    )
                traces.append(found)
        else:
            _, entries = _queue_entries(store, reviewer.tenant, f)
            context["matched"] = len(entries)
            traces = [e.trace for e in entries[:MAX_DIFF_TRACES]]
    except SQLAlchemyError as exc:
        return _error(503, f"the trace store cannot be reached ({type(exc).__name__})", reviewer)
    if runtime.models is None:
        return _error(503, "the server is starting: models are still loading; retry", reviewer)

    def work() -> tuple[list[TraceChange], dict[str, str]]:
        changes = [trace_change(t, replay(t, runtime, policy=candidate.strip())) for t in traces]
        texts: dict[str, str] = {}
        for c in changes:
            ids = [str(e["chunk_id"]) for e in (*c.diff.added, *c.diff.removed)]
            if ids:
                texts.update(_texts(runtime, c.diff.collection, reviewer.tenant, ids))
        return changes, texts

    try:
        with runtime.gate.slot():  # replays are requests too: under the server's gate
            changes, texts = await to_thread.run_sync(work, limiter=runtime.gate.limiter)
    except OverloadedError as err:
        return _error(503, str(err), reviewer)
    context["changes"], context["texts"] = changes, texts
    context["summary"] = diff_summary(changes)
    return page("diff.html", **context)


# one trace ----------------------------------------------------------------------------------


def _texts(runtime: Runtime, collection: str, tenant: str, ids: list[str]) -> dict[str, str]:
    """Chunk texts by id from the index, the tenant's own points only; {} when unreadable."""
    try:
        points = runtime.store.retrieve(collection, ids)
    except RagctxError:  # a dropped collection, a store that is down: the page says so
        return {}
    out: dict[str, str] = {}
    for point in points:
        payload = ChunkPayload.from_payload(point.payload)
        if payload.tenant == tenant:
            out[point.id] = payload.text
    return out


def _doc_ids(runtime: Runtime, collection: str, tenant: str) -> list[str]:
    """The tenant's document ids in the collection (to search when naming a missing one)."""
    try:
        counts = runtime.store.facet(
            collection, DOC_ID, Filter(must=(MatchValue(TENANT, tenant),)), limit=DOC_IDS_LISTED
        )
    except RagctxError:
        return []
    return sorted(counts)


def _trace_page(
    request: Request,
    reviewer: ApiKey,
    trace_id: str,
    *,
    saved: str | None = None,
    problems: list[str] | None = None,
    status: int = 200,
) -> Response:
    runtime = _runtime(request)
    store = _store(runtime)
    if store is None:
        return _error(503, "the trace store is off on this server (RAGCTX_TRACE_STORE=false)")
    try:
        trace = store.get(reviewer.tenant, trace_id)
    except SQLAlchemyError as exc:
        return _error(503, f"the trace store cannot be reached ({type(exc).__name__})", reviewer)
    if trace is None:
        return _error(404, f"no trace {trace_id!r} for tenant {reviewer.tenant}", reviewer)
    rows = candidate_rows(trace, STAGES)
    texts = _texts(runtime, trace["collection"], reviewer.tenant, [r["chunk_id"] for r in rows])
    return page(
        "trace.html",
        status,
        reviewer=reviewer,
        trace=trace,
        rows=rows,
        texts=texts,
        doc_ids=_doc_ids(runtime, trace["collection"], reviewer.tenant),
        doc_ids_max=DOC_IDS_LISTED,
        missing_fields=MISSING_FIELDS,
        stages=[s for s in STAGES if isinstance((trace["stages"] or {}).get(s), dict)],
        failures=failure_categories(trace),
        verdicts=VERDICTS,
        saved=saved,
        problems=problems or [],
    )


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
def trace_view(request: Request, trace_id: str, saved: str | None = None) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return _to_login()
    return _trace_page(request, reviewer, trace_id, saved=saved)


@router.post("/traces/{trace_id}/feedback", response_class=HTMLResponse)
async def judge(request: Request, trace_id: str) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return _to_login()
    if _cross_site(request):
        return _error(403, "this form was sent from another site; judge from the trace page")
    form = await request.form()
    judgments: list[dict[str, str]] = []
    for name, value in form.multi_items():
        if name.startswith("judge:") and isinstance(value, str) and value:
            judgments.append({"chunk_id": name.removeprefix("judge:"), "label": value})
    missing = " ".join(str(v) for v in form.getlist("missing"))
    for doc_id in missing.replace(",", " ").split():
        judgments.append({"doc_id": doc_id, "label": "missing"})
    note = str(form.get("note") or "").strip()
    try:
        body = FeedbackRequest.model_validate(
            {
                "trace_id": trace_id,
                "verdict": form.get("verdict") or None,
                "judgments": judgments,
                "note": note or None,
                "by": reviewer.id,
            }
        )
    except ValidationError as err:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors()
        ]
        return _judge_refused(request, reviewer, trace_id, problems)
    store = _store(_runtime(request))
    if store is None:
        return _error(503, "the trace store is off on this server (RAGCTX_TRACE_STORE=false)")
    trace = store.get(reviewer.tenant, trace_id)
    if trace is None:
        return _error(404, f"no trace {trace_id!r} for tenant {reviewer.tenant}", reviewer)
    known = {r["chunk_id"] for r in candidate_rows(trace, STAGES)}
    strangers = sorted(
        {j.chunk_id for j in body.judgments if j.chunk_id and j.chunk_id not in known}
    )
    if strangers:
        return _judge_refused(
            request,
            reviewer,
            trace_id,
            [f"chunk {c!r} is not a candidate of this trace" for c in strangers],
        )
    fid = store.add_feedback(
        reviewer.tenant,
        trace_id,
        body.verdict,
        [j.model_dump(exclude_none=True) for j in body.judgments],
        note=body.note,
        who=body.by,
    )
    if fid is None:
        return _error(404, f"no trace {trace_id!r} for tenant {reviewer.tenant}", reviewer)
    query = urlencode({"saved": str(fid)})
    return RedirectResponse(
        f"/review/traces/{quote(trace_id, safe='')}?{query}",
        status_code=303,
        headers=SECURITY_HEADERS,
    )


def _judge_refused(
    request: Request, reviewer: ApiKey, trace_id: str, problems: list[str]
) -> Response:
    return _trace_page(request, reviewer, trace_id, problems=problems, status=422)


# the quality view ---------------------------------------------------------------------------

SVG_HEADERS = {
    # an image: no script runs in it; its own <style> needs inline styles
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@router.get("/quality", response_class=HTMLResponse)
def quality_view(request: Request) -> Response:
    """The quality reports over time and the tenant's failure categories per day: tables, and
    charts as ``<img>`` of the SVG routes below (so the page's CSP stays strict)."""
    reviewer = _reviewer(request)
    if reviewer is None:
        return _to_login()
    runtime = _runtime(request)
    reports = runtime.settings.reports_dir
    try:
        from eval.history import HISTORY_METRIC, read_injection_history

        history = quality.history_rows(reports)
        injection = read_injection_history(reports)
    except ImportError:
        return _error(503, quality.EVAL_EXTRA, reviewer)
    store = _store(runtime)
    failures: list[Any] | None = None
    if store is not None:
        try:
            failures = quality.failure_rows(store, reviewer.tenant)
        except SQLAlchemyError:
            failures = None
    return page(
        "quality.html",
        reviewer=reviewer,
        reports=reports,
        history=history,
        stages=quality.stages_of(history),
        metric=HISTORY_METRIC,
        injection=injection,
        failures=failures,
        categories=CATEGORIES,
        failure_scan=quality.FAILURE_SCAN,
    )


@router.get("/quality/history.svg")
def history_chart(request: Request) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return Response(status_code=401, headers=SECURITY_HEADERS)
    try:
        svg = quality.history_svg(quality.history_rows(_runtime(request).settings.reports_dir))
    except ImportError:
        return Response(quality.EVAL_EXTRA, status_code=503, headers=SECURITY_HEADERS)
    return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)


@router.get("/quality/failures.svg")
def failures_chart(request: Request) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return Response(status_code=401, headers=SECURITY_HEADERS)
    store = _store(_runtime(request))
    if store is None:
        return Response("the trace store is off", status_code=503, headers=SECURITY_HEADERS)
    try:
        svg = quality.failures_svg(quality.failure_rows(store, reviewer.tenant))
    except ImportError:
        return Response(quality.EVAL_EXTRA, status_code=503, headers=SECURITY_HEADERS)
    except SQLAlchemyError as exc:
        message = f"the trace store cannot be reached ({type(exc).__name__})"
        return Response(message, status_code=503, headers=SECURITY_HEADERS)
    return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)

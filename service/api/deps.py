"""Dependencies routes declare with ``Annotated`` aliases: the runtime, the caller's key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from core.errors import ForbiddenError
from service.audit import SCOPE_KEY, AuditRecord
from service.auth import ApiKey
from service.errors import AuthError
from service.runtime import Runtime

BEARER_SCHEME = "HTTPBearer"  # the security scheme's name in the OpenAPI document
_bearer = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    auto_error=False,
    description="An API key from the keys file: `Authorization: Bearer <key>`.",
)


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime (built in the lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def audit_record(request: Request) -> AuditRecord | None:
    """The request's audit record, set up by the observing middleware (None elsewhere)."""
    record = request.scope.get(SCOPE_KEY)
    return record if isinstance(record, AuditRecord) else None


async def get_key(request: Request) -> ApiKey:
    """The caller's key grant from ``Authorization: Bearer <key>``; 401 otherwise.

    No sub-dependencies (the header is read here, the runtime from the app): this runs on
    every context request, and each dependency FastAPI solves costs event-loop time (~0.1 ms
    for HTTPBearer and the runtime together, measured on the dev VM after a request's CPU
    work). Routes that take ``KeyDep`` declare the scheme with ``openapi_extra=BEARER``.
    """
    scheme, key = get_authorization_scheme_param(request.headers.get("Authorization"))
    grant = _grant(request, key if scheme.lower() == "bearer" else None)
    if grant.review:
        raise ForbiddenError(
            f"key {grant.id!r} is a reviewer key: it may read its tenant's traces, judge them "
            "(GET /v1/traces, POST /v1/feedback) and use /review, nothing else"
        )
    return grant


async def get_trace_key(request: Request) -> ApiKey:
    """Like :func:`get_key`, and reviewer keys are welcome: the trace and feedback routes."""
    scheme, key = get_authorization_scheme_param(request.headers.get("Authorization"))
    return _grant(request, key if scheme.lower() == "bearer" else None)


def _grant(request: Request, key: str | None) -> ApiKey:
    if not key:
        raise AuthError(
            "missing API key; send the header `Authorization: Bearer <key>` (create a key with "
            "`ragctx keys add`)"
        )
    runtime: Runtime = request.app.state.runtime
    grant = None if runtime.keys is None else runtime.keys.verify(key)
    if grant is None:
        raise AuthError("invalid API key; check the key or create one with `ragctx keys add`")
    if grant.expired() and grant.expires is not None:
        raise AuthError(
            f"API key {grant.id!r} expired at {grant.expires.isoformat()}; ask for a new key "
            "(`ragctx keys add`)"
        )
    record = audit_record(request)
    if record is not None:
        record.key_id, record.tenant = grant.id, grant.tenant
        record.groups, record.admin = list(grant.groups), grant.admin
    return grant


def key_or_none(request: Request) -> ApiKey | None:
    """The caller's key grant when the request carries a valid one, else None (no 401)."""
    scheme, key = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not key:
        return None
    try:
        return _grant(request, key)
    except AuthError:
        return None


KeyDep = Annotated[ApiKey, Depends(get_key)]
TraceKeyDep = Annotated[ApiKey, Depends(get_trace_key)]
"""Any key of the tenant, a reviewer key included (traces and feedback)."""
BEARER: dict[str, Any] = {"security": [{BEARER_SCHEME: []}]}
"""``openapi_extra`` for a route that takes ``KeyDep``: the document names the key it needs."""


async def get_admin_key(
    grant: KeyDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's key, which must be an admin key (403 otherwise).

    ``_scheme`` (HTTPBearer, not otherwise needed) puts the bearer scheme in the OpenAPI
    document, where ``BEARER`` refers to it.
    """
    if not grant.admin:
        raise ForbiddenError(
            f"key {grant.id!r} is not an admin key; admin routes need a key made with "
            "`ragctx keys add --admin`"
        )
    return grant


AdminKeyDep = Annotated[ApiKey, Depends(get_admin_key)]

"""Dependencies routes declare with ``Annotated`` aliases: the runtime, the caller's key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.audit import SCOPE_KEY, AuditRecord
from service.auth import ApiKey
from service.errors import AuthError, ForbiddenError
from service.runtime import Runtime

_bearer = HTTPBearer(
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


async def get_key(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's key grant; 401 without a valid ``Authorization: Bearer`` key."""
    if credentials is None or not credentials.credentials:
        raise AuthError(
            "missing API key; send the header `Authorization: Bearer <key>` (create a key with "
            "`ragctx keys add`)"
        )
    grant = None if runtime.keys is None else runtime.keys.verify(credentials.credentials)
    if grant is None:
        raise AuthError("invalid API key; check the key or create one with `ragctx keys add`")
    record = audit_record(request)
    if record is not None:
        record.key_id, record.tenant = grant.id, grant.tenant
        record.groups, record.admin = list(grant.groups), grant.admin
    return grant


KeyDep = Annotated[ApiKey, Depends(get_key)]


async def get_admin_key(grant: KeyDep) -> ApiKey:
    """The caller's key, which must be an admin key (403 otherwise)."""
    if not grant.admin:
        raise ForbiddenError(
            f"key {grant.id!r} is not an admin key; admin routes need a key made with "
            "`ragctx keys add --admin`"
        )
    return grant


AdminKeyDep = Annotated[ApiKey, Depends(get_admin_key)]

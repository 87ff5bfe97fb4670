"""The service's own error types, each with its HTTP status, error code and field.

``service.api.errors`` turns any ``RagctxError`` (these, ``core.errors``, the assembler's
``PolicyError``) into an HTTP answer from those attributes: routes never raise
``HTTPException`` for them.
"""

from __future__ import annotations

from core.errors import ForbiddenError, RagctxError, StoreUnavailableError

__all__ = [
    "AuthError",
    "ForbiddenError",
    "NotReadyError",
    "OverloadedError",
    "TracesUnavailableError",
    "UnknownJobError",
    "UnknownPolicyError",
    "UnknownTraceError",
]


class AuthError(RagctxError):
    """No key, or a key the server does not know: 401."""

    http_status = 401
    error_code = "unauthorized"
    http_headers = {"WWW-Authenticate": "Bearer"}


class NotReadyError(StoreUnavailableError):
    """The models are still loading (or failed to load): 503 with ``Retry-After``."""


class OverloadedError(RagctxError):
    """Every request slot is busy: 503 with ``Retry-After`` instead of an unbounded queue."""

    http_status = 503
    error_code = "overloaded"


class UnknownPolicyError(RagctxError):
    """A request named a policy the server does not have: 404."""

    http_status = 404
    error_code = "unknown_policy"
    field = "policy"

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"unknown policy {name!r}; policies on this server: {', '.join(available) or 'none'}"
            " (add a YAML file to the policy folder, or omit 'policy' for the default)"
        )
        self.name = name

    def public_message(self) -> str:
        """Without the server's policies: they may be other tenants'."""
        return (
            f"unknown policy {self.name!r}; omit 'policy' for the server's default, or ask its "
            "operator which policies it has"
        )


class UnknownJobError(RagctxError):
    """No ingest job with this id (never submitted, or forgotten after 100 newer ones): 404."""

    http_status = 404
    error_code = "unknown_job"
    field = "job_id"


class UnknownTraceError(RagctxError):
    """No trace with this id for the caller's tenant (another tenant's id reads the same): 404."""

    http_status = 404
    error_code = "unknown_trace"
    field = "trace_id"


class TracesUnavailableError(StoreUnavailableError):
    """The trace store is off (RAGCTX_TRACE_STORE=false) or cannot be reached: 503."""

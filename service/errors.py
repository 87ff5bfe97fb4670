"""The service's own error types; ``service.api.errors`` maps each to one HTTP status.

Domain errors from the stages (``index.errors``, ``assembler.policy.PolicyError``) are mapped
there too: routes never raise ``HTTPException`` for them.
"""

from __future__ import annotations

from index.errors import RagctxError, StoreUnavailableError


class AuthError(RagctxError):
    """No key, or a key the server does not know: 401."""


class ForbiddenError(RagctxError):
    """A valid key asking for more than it grants (wider groups, admin routes): 403."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotReadyError(StoreUnavailableError):
    """The models are still loading (or failed to load): 503 with ``Retry-After``."""


class OverloadedError(RagctxError):
    """Every request slot is busy: 503 with ``Retry-After`` instead of an unbounded queue."""


class UnknownPolicyError(RagctxError):
    """A request named a policy the server does not have: 404."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"unknown policy {name!r}; policies on this server: {', '.join(available) or 'none'}"
            " (add a YAML file to the policy folder, or omit 'policy' for the default)"
        )
        self.name = name


class UnknownJobError(RagctxError):
    """No ingest job with this id (never submitted, or forgotten after 100 newer ones): 404."""


class UnknownTraceError(RagctxError):
    """No trace with this id for the caller's tenant (another tenant's id reads the same): 404."""


class TracesUnavailableError(StoreUnavailableError):
    """The trace store is off (RAGCTX_TRACE_STORE=false) or cannot be reached: 503."""

"""The project's error types. Messages say what was wrong, the value, what is allowed, the fix.

Each type carries what the outside sees of it: its HTTP status and error code, the request
field it is about, and the CLI's exit code (2 for bad usage or input, 1 for a failed
operation). The HTTP handlers, the MCP tools and the CLI read these instead of testing types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pydantic import ValidationError


class RagctxError(Exception):
    """Base of every ragctx error; messages name the input and the fix."""

    http_status: ClassVar[int] = 500
    error_code: ClassVar[str] = "internal"
    exit_code: ClassVar[int] = 1
    #: Extra response headers (a 503 also gets ``Retry-After`` from the HTTP layer).
    http_headers: ClassVar[Mapping[str, str]] = {}
    field: str | None = None

    def public_message(self) -> str:
        """The message an API caller gets; the CLI and the log show ``str(err)``."""
        return str(self)


class InvalidInputError(RagctxError):
    """Bad usage or input: a flag, a field, a file. Exit code 2, HTTP 422."""

    http_status = 422
    error_code = "invalid_input"
    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class RequiredOverBudgetError(InvalidInputError):
    """The parts a prompt cannot do without (system messages, the question, required items)
    need more tokens than the budget: HTTP 422 naming them and what they need."""

    error_code = "required_over_budget"

    def __init__(self, *, needed: int, budget: int, parts: Sequence[tuple[str, int]]) -> None:
        named = ", ".join(f"{part} ({tokens} tokens)" for part, tokens in parts)
        super().__init__(
            f"the required parts of the prompt need {needed} tokens, over budget_tokens "
            f"{budget}: {named}; raise budget_tokens to at least {needed}, shorten them, or "
            "make some items not required",
            field="budget_tokens",
            value=budget,
        )
        self.needed = needed
        self.budget = budget
        self.parts = tuple(parts)


class ForbiddenError(RagctxError):
    """A valid key asking for more than it grants (wider groups, admin routes): 403."""

    http_status = 403
    error_code = "forbidden"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownCollectionError(RagctxError):
    """A collection that does not exist in the store. Exit code 2, HTTP 404."""

    http_status = 404
    error_code = "unknown_collection"
    exit_code = 2
    field = "collection"

    def __init__(self, name: str, *, available: list[str] | None = None) -> None:
        known = ", ".join(available) if available else "none"
        super().__init__(
            f"unknown collection {name!r} (collections in this store: {known}); "
            f"ingest into it first with `ragctx ingest SOURCE --collection {name}`"
        )
        self.name = name

    def public_message(self) -> str:
        """Without the store's collections: they may be other tenants'."""
        return (
            f"unknown collection {self.name!r}; name a collection your key can see "
            "(the MCP tool list_collections lists them) or omit 'collection' for the default"
        )


class StoreUnavailableError(RagctxError):
    """The store cannot be opened or reached (locked by another process, missing, down): 503."""

    http_status = 503
    error_code = "unavailable"


class StoreLockedError(StoreUnavailableError):
    """An embedded store folder already held by another process."""


class ModelNotFoundError(RagctxError):
    """A model id or folder that cannot be loaded: 503."""

    http_status = 503
    error_code = "unavailable"


def field_path(loc: Iterable[object]) -> str:
    """A pydantic error location as a path: ``("filters", "tags", 0)`` → ``filters.tags[0]``."""
    out = ""
    for part in loc:
        text = str(part)
        out += (
            f"[{text}]"
            if isinstance(part, int) or text.isdigit()
            else (f".{text}" if out else text)
        )
    return out


def validation_message(err: ValidationError, *, root: str = "input") -> str:
    """Every problem of a pydantic ``ValidationError`` as ``field: message``, joined by ``; ``
    (``root`` names the field of a problem with no location)."""
    problems: list[Mapping[str, Any]] = err.errors()  # type: ignore[assignment]
    return "; ".join(f"{field_path(e['loc']) or root}: {e['msg']}" for e in problems)

"""The project's error types. Messages say what was wrong, the value, what is allowed, the fix.

The CLI maps them to exit codes (2 for bad usage or input, 1 for a failed operation) and the
HTTP layer to status codes, in one place each.
"""

from __future__ import annotations


class RagctxError(Exception):
    """Base of every ragctx error; messages name the input and the fix."""


class InvalidInputError(RagctxError):
    """Bad usage or input: a flag, a field, a file. Exit code 2, HTTP 400/422."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class UnknownCollectionError(RagctxError):
    """A collection that does not exist in the store. Exit code 2, HTTP 404."""

    def __init__(self, name: str, *, available: list[str] | None = None) -> None:
        known = ", ".join(available) if available else "none"
        super().__init__(
            f"unknown collection {name!r} (collections in this store: {known}); "
            f"ingest into it first with `ragctx ingest SOURCE --collection {name}`"
        )
        self.name = name


class StoreUnavailableError(RagctxError):
    """The store cannot be opened or reached (locked by another process, missing, down)."""


class StoreLockedError(StoreUnavailableError):
    """An embedded store folder already held by another process."""


class ModelNotFoundError(RagctxError):
    """A model id or folder that cannot be loaded."""

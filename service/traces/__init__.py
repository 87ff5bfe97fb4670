"""The trace store (issue 16): every answer's trace and its feedback, in SQLite or PostgreSQL."""

from service.traces.store import (
    VERDICTS,
    LateTraceStore,
    TraceRecord,
    TraceStore,
    TraceWriter,
    default_url,
    query_hash,
)

__all__ = [
    "VERDICTS",
    "LateTraceStore",
    "TraceRecord",
    "TraceStore",
    "TraceWriter",
    "default_url",
    "query_hash",
]

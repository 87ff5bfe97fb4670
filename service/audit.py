"""One audit line (JSON) per API request: who, which policy, which documents, how long.

Never the query's or the documents' text, unless ``audit_include_text`` is set (then the query
only). Lines go to the ``ragctx.audit`` logger; ``ragctx serve`` writes them to stderr as JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

audit_log = logging.getLogger("ragctx.audit")

SCOPE_KEY = "ragctx.audit"


@dataclass
class AuditRecord:
    """Filled in as a request goes through auth, the pipeline and the error handlers."""

    route: str
    method: str
    key_id: str | None = None
    tenant: str | None = None
    groups: list[str] | None = None
    admin: bool | None = None
    collection: str | None = None
    policy: dict[str, str | None] | None = None
    doc_ids: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None
    budget_tokens: int | None = None
    job_id: str | None = None
    error: str | None = None
    query: str | None = None  # only with audit_include_text

    def line(self, *, status: int, latency_ms: float, trace_id: str) -> dict[str, Any]:
        """The JSON object written for this request."""
        out: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "audit",
            "route": self.route,
            "method": self.method,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "trace_id": trace_id,
            "principal": {
                "key_id": self.key_id,
                "tenant": self.tenant,
                "groups": self.groups,
                "admin": self.admin,
            },
            "collection": self.collection,
            "policy": self.policy,
            "doc_ids": self.doc_ids,
            "counts": self.counts,
            "tokens": self.tokens,
            "budget_tokens": self.budget_tokens,
        }
        if self.job_id is not None:
            out["job_id"] = self.job_id
        if self.error is not None:
            out["error"] = self.error
        if self.query is not None:
            out["query"] = self.query
        return out


class _Text:
    """An audit line's text, made only if a handler asks for the message: the JSON formatter
    writes the ``audit`` dict itself, so the line is encoded once, by the log writer."""

    __slots__ = ("line",)

    def __init__(self, line: dict[str, Any]) -> None:
        self.line = line

    def __str__(self) -> str:
        return json.dumps(self.line, ensure_ascii=False)


def write(line: dict[str, Any]) -> None:
    """Emit one audit line (the record also rides along for the JSON log formatter)."""
    audit_log.info("%s", _Text(line), extra={"audit": line})

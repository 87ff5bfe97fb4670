"""SQLAlchemy 2 models of the trace store: one row per answered request, one per judgment.

Candidates per stage, the pack and the timings are JSON columns: they are read back whole, never
queried inside. The schema itself is owned by the Alembic migrations in ``migrations/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TraceRow(Base):
    __tablename__ = "traces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    route: Mapped[str] = mapped_column(String(100))  # "/v1/context" or "cli:query"
    collection: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The query text, or (RAGCTX_TRACE_TEXT off) only its sha256 in query_hash.
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    query_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    stages: Mapped[dict[str, Any]] = mapped_column(JSON)  # stage -> ranked candidates
    pack: Mapped[dict[str, Any]] = mapped_column(JSON)  # kept/dropped chunks, budget, flags
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_traces_tenant_created", "tenant", "created_at"),)


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("traces.id", ondelete="CASCADE"), index=True
    )
    tenant: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verdict: Mapped[str] = mapped_column(String(20))  # accepted | edited | rejected
    judgments: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    who: Mapped[str | None] = mapped_column(String(200), nullable=True)

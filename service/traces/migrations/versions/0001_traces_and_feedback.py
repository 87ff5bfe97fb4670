"""traces and feedback

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.String(200), nullable=True),
        sa.Column("query", sa.Text, nullable=True),
        sa.Column("query_hash", sa.String(64), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("pack", sa.JSON, nullable=False),
        sa.Column("timings_ms", sa.JSON, nullable=False),
    )
    op.create_index("ix_traces_tenant_created", "traces", ["tenant", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "trace_id",
            sa.String(64),
            sa.ForeignKey("traces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("judgments", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("who", sa.String(200), nullable=True),
    )
    op.create_index("ix_feedback_trace_id", "feedback", ["trace_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_trace_id", "feedback")
    op.drop_table("feedback")
    op.drop_index("ix_traces_tenant_created", "traces")
    op.drop_table("traces")

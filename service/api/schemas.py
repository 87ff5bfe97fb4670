"""HTTP request and response bodies (the contract of DESIGN.md §4, v1).

Kept apart from the internal types: the pipeline maps ``ContextPack`` and ``Retrieved`` to these.
Requests forbid unknown fields, so a body can never carry a tenant or an access grant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.types import SearchFilters

Encoding = Literal["cl100k_base", "o200k_base"]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _absent(value: object) -> bool:
    # debug-only fields are left out of the answer, not sent as null
    return value is None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FiltersIn(_In):
    """Narrowing a request may ask for; it can only ever remove candidates."""

    sources: list[Name] | None = Field(
        default=None, max_length=100, description="Only these sources."
    )
    exclude_sources: list[Name] | None = Field(default=None, max_length=100)
    tags: list[Name] | None = Field(
        default=None, max_length=100, description="Chunks with any of these."
    )
    exclude_doc_ids: list[Name] | None = Field(default=None, max_length=1000)
    updated_after: datetime | None = Field(default=None, description="ISO 8601; naive means UTC.")
    updated_before: datetime | None = Field(
        default=None, description="ISO 8601; naive means UTC; not before updated_after."
    )

    @field_validator("updated_after", "updated_before")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("updated_before")
    @classmethod
    def _ordered(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        after = info.data.get("updated_after")
        if value is not None and after is not None and after > value:
            raise ValueError(
                f"updated_before ({value.isoformat()}) is earlier than updated_after "
                f"({after.isoformat()}); swap or widen them"
            )
        return value

    def search_filters(self) -> SearchFilters:
        """The retrieval stage's filter object (the store applies it with the access filter)."""
        return SearchFilters(
            sources=tuple(self.sources or ()),
            exclude_sources=tuple(self.exclude_sources or ()),
            tags=tuple(self.tags or ()),
            exclude_doc_ids=tuple(self.exclude_doc_ids or ()),
            updated_after=self.updated_after,
            updated_before=self.updated_before,
        )


class ContextRequest(_In):
    """``POST /v1/context``: a question, a token budget and optional narrowing."""

    query: Annotated[str, Field(min_length=1, description="The question to find context for.")]
    budget_tokens: Annotated[int, Field(gt=0, description="Tokens the rendered context may use.")]
    encoding: Encoding = Field(
        default="cl100k_base", description="tiktoken encoding of the reader model."
    )
    policy: Name | None = Field(
        default=None, description="Policy name; the server default if omitted."
    )
    collection: Name | None = Field(
        default=None, description="Collection; the server default if omitted."
    )
    filters: FiltersIn | None = None
    groups: list[Name] | None = Field(
        None,
        max_length=100,
        description="Narrow the key's access groups to these; never more than the key grants.",
    )
    top_k: int = Field(
        default=50, ge=1, le=1000, description="Candidates retrieval hands the assembler."
    )
    debug: bool = Field(default=False, description="Add per-candidate ranks and scores per stage.")


class HitOut(BaseModel):
    """A candidate's rank and score in one stage."""

    rank: int
    score: float


class ItemOut(BaseModel):
    """One block of the context, cited as ``[citation]`` in the text."""

    citation: int
    doc_id: str
    chunk_id: str
    chunk_ids: list[str]
    source: str
    path: str
    title: str
    section: list[str]
    text: str
    tokens: int
    score: float
    score_kind: str
    updated_at: datetime | None
    pinned: bool = False
    flags: list[str] = Field(default_factory=list)
    stages: dict[str, HitOut] | None = Field(
        default=None, description="debug only", exclude_if=_absent
    )


class DroppedOut(BaseModel):
    """A candidate left out, and why."""

    chunk_id: str
    doc_id: str
    reason: str
    detail: str
    stages: dict[str, HitOut] | None = Field(
        default=None, description="debug only", exclude_if=_absent
    )


class PolicyOut(BaseModel):
    """Which policy made the pack."""

    name: str
    version: str
    sha256: str | None


class CandidateOut(BaseModel):
    """A candidate as one stage ranked it (debug only)."""

    chunk_id: str
    doc_id: str
    rank: int
    score: float


class StepOut(BaseModel):
    """One assembler step."""

    step: str
    count_in: int
    count_out: int
    ms: float
    notes: list[str] = Field(default_factory=list)


class StageOut(BaseModel):
    """What one stage did: how many candidates, how long, whether it really ran."""

    count: int
    ms: float
    active: bool = True
    note: str = ""
    candidates: list[CandidateOut] | None = Field(
        default=None, description="debug only", exclude_if=_absent
    )
    steps: list[StepOut] | None = Field(
        default=None, description="context stage only", exclude_if=_absent
    )


class TraceOut(BaseModel):
    """Trace id (OpenTelemetry) and per-stage counts and timings."""

    trace_id: str
    stages: dict[str, StageOut] = Field(description="dense, bm25, hybrid, rerank, context")
    timings_ms: dict[str, float]


class CitationOut(BaseModel):
    """One entry of the citation list."""

    number: int
    doc_id: str
    chunk_ids: list[str]
    source: str
    path: str
    title: str
    section: list[str]
    updated_at: datetime | None


class ContextResponse(BaseModel):
    """The context to put in the prompt and how it was made."""

    context: str
    tokens: int
    budget_tokens: int
    encoding: str
    items: list[ItemOut]
    citations: list[CitationOut]
    dropped: list[DroppedOut]
    policy: PolicyOut
    trace: TraceOut


class ErrorDetail(BaseModel):
    """What was wrong, which field, and what to do."""

    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    """Every error answer: one ``error`` object (``errors`` lists all for validation)."""

    error: ErrorDetail
    errors: list[ErrorDetail] | None = None


class HealthOut(BaseModel):
    """``/healthz``: the process answers."""

    status: Literal["ok"]


class ReadyStatusOut(BaseModel):
    """``/readyz`` without an admin key: ready or not, nothing else."""

    status: Literal["ready", "not_ready"]


class ReadyOut(ReadyStatusOut):
    """``/readyz`` with an admin key: why it is (not) ready, the policies and collections."""

    ready: bool
    store: bool
    models: Literal["loading", "loaded", "failed"]
    error: str | None = None
    policies: list[str]
    policy_error: str | None = None
    keys_error: str | None = None
    collections: list[str]


TraceId = Annotated[str, Field(min_length=1, max_length=64, description="A trace id.")]
MAX_TRACES_LISTED = 500
MAX_JUDGMENTS = 200


class JudgmentIn(_In):
    """One judged item: a chunk or a document, and whether it was relevant to the answer."""

    chunk_id: Name | None = Field(default=None, description="The chunk judged (or doc_id).")
    doc_id: Name | None = Field(default=None, description="The document judged (or chunk_id).")
    label: Literal["relevant", "not_relevant", "missing"] = Field(
        description="`missing`: it should have been in the context and was not."
    )

    @model_validator(mode="after")
    def _one_item(self) -> JudgmentIn:
        if (self.chunk_id is None) == (self.doc_id is None):
            raise ValueError("name exactly one of chunk_id or doc_id")
        return self


class FeedbackRequest(_In):
    """``POST /v1/feedback``: a judgment of one answer, by its trace id."""

    trace_id: TraceId
    verdict: Literal["accepted", "edited", "rejected"] = Field(
        description="What became of the answer."
    )
    judgments: list[JudgmentIn] = Field(default_factory=list, max_length=MAX_JUDGMENTS)
    note: str | None = Field(default=None, max_length=4000)
    by: Name | None = Field(default=None, description="Who judged (a user id, a reviewer).")


class FeedbackOut(BaseModel):
    """One kept judgment of a trace."""

    id: int
    created_at: datetime
    verdict: str
    judgments: list[dict[str, Any]]
    note: str | None
    by: str | None


class FeedbackAccepted(BaseModel):
    """The answer to ``POST /v1/feedback``."""

    id: int = Field(description="The judgment's id; every judgment of a trace is kept.")
    trace_id: str


class TraceRecordOut(BaseModel):
    """One recorded answer with its feedback (``GET /v1/traces/{trace_id}``)."""

    id: str
    created_at: datetime
    route: str
    collection: str
    policy_version: str | None
    query: str | None = Field(description="Null when the server keeps only the query's hash.")
    query_hash: str
    request: dict[str, Any]
    stages: dict[str, Any]
    pack: dict[str, Any]
    timings_ms: dict[str, Any]
    feedback: list[FeedbackOut]
    failures: list[dict[str, Any]] | None = Field(
        default=None,
        description="GET /v1/traces/{trace_id} only: where judged items were lost (category: "
        "not_retrieved, cut_at_fusion, ranked_below_cut, pushed_down_by_rerank, "
        "dropped_by_policy with its rule, over_budget, injection_flagged, empty_pack).",
    )


class TraceListOut(BaseModel):
    """``GET /v1/traces``: the caller tenant's traces, newest first."""

    traces: list[TraceRecordOut]

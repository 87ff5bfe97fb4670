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

from assembler.prompt.types import CallerItem, Message, Role, ToolCall
from assembler.types import ItemKind
from core.types import SearchFilters

Encoding = Literal["cl100k_base", "o200k_base"]
Name = Annotated[str, Field(min_length=1, max_length=200)]
MAX_TEXT_CHARS = 200_000  # one message or item; the body limit (RAGCTX_MAX_BODY_BYTES) caps all
MetaValue = str | int | float | bool | None


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


class TextPartIn(_In):
    """One text part of a message's content (the OpenAI content-array form)."""

    type: Literal["text"]
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class FunctionIn(_In):
    """The function a tool call invokes, with its arguments as JSON text."""

    name: Name
    arguments: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = "{}"


class ToolCallIn(_In):
    """A tool call made by an assistant message (OpenAI form); its result carries its id."""

    id: Name
    type: Literal["function"] = "function"
    function: FunctionIn


class MessageIn(_In):
    """One chat message, OpenAI form: tool calls on assistant messages, results linked by id."""

    role: Literal["system", "user", "assistant", "tool"]
    content: (
        Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
        | Annotated[list[TextPartIn], Field(max_length=100)]
        | None
    ) = None
    name: Name | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=64)
    tool_call_id: Name | None = None

    def message(self) -> Message:
        """The assembler's message (a content array is joined into one text)."""
        content = self.content
        text = "".join(p.text for p in content) if isinstance(content, list) else content or ""
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments) for c in self.tool_calls or ()
        )
        return Message(Role(self.role), text, self.name, calls, self.tool_call_id)


class ItemIn(_In):
    """Context the caller supplies: a remembered fact, a tool output, a document, an example."""

    kind: Literal["memory", "tool_output", "document", "example"]
    id: Name
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    priority: float = Field(
        default=0.0, allow_inf_nan=False, description="Higher packs first in its section."
    )
    required: bool = Field(
        default=False, description="Always packed, or the request fails with a 422 naming it."
    )
    updated_at: datetime | None = Field(default=None, description="ISO 8601; naive means UTC.")
    metadata: dict[Name, MetaValue | list[MetaValue]] = Field(
        default_factory=dict,
        max_length=50,
        description="title, name, tags, series/version/supersedes; matched by policy rules.",
    )

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    def item(self) -> CallerItem:
        """The assembler's caller item."""
        return CallerItem(
            kind=ItemKind(self.kind),
            id=self.id,
            text=self.text,
            priority=self.priority,
            required=self.required,
            updated_at=self.updated_at,
            metadata=dict(self.metadata),
        )


class ContextRequest(_In):
    """``POST /v1/context``: a question or a conversation, a whole-prompt token budget, and
    optional caller items and narrowing."""

    query: (
        Annotated[
            str,
            Field(
                min_length=1,
                description="The question to find context for; when absent, the last user turn.",
            ),
        ]
        | None
    ) = None
    messages: list[MessageIn] | None = Field(
        default=None,
        max_length=1000,
        description="The conversation (OpenAI chat form); system messages first.",
    )
    items: list[ItemIn] | None = Field(
        default=None,
        max_length=1000,
        description="Memory facts, tool outputs, documents and examples to pack with it.",
    )
    budget_tokens: Annotated[
        int, Field(gt=0, description="Tokens the whole prompt may use, chat framing included.")
    ]
    encoding: Encoding = Field(
        default="cl100k_base", description="tiktoken encoding of the reader model."
    )
    model: Name | None = Field(
        default=None,
        description="The reader model (e.g. gpt-4o); sets the encoding when encoding is absent.",
    )
    format: Literal["openai", "anthropic", "text"] = Field(
        default="openai", description="The form of the answer's prompt."
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


class PartOut(BaseModel):
    """One message or caller item of the prompt: packed, trimmed, or dropped and why."""

    id: str = Field(description="messages[i], query, or <kind>:<id> for an item")
    kind: str = Field(description="system, turn, tool, question, or the item's kind")
    section: str
    status: Literal["packed", "trimmed", "dropped"]
    tokens: int
    reason: str | None = None
    detail: str = ""
    role: str | None = None
    flags: list[str] = Field(default_factory=list)


class SectionOut(BaseModel):
    """Tokens one section of the prompt used, against its floor and ceiling."""

    name: str
    tokens: int
    parts: int
    floor: int = 0
    ceiling: int | None = None


class ContextResponse(BaseModel):
    """The prompt to send, the evidence in it, and how it was made.

    ``messages`` (``openai`` and ``anthropic`` formats; ``system`` apart in the latter) or
    ``text`` (``text`` format) hold the whole prompt, ``prompt_tokens`` its count, which never
    exceeds ``budget_tokens``. ``context`` is the evidence section as rendered, ``tokens`` its
    count. Every message and item is in ``parts``, every candidate in ``items`` or ``dropped``.
    """

    context: str
    tokens: int
    budget_tokens: int
    encoding: str
    format: str = "openai"
    messages: list[dict[str, Any]] = Field(default_factory=list)
    system: str | None = Field(default=None, exclude_if=_absent)
    text: str | None = Field(default=None, exclude_if=_absent)
    prompt_tokens: int = 0
    budget_left: int = 0
    framing: str = ""
    retrieval_query: str = ""
    sections: list[SectionOut] = Field(default_factory=list)
    parts: list[PartOut] = Field(default_factory=list)
    redactions: dict[str, int] = Field(default_factory=dict)
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

"""The evaluation report: what was measured, on what, with what, and how long it took.

A report is self-describing (STYLE §8): date, git commit, dataset checksum and sizes, every
parameter, model ids, thread counts, library versions, timings, the mean of every metric per
stage, and every query's score per stage and metric, so that a later run can be tested against
it query by query (:func:`eval.gate`).

It is a file format, so it is a pydantic model: ``EvalReport.model_dump_json()`` writes it,
:func:`load_report` reads and validates it, and ``EvalReport.model_json_schema()`` is its JSON
Schema (``kind`` and ``schema`` name the format and its version). Scores are rounded to six
digits and NaN written as null; timings are rounded to the millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_serializer

from core.errors import InvalidInputError
from eval.attribution import Attribution
from eval.environment import Environment
from eval.judge import LLMMetrics
from eval.rankings import DocScore

__all__ = [
    "REPORT_KIND",
    "REPORT_SCHEMA",
    "STAGE_ORDER",
    "BM25Record",
    "ChunkingRecord",
    "DatasetInfo",
    "EvalReport",
    "IngestSummary",
    "ModelsInfo",
    "RerankRecord",
    "RetrievalRecord",
    "RunParams",
    "StageReport",
    "Timings",
    "WithheldRecord",
    "load_report",
]

REPORT_KIND: Final = "ragctx-eval-report"
REPORT_SCHEMA: Final = 1
STAGE_ORDER = ("bm25", "dense", "hybrid", "rerank", "context")


class _Record(BaseModel):
    """A part of the report: frozen, and no key it does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Echo(BaseModel):
    """Parameters of another stage, recorded as that stage gives them: the keys every report
    has are typed; keys a later version of that stage adds are kept as they are."""

    model_config = ConfigDict(frozen=True, extra="allow")


class StageReport(_Record):
    """One stage: whether it really ran, its mean metrics, per-query scores, latency.

    An inactive stage (rerank without a trained reranker) has no metrics: it was not measured.
    ``per_query`` is metric -> query id -> score; ``latency_ms`` holds median, p95 and mean.
    """

    active: bool
    note: str = ""
    metrics: Mapping[str, float | None] = Field(default_factory=dict)
    latency_ms: Mapping[str, float] = Field(default_factory=dict)
    per_query: Mapping[str, Mapping[str, float | None]] = Field(default_factory=dict)

    @field_serializer("metrics")
    def _metrics(self, metrics: Mapping[str, float | None]) -> dict[str, float | None]:
        return {m: _num(v) for m, v in metrics.items()}

    @field_serializer("latency_ms")
    def _latency(self, latency: Mapping[str, float]) -> dict[str, float]:
        return {m: round(v, 3) for m, v in latency.items()}

    @field_serializer("per_query")
    def _per_query(
        self, per_query: Mapping[str, Mapping[str, float | None]]
    ) -> dict[str, dict[str, float | None]]:
        return {m: {q: _num(v) for q, v in s.items()} for m, s in per_query.items()}


class DatasetInfo(_Record):
    """The BEIR dataset: its checksum (over ``files``) says whether two runs are comparable."""

    name: str
    path: str
    split: str
    sha256: str
    files: dict[str, str]  # file -> sha256
    documents: int
    queries: int
    judgments: int


class RerankRecord(_Echo):
    """The rerank parameters the run used."""

    top_n: int
    mode: str
    weight: float
    k: int


class RetrievalRecord(_Echo):
    """The retrieval parameters the run used (``top_k`` widened to the whole fused list)."""

    dense_limit: int
    bm25_limit: int
    rrf_k: int
    top_k: int
    rerank: RerankRecord
    max_query_chars: int
    with_vectors: bool


class ChunkingRecord(_Echo):
    """How documents were chunked."""

    chunk_tokens: int
    overlap_tokens: int
    encoding: str


class BM25Record(_Echo):
    """The BM25 encoder's parameters."""

    k: float
    b: float
    avg_len: float
    language: str


class RunParams(_Record):
    """Every parameter of the run; ``settings`` is the whole settings object as it was given
    (secrets left out)."""

    retrieval: RetrievalRecord
    k: int
    doc_score: DocScore
    chunking: ChunkingRecord
    max_model_tokens: int
    bm25: BM25Record
    tenant: str
    settings: dict[str, JsonValue] = Field(default_factory=dict)


class ModelsInfo(_Record):
    """The models: dense id and dimension, the reranker (None when none was configured)."""

    dense: str
    dense_dim: int
    rerank: str | None = None
    rerank_trained: bool | None = None


class WithheldRecord(_Record):
    """A deletion the sync held back (ingest.sync.WithheldDeletion)."""

    source: str
    tenant: str | None
    would_delete: int
    held: int
    doc_ids: list[str]
    message: str


class IngestSummary(_Record):
    """What the incremental ingest of the dataset did; ``points`` is the collection's size."""

    collection: str
    sources: list[str]
    added: int
    updated: int
    unchanged: int
    deleted: int
    failed: int
    chunks_written: int
    chunks_deleted: int
    seconds: float
    dry_run: bool = False
    optimized: bool = False
    notes: list[str] = Field(default_factory=list)
    withheld: list[WithheldRecord] = Field(default_factory=list)
    problems: int  # how many documents had input problems (they are logged)
    points: int


class Timings(BaseModel):
    """Wall times of the phases, plus ``<component>_median_ms`` per query (the retrieval's own
    timings: ``dense_encode``, ``store_query``, ...), one key per component."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, float] = Field(init=False)

    ingest_s: float
    queries_s: float
    total_s: float

    @field_serializer("ingest_s", "queries_s", "total_s")
    def _seconds(self, value: float) -> float:
        return round(value, 3)


class EvalReport(_Record):
    """One evaluation run; see the module docstring. ``stages`` keys are stage names."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True
    )

    kind: Literal["ragctx-eval-report"] = REPORT_KIND
    schema_version: Literal[1] = Field(default=REPORT_SCHEMA, alias="schema")
    run_id: str
    created_at: str  # ISO 8601, UTC
    dataset: DatasetInfo
    collection: str
    params: RunParams
    models: ModelsInfo
    environment: Environment
    timings: Timings
    ingest: IngestSummary
    stages: dict[str, StageReport]
    attribution: Attribution
    llm_metrics: LLMMetrics
    context: None = None  # always null: the context stage is in ``stages``; kept for readers

    def metric(self, stage: str, name: str) -> float | None:
        """The mean of ``name`` at ``stage``; None when the stage did not run or lacks it."""
        report = self.stages.get(stage)
        return None if report is None or not report.active else report.metrics.get(name)

    @field_serializer("stages")
    def _stages(self, stages: dict[str, StageReport]) -> dict[str, StageReport]:
        return {name: stages[name] for name in sorted(stages, key=_stage_key)}


def load_report(path: Path) -> EvalReport:
    """Read a report JSON file.

    Raises:
        InvalidInputError: the file is missing, unreadable, not JSON, or not a valid report;
            the message names the file and every wrong field.
    """
    path = Path(path)
    try:
        return EvalReport.model_validate_json(path.read_bytes())
    except FileNotFoundError as err:
        why = "does not exist; pass a JSON report written by `ragctx eval` (runs are in "
        raise _refused(path, why + "eval/reports/runs/)") from err
    except OSError as err:
        raise _refused(path, f"cannot be read ({err.strerror or err})") from err
    except ValidationError as err:
        why = "; pass a JSON report written by `ragctx eval --json-out` (or filed in "
        raise _refused(path, _describe(err) + why + "eval/reports/runs/)") from err


def _refused(path: Path, why: str) -> InvalidInputError:
    return InvalidInputError(f"report {path.as_posix()} {why}", field="report", value=str(path))


def _describe(err: ValidationError) -> str:
    """What is wrong with a report file, in one line."""
    errors = err.errors(include_url=False)
    if any(e["type"].startswith("json_") for e in errors):
        return f"is not valid JSON ({errors[0]['msg']})"
    if any(e["type"] == "model_type" and not e["loc"] for e in errors):
        return f"holds a {type(errors[0]['input']).__name__}, not a JSON object"
    wrong = {e["loc"][0]: e["input"] for e in errors if e["loc"] in (("kind",), ("schema",))}
    if wrong:
        return (
            f"is not a ragctx eval report (kind={wrong.get('kind', REPORT_KIND)!r}, schema="
            f"{wrong.get('schema', REPORT_SCHEMA)!r}; expected {REPORT_KIND!r}, {REPORT_SCHEMA})"
        )
    shown = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5]) + (
        f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    )
    return f"is not a valid report ({shown})"


def _num(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), 6)


def _stage_key(name: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER), name)

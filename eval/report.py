"""The evaluation report: what was measured, on what, with what, and how long it took.

A report is self-describing (STYLE §8): date, git commit, dataset checksum and sizes, every
parameter, model ids, thread counts, library versions, timings, the mean of every metric per
stage, and every query's score per stage and metric, so that a later run can be tested against
it query by query (:func:`eval.gate`). It round-trips through JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError

__all__ = [
    "REPORT_KIND",
    "REPORT_SCHEMA",
    "STAGE_ORDER",
    "EvalReport",
    "StageReport",
    "load_report",
]

REPORT_KIND = "ragctx-eval-report"
REPORT_SCHEMA = 1
STAGE_ORDER = ("bm25", "dense", "hybrid", "rerank", "context")


@dataclass(frozen=True, slots=True)
class StageReport:
    """One stage: whether it really ran, its mean metrics, per-query scores, latency.

    An inactive stage (rerank without a trained reranker) has no metrics: it was not measured.
    """

    active: bool
    note: str = ""
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    per_query: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN scores become null."""
        return {
            "active": self.active,
            "note": self.note,
            "metrics": {m: _num(v) for m, v in self.metrics.items()},
            "latency_ms": {m: round(v, 3) for m, v in self.latency_ms.items()},
            "per_query": {
                m: {q: _num(v) for q, v in scores.items()} for m, scores in self.per_query.items()
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StageReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            active=bool(raw["active"]),
            note=str(raw.get("note", "")),
            metrics=dict(raw.get("metrics", {})),
            per_query={m: dict(s) for m, s in raw.get("per_query", {}).items()},
            latency_ms=dict(raw.get("latency_ms", {})),
        )


@dataclass(frozen=True, slots=True)
class EvalReport:
    """One evaluation run; see the module docstring. ``stages`` keys are stage names."""

    run_id: str
    created_at: str
    dataset: Mapping[str, Any]
    collection: str
    params: Mapping[str, Any]
    models: Mapping[str, Any]
    environment: Mapping[str, Any]
    stages: Mapping[str, StageReport]
    attribution: Mapping[str, Any]
    llm_metrics: Mapping[str, Any]
    ingest: Mapping[str, Any]
    timings: Mapping[str, float]
    context: Mapping[str, Any] | None = None

    def metric(self, stage: str, name: str) -> float | None:
        """The mean of ``name`` at ``stage``; None when the stage did not run or lacks it."""
        report = self.stages.get(stage)
        return None if report is None or not report.active else report.metrics.get(name)

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        """The whole report as one JSON object (``per_query=False`` drops per-query data)."""
        stages = {}
        for name in sorted(self.stages, key=_stage_key):
            data = self.stages[name].to_dict()
            if not per_query:
                data.pop("per_query")
            stages[name] = data
        attribution = dict(self.attribution)
        if not per_query:
            attribution.pop("per_query", None)
        return {
            "kind": REPORT_KIND,
            "schema": REPORT_SCHEMA,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "dataset": dict(self.dataset),
            "collection": self.collection,
            "params": dict(self.params),
            "models": dict(self.models),
            "environment": dict(self.environment),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "ingest": dict(self.ingest),
            "stages": stages,
            "attribution": attribution,
            "llm_metrics": dict(self.llm_metrics),
            "context": None if self.context is None else dict(self.context),
        }

    def to_json(self) -> str:
        """Compact JSON, one object."""
        return json.dumps(self.to_dict(), sort_keys=False, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EvalReport:
        """Inverse of :meth:`to_dict` (raises InvalidInputError on anything else)."""
        if raw.get("kind") != REPORT_KIND or raw.get("schema") != REPORT_SCHEMA:
            raise InvalidInputError(
                f"not a ragctx eval report (kind={raw.get('kind')!r}, schema="
                f"{raw.get('schema')!r}; expected {REPORT_KIND!r}, {REPORT_SCHEMA}); pass a "
                "JSON file written by `ragctx eval`",
                field="report",
            )
        return cls(
            run_id=str(raw["run_id"]),
            created_at=str(raw["created_at"]),
            dataset=dict(raw["dataset"]),
            collection=str(raw["collection"]),
            params=dict(raw["params"]),
            models=dict(raw["models"]),
            environment=dict(raw["environment"]),
            stages={k: StageReport.from_dict(v) for k, v in raw["stages"].items()},
            attribution=dict(raw["attribution"]),
            llm_metrics=dict(raw["llm_metrics"]),
            ingest=dict(raw["ingest"]),
            timings=dict(raw["timings"]),
            context=None if raw.get("context") is None else dict(raw["context"]),
        )


def load_report(path: Path) -> EvalReport:
    """Read a report JSON file.

    Raises:
        InvalidInputError: the file is missing, not JSON, or not a report.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as err:
        raise InvalidInputError(
            f"report {path.as_posix()} does not exist; pass a JSON report written by "
            "`ragctx eval` (runs are in eval/reports/runs/)",
            field="report",
            value=str(path),
        ) from err
    except ValueError as err:
        raise InvalidInputError(
            f"report {path.as_posix()} is not valid JSON ({err}); pass a report written by "
            "`ragctx eval --json-out`",
            field="report",
            value=str(path),
        ) from err
    if not isinstance(raw, dict):
        raise InvalidInputError(
            f"report {path.as_posix()} holds a {type(raw).__name__}, not a JSON object",
            field="report",
            value=str(path),
        )
    try:
        return EvalReport.from_dict(raw)
    except (KeyError, TypeError, AttributeError) as err:
        raise InvalidInputError(
            f"report {path.as_posix()} lacks {err}; it is incomplete or from another tool",
            field="report",
            value=str(path),
        ) from err


def _num(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), 6)


def _stage_key(name: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER), name)
